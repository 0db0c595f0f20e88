"""Keycloak's tokens and Nova's policy, against a real Keycloak (the repo's realm): each role
(alice: member of demo, carol: reader of demo, bob: member of other, admin) on its own and
another project's server, over the kinds of route; no token, garbage, tampered, foreign,
expired, wrong-audience and project-less tokens; a key rotation without restarting the API."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from jwcrypto import jwk, jws
from jwcrypto.common import json_encode
from keycloak import KeycloakAdmin, KeycloakOpenID
from keycloak.exceptions import KeycloakAuthenticationError, KeycloakPostError
from temporalio.client import Client

from novaflow.seed import PRIVATE_NETWORK_ID
from tests.integration.client import refused, wait_until
from workers.devstack import Keycloak, Stack

API = Callable[..., httpx.Client]
TokenFor = Callable[..., str]
USERS = ("alice", "carol", "bob", "admin")


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def header_of(token: str) -> dict[str, Any]:
    header = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))))


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json_encode(data).encode()).rstrip(b"=").decode()


def status_of(admin: httpx.Client, server_id: str) -> str:
    response = admin.get(f"/v2.1/servers/{server_id}")
    return "GONE" if response.status_code == 404 else str(response.json()["server"]["status"])


@pytest.fixture(scope="module")
def demo_server(api: API) -> dict[str, str]:
    """An ACTIVE server of alice's (project demo), built from an image with content that the
    admin uploaded: its host fetched the image with the compute workers' service token."""
    admin = api("admin")
    image = admin.post("/image/v2/images", json={"name": "kc-image", "disk_format": "raw"})
    assert image.status_code == 201, image.text
    image_id = image.json()["id"]
    upload = admin.put(
        f"/image/v2/images/{image_id}/file",
        content=os.urandom(1024 * 1024),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 204, upload.text
    body = {
        "server": {
            "name": "alices-vm",
            "flavorRef": "1",
            "imageRef": image_id,
            "networks": [{"uuid": PRIVATE_NETWORK_ID}],
        }
    }
    created = api("alice").post("/v2.1/servers", json=body)
    assert created.status_code == 202, created.text
    server_id = created.json()["server"]["id"]

    def active() -> bool:
        status = status_of(admin, server_id)
        assert status != "ERROR", admin.get(f"/v2.1/servers/{server_id}").text
        return status == "ACTIVE"

    wait_until(active, "alice's server to be ACTIVE", timeout=60)
    return {"server": server_id, "image": image_id}


# ------------------------------------------------------------ who may do what

MISSING = str(uuid.uuid4())
ALLOWED_BUT_EMPTY = 400  # the rule let the caller in; the empty body is refused after it

# (what, method, path, body, rule named in a 403, {user: expected status})
CASES: list[tuple[str, str, str, Any, str, dict[str, int]]] = [
    ("list", "GET", "/v2.1/servers/detail", None, "",
     {"alice": 200, "carol": 200, "bob": 200, "admin": 200}),
    ("show", "GET", "/v2.1/servers/{server}", None, "",
     {"alice": 200, "carol": 200, "bob": 404, "admin": 200}),
    ("create", "POST", "/v2.1/servers", {}, "os_compute_api:servers:create",
     {"alice": ALLOWED_BUT_EMPTY, "carol": 403, "bob": ALLOWED_BUT_EMPTY,
      "admin": ALLOWED_BUT_EMPTY}),
    ("rename", "PUT", "/v2.1/servers/{server}", {"server": {"name": "alices-vm"}},
     "os_compute_api:servers:update",
     {"alice": 200, "carol": 403, "bob": 404, "admin": 200}),
    ("delete (of nothing)", "DELETE", f"/v2.1/servers/{MISSING}", None,
     "os_compute_api:servers:delete",
     {"alice": 404, "carol": 403, "bob": 404, "admin": 404}),
    ("action", "POST", "/v2.1/servers/{server}/action", {"os-getConsoleOutput": {}},
     "os_compute_api:os-console-output",
     {"alice": 200, "carol": 403, "bob": 404, "admin": 200}),
    ("admin action", "POST", "/v2.1/servers/{server}/action",
     {"migrate": {"host": "no-such-host"}}, "os_compute_api:os-migrate-server:migrate",
     {"alice": 403, "carol": 403, "bob": 403, "admin": 400}),
    ("metadata", "PUT", "/v2.1/servers/{server}/metadata/role", {"meta": {"role": "web"}},
     "os_compute_api:server-metadata:update",
     {"alice": 200, "carol": 403, "bob": 404, "admin": 200}),
    ("os-migrations", "GET", "/v2.1/os-migrations", None, "os_compute_api:os-migrations:index",
     {"alice": 403, "carol": 403, "bob": 403, "admin": 200}),
    ("os-hypervisors", "GET", "/v2.1/os-hypervisors/detail", None,
     "os_compute_api:os-hypervisors:list-detail",
     {"alice": 403, "carol": 403, "bob": 403, "admin": 200}),
    ("quota of demo", "GET", "/v2.1/os-quota-sets/demo", None,
     "os_compute_api:os-quota-sets:show",
     {"alice": 200, "carol": 200, "bob": 403, "admin": 200}),
    ("quota set", "PUT", "/v2.1/os-quota-sets/demo", {"quota_set": {"instances": 20}},
     "os_compute_api:os-quota-sets:update",
     {"alice": 403, "carol": 403, "bob": 403, "admin": 200}),
    ("keypairs", "GET", "/v2.1/os-keypairs", None, "",
     {"alice": 200, "carol": 200, "bob": 200, "admin": 200}),
    ("flavors", "GET", "/v2.1/flavors", None, "",
     {"alice": 200, "carol": 200, "bob": 200, "admin": 200}),
    ("images", "GET", "/image/v2/images", None, "",
     {"alice": 200, "carol": 200, "bob": 200, "admin": 200}),
    ("image register", "POST", "/image/v2/images", {}, "add_image",
     {"alice": 403, "carol": 403, "bob": 403, "admin": ALLOWED_BUT_EMPTY}),
]  # fmt: skip


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(("what", "method", "path", "body", "rule", "expected"), CASES,
                         ids=[case[0] for case in CASES])  # fmt: skip
def test_who_may_do_what(
    api: API,
    demo_server: dict[str, str],
    user: str,
    what: str,
    method: str,
    path: str,
    body: Any,
    rule: str,
    expected: dict[str, int],
) -> None:
    url = path.format(server=demo_server["server"])
    response = api(user).request(method, url, json=body)
    status = expected[user]
    if status == 403:
        assert refused(response, 403) == f"Policy doesn't allow {rule} to be performed."
    else:
        assert response.status_code == status, f"{user} {what}: {response.text}"


def test_listings_show_the_callers_project_only(api: API, demo_server: dict[str, str]) -> None:
    def listed(user: str, **params: str) -> set[str]:
        response = api(user).get("/v2.1/servers", params=params)
        assert response.status_code == 200, response.text
        return {s["id"] for s in response.json()["servers"]}

    server = demo_server["server"]
    assert server in listed("alice") and server in listed("carol")
    assert server not in listed("bob")
    assert server not in listed("bob", all_tenants="1")  # only an admin lists every project
    assert server in listed("admin", all_tenants="1")


def test_the_user_of_the_token_is_on_the_action_and_the_workflow(
    api: API, demo_server: dict[str, str], kc_stack: Stack, token_for: TokenFor
) -> None:
    alice = claims_of(token_for("alice"))["sub"]
    server = demo_server["server"]
    actions = api("alice").get(f"/v2.1/servers/{server}/os-instance-actions").json()
    assert [a["user_id"] for a in actions["instanceActions"]] == [alice]
    assert actions["instanceActions"][0]["project_id"] == "demo"

    async def workflows() -> list[str]:
        client = await Client.connect(f"127.0.0.1:{kc_stack.temporal_port}")
        query = f'UserId = "{alice}" AND ServerId = "{server}"'
        return [w.id async for w in client.list_workflows(query)]

    found = wait_until(lambda: asyncio.run(workflows()), "the workflow by UserId", timeout=20)
    assert len(found) == 1 and "-create-" in found[0]


def test_keypairs_are_their_users(api: API, token_for: TokenFor) -> None:
    alice = claims_of(token_for("alice"))["sub"]
    created = api("alice").post("/v2.1/os-keypairs", json={"keypair": {"name": "kc-key"}})
    assert created.status_code == 200, created.text
    assert created.json()["keypair"]["user_id"] == alice
    carol = api("carol").post("/v2.1/os-keypairs", json={"keypair": {"name": "kc-key"}})
    assert carol.status_code == 200, carol.text  # a reader has keypairs of their own

    def names(client: httpx.Client, **params: str) -> list[str]:
        # (another user's keypairs, `user_id`, from microversion 2.10)
        headers = {"OpenStack-API-Version": "compute 2.10"}
        response = client.get("/v2.1/os-keypairs", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [k["keypair"]["name"] for k in response.json()["keypairs"]]

    assert names(api("alice")) == ["kc-key"]
    assert names(api("bob")) == []
    refused(api("bob").get("/v2.1/os-keypairs/kc-key"), 404)
    message = refused(
        api("bob").get(
            "/v2.1/os-keypairs",
            params={"user_id": alice},
            headers={"OpenStack-API-Version": "compute 2.10"},
        ),
        403,
    )
    assert message == "Policy doesn't allow os_compute_api:os-keypairs:index to be performed."
    assert names(api("admin"), user_id=alice) == ["kc-key"]
    assert api("alice").delete("/v2.1/os-keypairs/kc-key").status_code == 202
    assert api("carol").delete("/v2.1/os-keypairs/kc-key").status_code == 202


def test_the_ops_service_account_is_an_admin(api: API, keycloak: Keycloak) -> None:
    ops = KeycloakOpenID(
        server_url=keycloak.url,
        realm_name=keycloak.realm,
        client_id="novaflow-ops",
        client_secret_key="novaflow-ops-dev-secret",
    )
    token = ops.token(grant_type="client_credentials")["access_token"]
    assert api(token=token).get("/v2.1/os-hypervisors").status_code == 200


def test_the_ops_cli_takes_its_clients_token(
    kc_stack: Stack, keycloak: Keycloak, demo_server: dict[str, str]
) -> None:
    env = {k: v for k, v in kc_stack.env.items() if k not in ("NOVAFLOW_TOKEN", "OS_TOKEN")}
    env.update(
        NOVAFLOW_API_URL=kc_stack.api_url,
        NOVAFLOW_OPS_CLIENT_SECRET="novaflow-ops-dev-secret",
        COLUMNS="250",
    )
    novaflow = Path(sys.executable).parent / "novaflow"
    listed = subprocess.run(
        [str(novaflow), "server", "list", "--all-projects"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert demo_server["server"] in listed.stdout


# ------------------------------------------------------------ tokens refused


def test_no_token_is_a_401_with_a_bearer_challenge(api: API) -> None:
    anonymous = api()
    response = anonymous.get("/v2.1/servers")
    assert "no token" in refused(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer realm="novaflow"'
    refused(anonymous.post("/v2.1/servers", json={"server": {}}), 401)
    # The versions document and the docs are public.
    assert anonymous.get("/").status_code == 200
    assert anonymous.get("/openapi.json").status_code == 200


def test_garbage_and_noauth_tokens_are_401(api: API) -> None:
    for token in ("garbage", "alice:demo", "a.b.c"):
        response = api().get("/v2.1/servers", headers={"X-Auth-Token": token})
        assert "Invalid token: malformed" in refused(response, 401), token
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    response = api().get("/v2.1/servers", headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"})
    refused(response, 401, "Bearer")


def test_a_token_in_x_auth_token_works_as_keystoneauths_admin_token_sends_it(
    api: API, token_for: TokenFor
) -> None:
    response = api().get("/v2.1/servers", headers={"X-Auth-Token": token_for("carol")})
    assert response.status_code == 200, response.text


def test_a_tampered_or_foreign_token_is_refused(
    api: API, token_for: TokenFor, keycloak: Keycloak
) -> None:
    token = token_for("bob")
    header, payload, signature = token.split(".")
    promoted = {**claims_of(token), "project_id": "demo", "realm_access": {"roles": ["admin"]}}
    tampered = f"{header}.{b64(promoted)}.{signature}"
    assert "bad signature" in refused(api(token=tampered).get("/v2.1/servers"), 401)

    # Signed with a key of ours that claims the realm's key id.
    impostor = jwk.JWK.generate(kty="RSA", size=2048)
    forged = jws.JWS(json_encode(promoted).encode())
    forged.add_signature(impostor, alg="RS256", protected=json_encode(header_of(token)))
    forged_token = forged.serialize(compact=True)
    assert "bad signature" in refused(api(token=forged_token).get("/v2.1/servers"), 401)

    # A key id the realm does not publish.
    unknown = jws.JWS(json_encode(promoted).encode())
    unknown.add_signature(
        impostor, alg="RS256", protected=json_encode({"alg": "RS256", "kid": "nobody-knows"})
    )
    message = refused(api(token=unknown.serialize(compact=True)).get("/v2.1/servers"), 401)
    assert "unknown key 'nobody-knows'" in message

    # Another realm's token (the master realm's admin): none of this realm's keys signed it.
    master = KeycloakOpenID(server_url=keycloak.url, realm_name="master", client_id="admin-cli")
    other = master.token(keycloak.info["admin_user"], keycloak.info["admin_password"])
    message = refused(api(token=other["access_token"]).get("/v2.1/servers"), 401)
    assert "unknown key" in message


def new_client(kc_admin: KeycloakAdmin, client_id: str, **attributes: str) -> KeycloakOpenID:
    """A public client of the realm with the password grant (made through the admin API).
    `without_scopes`: default client scopes it does not get (comma-separated)."""
    without = set(filter(None, attributes.pop("without_scopes", "").split(",")))
    try:
        kc_admin.create_client(
            {
                "clientId": client_id,
                "publicClient": True,
                "directAccessGrantsEnabled": True,
                "standardFlowEnabled": False,
                "attributes": attributes,
            }
        )
    except KeycloakPostError as error:
        if error.response_code != 409:  # made by an earlier module of the session
            raise
    internal_id = kc_admin.get_client_id(client_id)
    for scope in kc_admin.get_client_default_client_scopes(internal_id):
        if scope["name"] in without:  # a new client gets the realm's defaults: remove them
            kc_admin.delete_client_default_client_scope(internal_id, scope["id"])
    server_url = kc_admin.connection.server_url
    return KeycloakOpenID(server_url=server_url, realm_name="novaflow", client_id=client_id)


def test_an_expired_token_is_refused(
    api: API, kc_admin: KeycloakAdmin, token_for: TokenFor
) -> None:
    short = new_client(kc_admin, "short-lived", **{"access.token.lifespan": "1"})
    token = token_for("alice", client=short)
    exp = claims_of(token)["exp"]
    assert exp - claims_of(token)["iat"] == 1
    time.sleep(max(0.0, exp + 1.2 - time.time()))  # past exp and the stack's 1 s leeway
    assert "Invalid token: expired at" in refused(api(token=token).get("/v2.1/servers"), 401)


def test_a_token_for_another_audience_is_refused(
    api: API, kc_admin: KeycloakAdmin, token_for: TokenFor
) -> None:
    elsewhere = new_client(kc_admin, "another-app", without_scopes="novaflow-api")
    token = token_for("alice", client=elsewhere)
    assert "novaflow-api" not in str(claims_of(token).get("aud"))
    message = refused(api(token=token).get("/v2.1/servers"), 401)
    assert "Invalid token: wrong audience" in message and "another-app" in message


def make_user(kc_admin: KeycloakAdmin, name: str, role: str, project: str | None) -> str:
    existing = kc_admin.get_user_id(name)
    if existing:
        return str(existing)
    user: dict[str, Any] = {
        "username": name,
        "enabled": True,
        "emailVerified": True,
        "email": f"{name}@novaflow.example",
        "firstName": name.title(),
        "lastName": "Example",
        "credentials": [{"type": "password", "value": "secret", "temporary": False}],
    }
    if project is not None:
        user["attributes"] = {"project_id": [project]}
    user_id = str(kc_admin.create_user(user))
    kc_admin.assign_realm_roles(user_id, [kc_admin.get_realm_role(role)])
    return user_id


def test_a_token_without_a_project_is_a_403_naming_the_claim(
    api: API, kc_admin: KeycloakAdmin, token_for: TokenFor
) -> None:
    make_user(kc_admin, "dave", "member", project=None)
    token = token_for("dave", fresh=True)
    assert "project_id" not in claims_of(token)
    assert "no project_id claim" in refused(api(token=token).get("/v2.1/servers"), 403)


def test_a_disabled_user_gets_no_new_token(
    api: API, kc_admin: KeycloakAdmin, token_for: TokenFor
) -> None:
    """Tokens are verified offline: one issued before the user was disabled works until it
    expires (300 s in the realm); Keycloak refuses the disabled user any new one at once."""
    user_id = make_user(kc_admin, "erin", "member", project="demo")
    kc_admin.update_user(user_id, {"enabled": True})
    issued = token_for("erin", fresh=True)
    kc_admin.update_user(user_id, {"enabled": False})
    with pytest.raises((KeycloakAuthenticationError, KeycloakPostError)) as caught:
        token_for("erin", fresh=True)
    assert b"Account disabled" in caught.value.response_body
    assert api(token=issued).get("/v2.1/servers").status_code == 200


def test_a_rotated_key_is_taken_without_restarting_the_api(
    api: API, kc_admin: KeycloakAdmin, token_for: TokenFor
) -> None:
    before = token_for("alice", fresh=True)
    assert api(token=before).get("/v2.1/servers").status_code == 200
    realm = kc_admin.get_realm("novaflow")
    kc_admin.create_component(
        {
            "name": f"rotated-{uuid.uuid4().hex[:6]}",
            "providerId": "rsa-generated",
            "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm["id"],
            "config": {"priority": ["1000"], "keySize": ["2048"], "algorithm": ["RS256"]},
        }
    )
    after = token_for("alice", fresh=True)
    assert header_of(after)["kid"] != header_of(before)["kid"]
    # The API refreshes its keys for the unknown kid (at most once a second in this stack).
    wait_until(
        lambda: api(token=after).get("/v2.1/servers").status_code == 200,
        "a token of the new key to be taken",
        timeout=10,
    )
    assert api(token=before).get("/v2.1/servers").status_code == 200  # the old key stays valid
