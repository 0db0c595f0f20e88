"""The codec endpoint for the Temporal UI (Temporal's codec server protocol): POST
/temporal-codec/decode and /temporal-codec/encode take and answer `{"payloads": [...]}` (protobuf
JSON), with the very codec the API's Temporal client encrypts with (codec/). Admins only:
payloads hold what users sent (user data, passwords).

The UI calls it from the browser, cross-origin (NOVAFLOW_TEMPORAL_UI_ORIGINS may: CORS, with
credentials), and can send no X-Auth-Token. So besides the API's usual token headers, the
endpoint takes a token from a cookie: an operator opens /temporal-codec/ in the same browser,
pastes a token there (noauth: `admin:<project>`; keycloak: an admin's access token), which is
checked (the same authentication and policy rule) and kept in an HttpOnly cookie scoped to
/temporal-codec; then ticks "Include cross-origin credentials" in the UI's codec settings.

`CodecFront` (pure ASGI, outside the Authenticate middleware) answers CORS preflights, serves
that sign-in page and turns the cookie into X-Auth-Token for the codec routes only; the routes
themselves are ordinary routes with their policy rule.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payloads

from api.auth import Authenticator, Unauthorized
from api.policy import allowed, rule
from novaflow.config import Settings
from novaflow.errors import Invalid, NovaflowError

PREFIX = "/temporal-codec"
COOKIE = "novaflow_codec_token"
DECODE_RULE = "novaflow:temporal-codec:decode"
ENCODE_RULE = "novaflow:temporal-codec:encode"
COOKIE_SECONDS = 8 * 3600
_MAX_FORM_BYTES = 16384

router = APIRouter(prefix=PREFIX, tags=["temporal-codec"])


async def _convert(request: Request, direction: str) -> JSONResponse:
    try:
        payloads = json_format.Parse(await request.body(), Payloads(), ignore_unknown_fields=True)
    except (json_format.ParseError, UnicodeDecodeError) as error:
        raise Invalid(f"The body must be {{'payloads': [...]}} as protobuf JSON: {error}") from None
    namespace = request.headers.get("x-namespace")
    if namespace and namespace != request.app.state.settings.temporal_namespace:
        # Another namespace's payloads are not novaflow's: answered as they are.
        return JSONResponse(json_format.MessageToDict(payloads))
    codec = request.app.state.temporal.data_converter.payload_codec
    try:
        if direction == "decode":
            converted = await codec.decode(payloads.payloads)
        else:
            converted = await codec.encode(payloads.payloads)
    except ValueError as error:  # codec.PayloadKeyError: no key of ours decrypts it
        raise Invalid(str(error)) from None
    return JSONResponse(json_format.MessageToDict(Payloads(payloads=converted)))


@router.post("/decode", dependencies=[rule(DECODE_RULE)])
async def decode(request: Request) -> JSONResponse:
    """Payloads decrypted (those not encrypted, or of another namespace, as they are)."""
    return await _convert(request, "decode")


@router.post("/encode", dependencies=[rule(ENCODE_RULE)])
async def encode(request: Request) -> JSONResponse:
    """Payloads encrypted, as a worker would read them (e.g. a signal's input in the UI)."""
    return await _convert(request, "encode")


# ------------------------------------------------------------ in front of authentication


def origins(settings: Settings) -> list[str]:
    return [o.strip().rstrip("/") for o in settings.temporal_ui_origins.split(",") if o.strip()]


class CodecFront:
    """For paths under /temporal-codec only: CORS for the UI's origins, the sign-in page, and
    the cookie's token as X-Auth-Token when the request carries no token of its own."""

    def __init__(self, app: ASGIApp, settings: Settings, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator
        self.cors = CORSMiddleware(
            self._behind_cors,
            allow_origins=origins(settings),
            allow_methods=["POST"],
            allow_headers=["content-type", "x-namespace", "authorization", "x-auth-token"],
            allow_credentials=True,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == PREFIX or path.startswith(PREFIX + "/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _behind_cors(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"].rstrip("/"), scope["method"]
        if path == PREFIX and method in ("GET", "HEAD"):
            host = Headers(scope=scope).get("host", "127.0.0.1:8774")
            endpoint = f"{scope.get('scheme', 'http')}://{host}{PREFIX}"
            await _page("", endpoint=endpoint)(scope, receive, send)
            return
        if path == PREFIX + "/session" and method == "POST":
            await self._sign_in(scope, receive, send)
            return
        headers = Headers(scope=scope)
        token = _cookie(headers)
        if token and not headers.get("authorization") and not headers.get("x-auth-token"):
            MutableHeaders(scope=scope).append("x-auth-token", token)
        await self.app(scope, receive, send)

    async def _sign_in(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > _MAX_FORM_BYTES:
                await _page("That is too long for a token.", 413)(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        token = (parse_qs(body.decode(errors="replace")).get("token") or [""])[0].strip()
        secure = scope.get("scheme") == "https"
        if not token:  # signing out
            response = _page("Signed out: the UI's payloads are not decoded any more.")
            response.delete_cookie(COOKIE, path=PREFIX, secure=secure, httponly=True)
            await response(scope, receive, send)
            return
        try:
            context = await self.authenticator(Headers({"x-auth-token": token}))
        except Unauthorized as refused:
            await _page(f"Not signed in: {refused.message}", 401)(scope, receive, send)
            return
        except NovaflowError as refused:
            await _page(f"Not signed in: {refused.message}", refused.code)(scope, receive, send)
            return
        if not allowed(context, DECODE_RULE):
            who = context.user_name or context.user_id
            await _page(f"Not signed in: {who} is no admin.", 403)(scope, receive, send)
            return
        response = _page(
            f"Signed in as {context.user_name or context.user_id}: the Temporal UI decodes "
            "payloads in this browser (with 'Include cross-origin credentials' in its codec "
            "settings)."
        )
        response.set_cookie(
            COOKIE,
            token,
            max_age=COOKIE_SECONDS,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=secure,
        )
        await response(scope, receive, send)


def _cookie(headers: Headers) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>novaflow: Temporal codec</title></head>
<body style="font-family: sans-serif; max-width: 44em; margin: 3em auto">
<h1>Decoding payloads in the Temporal UI</h1>
<p>Every Temporal payload of novaflow is encrypted. An admin's token here lets the Temporal UI,
in this browser, decode them through this endpoint ({prefix}). In the UI's codec server settings,
tick <em>Include cross-origin credentials</em> (and, to keep the endpoint the server configured,
give it there too: <code>{endpoint}</code>).</p>
{notice}
<form method="post" action="{prefix}/session">
<label>Token (noauth: <code>admin:&lt;project&gt;</code>; Keycloak: an admin's access token)<br>
<input name="token" type="password" size="60" autocomplete="off"></label>
<button type="submit">Sign in</button>
</form>
<form method="post" action="{prefix}/session"><input type="hidden" name="token" value="">
<button type="submit">Sign out</button></form>
</body></html>
"""


def _page(notice: str, status: int = 200, endpoint: str = PREFIX) -> HTMLResponse:
    shown = f"<p><strong>{html.escape(notice)}</strong></p>" if notice else ""
    content = _PAGE.format(prefix=PREFIX, endpoint=html.escape(endpoint), notice=shown)
    return HTMLResponse(content, status_code=status, headers={"Cache-Control": "no-store"})
