"""Where the CLI finds the API and Temporal, and who it says it is: options or environment."""

from __future__ import annotations

import os
from dataclasses import dataclass


class CliError(Exception):
    """Printed as one line, and the command exits with status 1: never a traceback."""


@dataclass(frozen=True)
class Endpoints:
    api_url: str
    token: str
    temporal_address: str
    namespace: str


def endpoints(
    api_url: str | None = None, token: str | None = None, temporal: str | None = None
) -> Endpoints:
    return Endpoints(
        api_url=(api_url or os.environ.get("NOVAFLOW_API_URL") or "http://127.0.0.1:8774").rstrip(
            "/"
        ),
        # noauth (the embedded stack): "<user>:<project>"; with Keycloak, a bearer token.
        token=token
        or os.environ.get("NOVAFLOW_TOKEN")
        or os.environ.get("OS_TOKEN")
        or "admin:admin",
        temporal_address=temporal
        or os.environ.get("NOVAFLOW_TEMPORAL_ADDRESS")
        or "127.0.0.1:7233",
        namespace=os.environ.get("NOVAFLOW_TEMPORAL_NAMESPACE") or "default",
    )
