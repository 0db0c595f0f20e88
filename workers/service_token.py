"""The token a compute worker sends to the image API with auth_strategy keycloak: its Keycloak
client's service-account token (client credentials; the realm's `novaflow-compute` is a
reader), fetched when first needed and again shortly before it expires."""

from __future__ import annotations

import threading
import time

from keycloak import KeycloakOpenID

from hypervisor.errors import HypervisorError
from novaflow.config import Settings

MARGIN_SECONDS = 30.0  # a token this close to its expiry is replaced


class ServiceToken:
    def __init__(self, settings: Settings) -> None:
        if not settings.service_client_secret:
            raise SystemExit(
                "auth_strategy keycloak: compute workers need NOVAFLOW_SERVICE_CLIENT_SECRET "
                f"(the secret of the Keycloak client {settings.service_client_id!r})"
            )
        self.openid = KeycloakOpenID(
            server_url=settings.keycloak_url,
            realm_name=settings.keycloak_realm,
            client_id=settings.service_client_id,
            client_secret_key=settings.service_client_secret,
            timeout=10,
        )
        self._token = ""
        self._until = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if time.time() >= self._until - MARGIN_SECONDS:
                try:
                    answer = self.openid.token(grant_type="client_credentials")
                except Exception as error:
                    raise HypervisorError(
                        f"no service token from Keycloak ({self.openid.client_id}): {error}"
                    ) from error
                self._token = answer["access_token"]
                self._until = time.time() + float(answer.get("expires_in", 60))
            return self._token


def image_api_token(settings: Settings) -> str | ServiceToken:
    """What a compute worker sends to the image API: noauth's fixed token, or Keycloak's."""
    if settings.auth_strategy == "keycloak":
        return ServiceToken(settings)
    return settings.service_token
