"""Token verification without a Keycloak: tokens signed here with keys this test holds, so each
check (and its 401 message) is exercised alone; the authentication middleware reads no body on
a refused token; noauth stays on the loopback. The real Keycloak is tests/keycloak/'s."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from jwcrypto import jwk, jws
from jwcrypto.common import json_encode
from starlette.types import Message, Receive, Scope, Send

from api.app import create_app
from api.auth import (
    Authenticate,
    RequestContext,
    Unauthorized,
    check_listen_address,
    is_loopback,
    listen_host,
)
from api.keycloak_auth import KeycloakVerifier
from novaflow.config import Settings
from novaflow.errors import Forbidden, ServiceUnavailable

ISSUER = "http://kc.test/realms/novaflow"


def settings(**options: Any) -> Settings:
    values: dict[str, Any] = {
        "auth_strategy": "keycloak",
        "keycloak_url": "http://kc.test",
        "keycloak_leeway_seconds": 5,
        "keycloak_keys_refresh_seconds": 60,
    }
    values.update(options)
    return Settings(**values)


def new_key(kid: str) -> jwk.JWK:
    return jwk.JWK.generate(kty="RSA", size=2048, kid=kid, alg="RS256", use="sig")


def sign(key: jwk.JWK, claims: dict[str, Any], alg: str = "RS256", **header: Any) -> str:
    token = jws.JWS(json_encode(claims).encode())
    protected = {"alg": alg, "typ": "JWT", "kid": key.get("kid"), **header}
    token.add_signature(key, alg=alg, protected=json_encode(protected))
    return str(token.serialize(compact=True))


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    body = {
        "exp": now + 300,
        "iat": now,
        "iss": ISSUER,
        "aud": "novaflow-api",
        "sub": str(uuid.uuid4()),
        "typ": "Bearer",
        "azp": "novaflow-cli",
        "preferred_username": "alice",
        "project_id": "demo",
        "realm_access": {"roles": ["member", "default-roles-novaflow", "offline_access"]},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


class Realm:
    """The keys Keycloak would publish, and how often they were asked for."""

    def __init__(self) -> None:
        self.keys = [new_key("k1")]
        self.fetches = 0
        self.down = False

    async def certs(self) -> dict[str, Any]:
        self.fetches += 1
        if self.down:
            raise httpx.ConnectError("connection refused")
        return {"keys": [json.loads(k.export_public()) for k in self.keys]}


def verifier(realm: Realm, **options: Any) -> KeycloakVerifier:
    return KeycloakVerifier(settings(**options), fetch_keys=realm.certs)


def refused(verify: KeycloakVerifier, token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        asyncio.run(verify.context(token))
    return caught.value.message


def test_a_good_token_gives_the_caller() -> None:
    realm = Realm()
    body = claims()
    caller = asyncio.run(verifier(realm).context(sign(realm.keys[0], body)))
    assert caller == RequestContext(body["sub"], "demo", frozenset({"member"}), "alice")


# Times are relative to the test's own clock (parameters are made at collection time).
LATER, EARLIER = "later", "earlier"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"exp": (EARLIER, 60)}, "expired at"),
        ({"exp": None}, "expired (it carries no exp)"),
        ({"nbf": (LATER, 120)}, "not yet valid (nbf"),
        ({"iat": (LATER, 120)}, "not yet valid (iat"),
        ({"iss": "http://kc.test/realms/other"}, "wrong issuer"),
        ({"aud": "account"}, "wrong audience 'account'"),
        ({"aud": None}, "wrong audience None"),
        ({"typ": "ID"}, "not an access token"),
        ({"typ": "Refresh"}, "not an access token"),
        ({"sub": None}, "names no user"),
    ],
)
def test_each_check_refuses_with_its_own_message(changes: dict[str, Any], message: str) -> None:
    now, changes = int(time.time()), dict(changes)
    for name, value in changes.items():
        if isinstance(value, tuple):
            changes[name] = now + value[1] if value[0] == LATER else now - value[1]
    realm = Realm()
    assert message in refused(verifier(realm), sign(realm.keys[0], claims(**changes)))


def test_the_leeway_forgives_a_little_clock_skew_only() -> None:
    realm = Realm()
    verify = verifier(realm, keycloak_leeway_seconds=30)
    asyncio.run(verify.context(sign(realm.keys[0], claims(exp=int(time.time()) - 20))))
    assert "expired" in refused(verify, sign(realm.keys[0], claims(exp=int(time.time()) - 40)))


def test_an_audience_list_and_an_allowed_client() -> None:
    realm = Realm()
    key = realm.keys[0]
    asyncio.run(verifier(realm).context(sign(key, claims(aud=["account", "novaflow-api"]))))
    other = claims(aud="account", azp="novaflow-ops")
    assert "wrong audience" in refused(verifier(realm), sign(key, other))
    allowing = verifier(realm, keycloak_allowed_clients="novaflow-ops, other")
    assert asyncio.run(allowing.context(sign(key, other))).project_id == "demo"


def test_a_tampered_payload_or_another_key_is_a_bad_signature() -> None:
    realm = Realm()
    token = sign(realm.keys[0], claims())
    header, payload, signature = token.split(".")
    forged_payload = base64url(json_encode(claims(realm_access={"roles": ["admin"]})))
    verify = verifier(realm)
    assert "bad signature" in refused(verify, f"{header}.{forged_payload}.{signature}")
    # Signed by a key of our own that claims the realm's kid.
    impostor = new_key("k1")
    assert "bad signature" in refused(verify, sign(impostor, claims()))


def test_only_rs256_is_taken() -> None:
    realm = Realm()
    secret = jwk.JWK.generate(kty="oct", size=256, kid="k1")
    assert "only RS256" in refused(verifier(realm), sign(secret, claims(), alg="HS256"))
    header = base64url(json.dumps({"alg": "none", "kid": "k1"}))
    payload = base64url(json.dumps(claims()))
    assert "only RS256" in refused(verifier(realm), f"{header}.{payload}.x")


def base64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("token", ["abc", "a.b", "a..c", "!!!.###.$$$", "e30.e30.e30", "W10.e30.x"])
def test_garbage_is_refused_never_a_500(token: str) -> None:
    realm = Realm()
    assert "Invalid token" in refused(verifier(realm), token)


def test_a_token_without_a_project_is_a_403_naming_the_claim() -> None:
    realm = Realm()
    with pytest.raises(Forbidden, match="project_id claim"):
        asyncio.run(verifier(realm).context(sign(realm.keys[0], claims(project_id=None))))


def test_roles_are_the_realms_novaflow_roles_only() -> None:
    realm = Realm()
    token = sign(realm.keys[0], claims(realm_access={"roles": ["admin", "uma_authorization"]}))
    assert asyncio.run(verifier(realm).context(token)).roles == frozenset({"admin"})
    token = sign(realm.keys[0], claims(realm_access=None))
    assert asyncio.run(verifier(realm).context(token)).roles == frozenset()


def test_an_unknown_kid_refreshes_the_keys_once_and_a_rotated_key_works() -> None:
    realm = Realm()
    verify = verifier(realm)
    old = sign(realm.keys[0], claims())

    async def scenario() -> None:
        await verify.context(old)
        assert realm.fetches == 1
        # Keycloak gets a new active key: tokens signed with it name a kid not cached here.
        realm.keys.append(new_key("k2"))
        verify._fetched_at = None  # the last fetch is long ago
        await verify.context(sign(realm.keys[1], claims()))
        assert realm.fetches == 2
        await verify.context(old)  # the old key is still published: its tokens still verify
        assert realm.fetches == 2

    asyncio.run(scenario())


def test_refreshes_are_rate_limited() -> None:
    realm = Realm()
    verify = verifier(realm, keycloak_keys_refresh_seconds=60)
    stranger = new_key("made-up")

    async def scenario() -> None:
        for _ in range(20):
            with pytest.raises(Unauthorized, match="unknown key 'made-up'"):
                await verify.context(sign(stranger, claims()))

    asyncio.run(scenario())
    assert realm.fetches == 1


def test_keycloak_down_before_any_key_is_a_503_and_after_keeps_the_keys() -> None:
    realm = Realm()
    realm.down = True
    verify = verifier(realm, keycloak_keys_refresh_seconds=0)
    with pytest.raises(ServiceUnavailable):
        asyncio.run(verify.context(sign(realm.keys[0], claims())))
    realm.down = False
    asyncio.run(verify.context(sign(realm.keys[0], claims())))
    realm.down = True
    asyncio.run(verify.context(sign(realm.keys[0], claims())))  # cached key
    assert "unknown key" in refused(verify, sign(new_key("k9"), claims()))


# ------------------------------------------------------------ the middleware


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    caller = scope["state"]["context"]
    payload = json.dumps({"user": caller.user_id, "body": len(body)}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": payload})


def call(
    app: Any, headers: dict[str, str], server: tuple[str, int] = ("127.0.0.1", 8774)
) -> tuple[int, dict[str, str], dict[str, Any], int]:
    """(status, headers, JSON body, how many times the body was asked for)."""
    asked = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": b'{"server": {}}', "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v2.1/servers",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "server": server,
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "root_path": "",
        "query_string": b"",
    }
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], response_headers, json.loads(body), asked


def test_a_refused_token_is_answered_without_reading_the_body() -> None:
    realm = Realm()
    verify = verifier(realm)
    app = Authenticate(echo, settings(), verify)
    status, headers, body, asked = call(app, {})
    assert (status, asked) == (401, 0)
    assert headers["www-authenticate"] == 'Bearer realm="novaflow"'
    assert "no token" in body["unauthorized"]["message"]

    stranger = sign(new_key("k1"), claims())
    status, headers, body, asked = call(app, {"Authorization": f"Bearer {stranger}"})
    assert (status, asked) == (401, 0)
    assert 'error="invalid_token"' in headers["www-authenticate"]
    assert body == {"unauthorized": {"code": 401, "message": "Invalid token: bad signature."}}

    status, _, body, asked = call(app, {"X-Auth-Token": sign(realm.keys[0], claims(sub="s1"))})
    assert (status, body["user"], asked) == (200, "s1", 1)
    status, _, body, _ = call(app, {"Authorization": f"bearer {sign(realm.keys[0], claims())}"})
    assert status == 200
    status, _, body, asked = call(app, {"Authorization": "Basic YWxpY2U6c2VjcmV0"})
    assert (status, asked) == (401, 0)


def test_the_app_authenticates_before_anything_reads_the_body() -> None:
    """The whole app's middlewares (the text check reads bodies): a refused caller's body is
    never asked for."""
    app = create_app(settings())
    status, headers, body, asked = call(app, {"Authorization": "Bearer a.b.c"})
    assert (status, asked) == (401, 0)
    assert headers["www-authenticate"].startswith("Bearer")
    assert body["unauthorized"]["message"].startswith("Invalid token: malformed")
    status, _, _, asked = call(create_app(Settings()), {}, server=("192.0.2.7", 8774))
    assert (status, asked) == (403, 0)


def test_noauth_answers_on_the_loopback_only() -> None:
    async def noauth(headers: Any) -> RequestContext:
        return RequestContext("alice", "demo", frozenset({"member"}))

    app = Authenticate(echo, Settings(auth_strategy="noauth"), noauth)
    assert call(app, {"X-Auth-Token": "alice:demo"})[0] == 200
    assert call(app, {"X-Auth-Token": "alice:demo"}, server=("::1", 8774))[0] == 200
    status, _, body, asked = call(app, {"X-Auth-Token": "a:b"}, server=("192.0.2.7", 8774))
    assert (status, asked) == (403, 0)
    assert "NOVAFLOW_ALLOW_NOAUTH_ON_NETWORK=1" in body["forbidden"]["message"]
    allowing = Authenticate(
        echo, Settings(auth_strategy="noauth", allow_noauth_on_network=True), noauth
    )
    assert call(allowing, {"X-Auth-Token": "a:b"}, server=("192.0.2.7", 8774))[0] == 200


def test_noauth_refuses_to_start_on_a_network_address() -> None:
    noauth = Settings(auth_strategy="noauth")
    check_listen_address(noauth, "127.0.0.1")
    check_listen_address(noauth, "::1")
    for host in ("0.0.0.0", "::", "192.0.2.7", "example.org"):
        with pytest.raises(SystemExit, match="REFUSED: auth_strategy is noauth"):
            check_listen_address(noauth, host)
    check_listen_address(Settings(auth_strategy="noauth", allow_noauth_on_network=True), "::")
    check_listen_address(settings(), "0.0.0.0")
    assert is_loopback("localhost") and is_loopback(None) and not is_loopback("testserver")


def test_the_listen_address_as_uvicorn_was_told() -> None:
    assert listen_host(["uvicorn", "api.app:app"], {}) == "127.0.0.1"
    assert listen_host(["uvicorn", "api.app:app", "--host", "0.0.0.0"], {}) == "0.0.0.0"
    assert listen_host(["uvicorn", "--host=::", "api.app:app"], {}) == "::"
    assert listen_host(["uvicorn", "api.app:app"], {"UVICORN_HOST": "10.0.0.1"}) == "10.0.0.1"


def test_uvicorn_on_0_0_0_0_with_noauth_does_not_start() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVAFLOW_")}
    started = subprocess.run(
        [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "0.0.0.0", "--port", "1"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "REFUSED: auth_strategy is noauth" in started.stderr
    assert "Application startup failed" in started.stderr
