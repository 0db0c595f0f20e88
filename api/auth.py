"""Who is calling: authentication, before anything reads the request's body.

Two strategies (NOVAFLOW_AUTH_STRATEGY):
- `keycloak`: the request carries a Keycloak access token (`Authorization: Bearer <token>`, or
  `X-Auth-Token: <token>` as keystoneauth's admin_token plugin sends it), verified offline
  against the realm's keys (api/keycloak_auth.py).
- `noauth`: Nova's noauth convention, `X-Auth-Token: user:project`; the user `admin` is an admin.
  It exists for the embedded local stack only: it answers on a loopback address only (unless
  NOVAFLOW_ALLOW_NOAUTH_ON_NETWORK=1).

`Authenticate` is a pure ASGI middleware: it runs for every request except the public roots
(the versions document and the API docs), before the other middlewares and FastAPI read a body,
and leaves the caller in `request.state.context`. What the caller may do is api/policy.py's.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api import errors
from novaflow.config import Settings
from novaflow.errors import NovaflowError

log = logging.getLogger("novaflow.api")

REALM = "novaflow"


class Unauthorized(NovaflowError):
    """401, with the WWW-Authenticate challenge RFC 6750 asks for."""

    code = 401
    title = "unauthorized"

    def __init__(self, message: str, error: str | None = "invalid_token") -> None:
        super().__init__(message)
        self.error = error

    @property
    def challenge(self) -> str:
        challenge = f'Bearer realm="{REALM}"'
        if self.error:
            description = self.message.replace('"', "'").replace("\\", "/")
            challenge += f', error="{self.error}", error_description="{description}"'
        return challenge


@dataclass(frozen=True)
class RequestContext:
    user_id: str
    project_id: str
    roles: frozenset[str]
    user_name: str = ""

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


NOAUTH_WARNING = (
    "AUTH IS OFF (noauth): any caller may claim any user and project with "
    "'X-Auth-Token: <user>:<project>'. Use it only for the embedded local stack."
)

NO_TOKEN = (
    "The request you have made requires authentication: no token (send "
    "'Authorization: Bearer <token>' or 'X-Auth-Token: <token>')."
)


def noauth_context(token: str | None) -> RequestContext:
    if not token:
        raise Unauthorized("The request you have made requires authentication.", error=None)
    user, sep, project = token.partition(":")
    if not sep or not user or not project:
        raise Unauthorized("noauth token must be '<user>:<project>'")
    roles = {"member", "reader"} | ({"admin"} if user == "admin" else set())
    return RequestContext(user_id=user, project_id=project, roles=frozenset(roles), user_name=user)


def bearer_token(headers: Headers) -> str | None:
    """The token of `Authorization: Bearer <token>`, else of `X-Auth-Token: <token>`."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization header must be 'Bearer <token>'")
        return token.strip()
    return headers.get("x-auth-token") or None


# ------------------------------------------------------------ noauth stays on this machine


def is_loopback(host: str | None) -> bool:
    """A loopback address (or a Unix socket: no host). A name is not an address: only
    `localhost` counts, as it is the loopback by definition."""
    if not host or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


NOAUTH_ON_NETWORK = (
    "REFUSED: auth_strategy is noauth (anyone may claim to be anyone, the admin included) and "
    "the API would listen on {host}, which is not a loopback address. Use "
    "NOVAFLOW_AUTH_STRATEGY=keycloak, listen on 127.0.0.1, or, knowingly, set "
    "NOVAFLOW_ALLOW_NOAUTH_ON_NETWORK=1."
)


def listen_host(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> str:
    """The address uvicorn was told to listen on (`--host X`, `--host=X`, UVICORN_HOST; its
    default is 127.0.0.1)."""
    argv = sys.argv if argv is None else argv
    environ = dict(os.environ) if environ is None else environ
    host = environ.get("UVICORN_HOST", "127.0.0.1")
    for index, arg in enumerate(argv):
        if arg == "--host" and index + 1 < len(argv):
            host = argv[index + 1]
        elif arg.startswith("--host="):
            host = arg.partition("=")[2]
    return host


def check_listen_address(settings: Settings, host: str) -> None:
    """Refuse to start noauth on a non-loopback address, loudly (SystemExit)."""
    if settings.auth_strategy != "noauth" or settings.allow_noauth_on_network:
        return
    if not is_loopback(host):
        message = NOAUTH_ON_NETWORK.format(host=host)
        log.critical("!" * 20 + " %s " + "!" * 20, message)
        raise SystemExit(message)


# ------------------------------------------------------------ the middleware

Authenticator = Callable[[Headers], Awaitable[RequestContext]]

# Served to anyone: the versions documents (the compute API's, and the image, network and
# identity endpoints': api/routers/discovery.py) and the API's own docs.
PUBLIC_PATHS = frozenset(
    {"/", "/v2.1", "/v2.1/", "/image", "/image/", "/network", "/network/"}
    | {"/identity", "/identity/", "/identity/v3", "/identity/v3/"}
    | {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS


async def _noauth(headers: Headers) -> RequestContext:
    return noauth_context(headers.get("x-auth-token"))


class Authenticate:
    """Pure ASGI: resolves the caller before anything reads the body; 401 (with
    WWW-Authenticate) or 403 otherwise, in Nova's error shape."""

    def __init__(self, app: ASGIApp, settings: Settings, authenticator: Authenticator) -> None:
        self.app = app
        self.settings = settings
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        settings = self.settings
        if settings.auth_strategy == "noauth" and not settings.allow_noauth_on_network:
            # However the API was started: a request that reached it over the network (on a
            # non-loopback address of this machine) is refused under noauth.
            server = scope.get("server")
            host = server[0] if server else None
            if not is_loopback(host):
                message = NOAUTH_ON_NETWORK.format(host=host)
                log.critical(message)
                await errors.error_response(403, message)(scope, receive, send)
                return
        try:
            context = await self.authenticator(Headers(scope=scope))
        except Unauthorized as refused:
            response = errors.error_response(refused.code, refused.message, refused.title)
            response.headers["WWW-Authenticate"] = refused.challenge
            await response(scope, receive, send)
            return
        except NovaflowError as refused:  # 403 (a token without a project), 503 (no keys)
            await errors.error_response(refused.code, refused.message, refused.title)(
                scope, receive, send
            )
            return
        scope.setdefault("state", {})["context"] = context
        await self.app(scope, receive, send)


def authenticator_for(settings: Settings) -> Authenticator:
    if settings.auth_strategy == "keycloak":
        from api.keycloak_auth import KeycloakVerifier

        return KeycloakVerifier(settings)
    return _noauth
