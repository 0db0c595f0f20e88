"""Where the CLI finds the API and Temporal, and who it says it is: options or environment."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import httpx


class CliError(Exception):
    """Printed as one line, and the command exits with status 1: never a traceback."""


@dataclass(frozen=True)
class Endpoints:
    api_url: str
    token_source: Callable[[], str] = field(repr=False)
    temporal_address: str
    namespace: str
    # Temporal payloads are encrypted (codec/): the stack's keys, or its state directory, which
    # holds its development key.
    payload_keys: str | None = None
    state_dir: str = ".state"

    @property
    def token(self) -> str:
        """What the API gets as X-Auth-Token (asked for only when the API is called)."""
        return self.token_source()


def ops_client_token(environ: dict[str, str] | None = None) -> str:
    """An access token of the Keycloak client novaflow-ops (its service account is an admin),
    by client credentials: NOVAFLOW_OPS_CLIENT_SECRET, NOVAFLOW_OPS_CLIENT_ID (novaflow-ops),
    NOVAFLOW_KEYCLOAK_URL (http://127.0.0.1:8180), NOVAFLOW_KEYCLOAK_REALM (novaflow)."""
    env = dict(os.environ) if environ is None else environ
    url = env.get("NOVAFLOW_KEYCLOAK_URL", "http://127.0.0.1:8180").rstrip("/")
    realm = env.get("NOVAFLOW_KEYCLOAK_REALM", "novaflow")
    client = env.get("NOVAFLOW_OPS_CLIENT_ID", "novaflow-ops")
    token_url = f"{url}/realms/{realm}/protocol/openid-connect/token"
    data = {
        "grant_type": "client_credentials",
        "client_id": client,
        "client_secret": env.get("NOVAFLOW_OPS_CLIENT_SECRET", ""),
    }
    try:
        response = httpx.post(token_url, data=data, timeout=15)
    except httpx.HTTPError as error:
        raise CliError(f"Keycloak at {url} did not answer: {error}") from None
    if response.status_code != 200:
        raise CliError(
            f"Keycloak refused the client {client}: {response.status_code} {response.text[:200]}"
        )
    return str(response.json()["access_token"])


def endpoints(
    api_url: str | None = None, token: str | None = None, temporal: str | None = None
) -> Endpoints:
    # The token: given, or NOVAFLOW_TOKEN / OS_TOKEN (noauth: "<user>:<project>"; with Keycloak
    # a bearer token), or the ops client's own (NOVAFLOW_OPS_CLIENT_SECRET set), else noauth's
    # admin.
    given = token or os.environ.get("NOVAFLOW_TOKEN") or os.environ.get("OS_TOKEN")
    if given:
        source: Callable[[], str] = lambda: given  # noqa: E731
    elif os.environ.get("NOVAFLOW_OPS_CLIENT_SECRET"):
        source = cache(ops_client_token)
    else:
        source = lambda: "admin:admin"  # noqa: E731
    return Endpoints(
        api_url=(api_url or os.environ.get("NOVAFLOW_API_URL") or "http://127.0.0.1:8774").rstrip(
            "/"
        ),
        token_source=source,
        temporal_address=temporal
        or os.environ.get("NOVAFLOW_TEMPORAL_ADDRESS")
        or "127.0.0.1:7233",
        namespace=os.environ.get("NOVAFLOW_TEMPORAL_NAMESPACE") or "default",
        payload_keys=os.environ.get("NOVAFLOW_PAYLOAD_KEYS") or None,
        state_dir=os.environ.get("NOVAFLOW_STATE_DIR") or ".state",
    )
