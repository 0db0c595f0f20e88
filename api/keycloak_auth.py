"""Keycloak access tokens, verified offline (no call to Keycloak per request).

The realm's public keys (its JWKS) are fetched with python-keycloak and cached. A token whose
`kid` names no cached key refreshes them once (a rotated key is taken without a restart); the
refreshes are rate-limited (keycloak_keys_refresh_seconds), so tokens with made-up kids cannot
make the API hammer Keycloak. Then, in this order, each with its own 401 message:

    the token's shape; the algorithm (RS256 only); the key (kid); the signature;
    typ (an access token: "Bearer"); exp and nbf/iat (with keycloak_leeway_seconds);
    iss (the realm's URL); aud contains keycloak_audience (or azp is an allowed client).

From the token: the user id (`sub`), the user name (`preferred_username`), the project (the
`project_id` claim: a token without it is a 403 naming the claim) and the roles
(`realm_access.roles` ∩ {reader, member, admin}).

A disabled user: tokens are not introspected per request, so a token issued before the user
was disabled keeps working until it expires; the realm's access tokens live 300 s
(deploy/keycloak/novaflow-realm.json), so that is the longest a disabled user keeps access.
Keycloak refuses the disabled user any new token at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from jwcrypto import jwk
from jwcrypto.common import JWException
from keycloak import KeycloakOpenID
from starlette.datastructures import Headers

from api.auth import NO_TOKEN, RequestContext, Unauthorized, bearer_token
from novaflow.config import Settings
from novaflow.errors import Forbidden, ServiceUnavailable

log = logging.getLogger("novaflow.api")

ROLES = frozenset({"reader", "member", "admin"})
ALGORITHM = "RS256"
PROJECT_CLAIM = "project_id"


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _refused(check: str) -> Unauthorized:
    return Unauthorized(f"Invalid token: {check}.")


def _header(token: str) -> dict[str, Any]:
    """The JOSE header, before anything is verified (it names the algorithm and the key)."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise _refused("malformed (not a signed JWT: header.payload.signature)")
    try:
        raw = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))
        header = json.loads(raw)
    except (binascii.Error, ValueError):
        raise _refused("malformed (its header is not base64url JSON)") from None
    if not isinstance(header, dict):
        raise _refused("malformed (its header is not a JSON object)")
    return header


class KeycloakVerifier:
    """The `keycloak` authenticator (api/auth.py calls it with the request's headers)."""

    def __init__(
        self,
        settings: Settings,
        fetch_keys: Callable[[], Awaitable[dict[str, Any]]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.issuer = settings.keycloak_expected_issuer
        self.audience = settings.keycloak_audience
        self.allowed_clients = settings.keycloak_clients
        self.leeway = settings.keycloak_leeway_seconds
        self.refresh_interval = settings.keycloak_keys_refresh_seconds
        self.openid = KeycloakOpenID(
            server_url=settings.keycloak_url,
            realm_name=settings.keycloak_realm,
            client_id=settings.keycloak_audience,
            timeout=10,
        )
        self._fetch = fetch_keys or self.openid.a_certs
        self._clock = clock
        self._keys: dict[str, jwk.JWK] = {}
        self._fetched_at: float | None = None  # monotonic time of the last attempt
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def __call__(self, headers: Headers) -> RequestContext:
        token = bearer_token(headers)
        if not token:
            raise Unauthorized(NO_TOKEN, error=None)
        return await self.context(token)

    # ------------------------------------------------------------ keys

    async def refresh_keys(self, force: bool = False) -> bool:
        """Fetch the realm's signing keys, unless the last attempt is more recent than the
        refresh interval (and not `force`). True when they were fetched."""
        async with self._lock:
            now = time.monotonic()
            recent = self._fetched_at is not None and now - self._fetched_at < self.refresh_interval
            if recent and not force and self._keys:  # with no key at all, always try
                return False
            self._fetched_at = now
            self.fetches += 1
            try:
                jwks = await self._fetch()
            except Exception as error:  # Keycloak down or unreachable: keep the keys we have
                log.warning("could not fetch the realm's keys from Keycloak: %s", error)
                if not self._keys:
                    raise ServiceUnavailable(
                        "The identity service (Keycloak) could not be reached to fetch the "
                        "realm's keys; tokens cannot be verified now. Try again."
                    ) from None
                return False
            keys = {}
            for entry in jwks.get("keys", []):
                if entry.get("use", "sig") != "sig" or entry.get("alg", ALGORITHM) != ALGORITHM:
                    continue
                if entry.get("kty") == "RSA" and entry.get("kid"):
                    keys[entry["kid"]] = jwk.JWK(**entry)
            self._keys = keys
            log.info("the realm's signing keys: %s", ", ".join(sorted(keys)) or "none")
            return True

    async def _key(self, kid: object) -> jwk.JWK:
        if not isinstance(kid, str) or not kid:
            raise _refused("unknown key (the token names no key id, kid)")
        key = self._keys.get(kid)
        if key is None:
            await self.refresh_keys()
            key = self._keys.get(kid)
        if key is None:
            raise _refused(f"unknown key {kid!r} (the realm publishes no such signing key)")
        return key

    # ------------------------------------------------------------ the token

    async def context(self, token: str) -> RequestContext:
        claims = await self.verify(token)
        return self.caller(claims)

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims once every check passed; else Unauthorized naming the check."""
        header = _header(token)
        if header.get("alg") != ALGORITHM:
            raise _refused(f"bad signature (algorithm {header.get('alg')!r}; only RS256 is taken)")
        key = await self._key(header.get("kid"))
        try:
            claims = self.openid.decode_token(
                token, validate=True, key=key, algs=[ALGORITHM], check_claims=False
            )
        except (JWException, ValueError, TypeError):
            raise _refused("bad signature") from None
        if not isinstance(claims, dict):
            raise _refused("malformed (its payload is not a JSON object)")
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        kind = claims.get("typ", "Bearer")
        if kind != "Bearer":
            raise _refused(f"not an access token (typ {kind!r})")
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise _refused("expired (it carries no exp)")
        if now > exp + self.leeway:
            raise _refused(f"expired at {_when(exp)}")
        for name in ("nbf", "iat"):
            moment = claims.get(name)
            if isinstance(moment, int | float) and now + self.leeway < moment:
                raise _refused(f"not yet valid ({name} {_when(moment)})")
        issuer = claims.get("iss")
        if issuer != self.issuer:
            raise _refused(f"wrong issuer {issuer!r} (expected {self.issuer!r})")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list):
            audiences = []
        if self.audience not in audiences and claims.get("azp") not in self.allowed_clients:
            raise _refused(
                f"wrong audience {audience!r} (expected {self.audience!r} in aud)"
                + (f", from client {claims.get('azp')!r}" if claims.get("azp") else "")
            )

    @staticmethod
    def caller(claims: dict[str, Any]) -> RequestContext:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise _refused("it names no user (sub)")
        project = claims.get(PROJECT_CLAIM)
        if not isinstance(project, str) or not project:
            raise Forbidden(
                f"The token carries no {PROJECT_CLAIM} claim: the user has no novaflow project "
                f"(a Keycloak admin sets the user attribute {PROJECT_CLAIM})."
            )
        access = claims.get("realm_access")
        granted = access.get("roles", []) if isinstance(access, dict) else []
        roles = ROLES.intersection(r for r in granted if isinstance(r, str))
        name = claims.get("preferred_username")
        return RequestContext(
            user_id=subject,
            project_id=project,
            roles=frozenset(roles),
            user_name=name if isinstance(name, str) else "",
        )
