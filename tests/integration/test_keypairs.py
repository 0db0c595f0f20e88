"""os-keypairs over HTTP on the real stack: import and generate, list/show/delete, what other
users see, the per-user limit, and key_name on server create (a keypair of the caller, or a
400 that creates nothing)."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.integration.client import NovaClient
from tests.integration.test_bad_input import ZEROS, refused


def public_line(comment: str = "alice@laptop") -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    public = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{public.decode()} {comment}"


def md5_of_key_data(line: str) -> str:
    digest = hashlib.md5(base64.b64decode(line.split()[1])).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


@pytest.fixture
def me(nova: NovaClient) -> Iterator[NovaClient]:
    """A user of this test's project whom no other test shares (keypairs are per user)."""
    client = nova.as_user("u-" + uuid.uuid4().hex[:12])
    yield client
    client.close()


@pytest.fixture
def other(nova: NovaClient) -> Iterator[NovaClient]:
    client = nova.as_user("v-" + uuid.uuid4().hex[:12])
    yield client
    client.close()


def show(client: NovaClient, name: str, **params: Any) -> httpx.Response:
    return client.http.get(f"/v2.1/os-keypairs/{name}", params=params)


def test_import_then_list_show_and_delete(me: NovaClient) -> None:
    line = public_line()
    created = me.create_keypair("laptop", line)
    assert created.status_code == 200, created.text
    keypair = created.json()["keypair"]
    assert keypair == {
        "name": "laptop",
        "public_key": line,
        "fingerprint": md5_of_key_data(line),
        "user_id": me.user,
    }  # (no `type` at 2.1: Nova shows it from 2.2)

    listed = me.http.get("/v2.1/os-keypairs").json()
    assert listed == {
        "keypairs": [
            {
                "keypair": {
                    "name": "laptop",
                    "public_key": line,
                    "fingerprint": keypair["fingerprint"],
                }
            }
        ]
    }

    shown = show(me, "laptop")
    assert shown.status_code == 200, shown.text
    detail = shown.json()["keypair"]
    assert {k: detail[k] for k in keypair} == keypair
    assert isinstance(detail["id"], int) and detail["created_at"]
    assert (detail["deleted"], detail["updated_at"], detail["deleted_at"]) == (False, None, None)

    deleted = me.http.delete("/v2.1/os-keypairs/laptop")
    assert deleted.status_code == 202, deleted.text
    assert me.keypair_names() == []
    message = refused(show(me, "laptop"), 404)
    assert message == f"Keypair laptop not found for user {me.user}"
    refused(me.http.delete("/v2.1/os-keypairs/laptop"), 404)


def test_a_generated_private_key_is_returned_once_and_matches(me: NovaClient) -> None:
    created = me.create_keypair("made for me")
    assert created.status_code == 200, created.text
    keypair = created.json()["keypair"]
    private = serialization.load_ssh_private_key(keypair["private_key"].encode(), password=None)
    derived = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert keypair["public_key"].split()[:2] == derived.decode().split()
    assert keypair["fingerprint"] == md5_of_key_data(keypair["public_key"])

    detail = show(me, "made for me").json()["keypair"]
    assert "private_key" not in detail
    assert detail["public_key"] == keypair["public_key"]
    listed = me.http.get("/v2.1/os-keypairs").json()["keypairs"]
    assert [entry["keypair"].get("private_key") for entry in listed] == [None]


def test_a_second_keypair_of_the_same_name_is_409_and_changes_nothing(me: NovaClient) -> None:
    line = public_line()
    assert me.create_keypair("k", line).status_code == 200
    message = refused(me.create_keypair("k", public_line()), 409)
    assert message == "Key pair 'k' already exists."
    refused(me.create_keypair("k"), 409)
    assert show(me, "k").json()["keypair"]["public_key"] == line
    assert me.keypair_names() == ["k"]


def test_an_invalid_public_key_is_400_naming_public_key(me: NovaClient) -> None:
    line = public_line()
    cases = [
        "ssh-ed25519 not-base64!",
        "ssh-rsa " + line.split(maxsplit=1)[1],  # claims RSA, holds ed25519
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP8=",
        "hello",
    ]
    for bad in cases:
        message = refused(me.create_keypair("bad", bad), 400)
        assert message.startswith("Keypair data is invalid: public_key"), message
    assert me.keypair_names() == []


AT_2_10 = {"OpenStack-API-Version": "compute 2.10"}


def test_other_users_neither_see_nor_delete_a_keypair(
    me: NovaClient, other: NovaClient, nova: NovaClient
) -> None:
    line = public_line()
    assert me.create_keypair("shared-name", line).status_code == 200
    assert other.keypair_names() == []
    refused(show(other, "shared-name"), 404)
    refused(other.http.delete("/v2.1/os-keypairs/shared-name"), 404)
    # A name is unique per user only.
    assert other.create_keypair("shared-name").status_code == 200
    # Only an admin may look at another user's keypairs (from 2.10: Nova ignores user_id
    # before).
    mine = {"user_id": me.user}
    refused(other.http.get("/v2.1/os-keypairs", params=mine, headers=AT_2_10), 403)
    as_admin = nova.admin.get("/v2.1/os-keypairs", params=mine, headers=AT_2_10).json()
    assert [k["keypair"]["public_key"] for k in as_admin["keypairs"]] == [line]
    admin_show = nova.admin.get("/v2.1/os-keypairs/shared-name", params=mine, headers=AT_2_10)
    assert admin_show.json()["keypair"]["user_id"] == me.user
    at_21 = nova.admin.get("/v2.1/os-keypairs", params=mine).json()  # the admin's own
    assert line not in [k["keypair"]["public_key"] for k in at_21["keypairs"]]
    assert show(me, "shared-name").json()["keypair"]["public_key"] == line


def test_server_with_the_caller_s_key_name_boots_and_shows_it(me: NovaClient) -> None:
    assert me.create_keypair("boot key", public_line()).status_code == 200
    server_id = me.create_ok(name="with-key", key_name="boot key")
    assert me.show(server_id, admin=False)["key_name"] == "boot key"
    assert me.wait_status(server_id, "ACTIVE")["key_name"] == "boot key"
    # As in Nova, deleting the keypair later does not change the server.
    assert me.http.delete("/v2.1/os-keypairs/boot key").status_code == 202
    assert me.show(server_id, admin=False)["key_name"] == "boot key"
    me.delete_and_wait(server_id)


def test_server_with_an_unknown_or_another_user_s_key_name_is_400_and_creates_nothing(
    me: NovaClient, other: NovaClient
) -> None:
    assert other.create_keypair("theirs", public_line()).status_code == 200
    for key_name in ("nope", "theirs"):
        message = refused(me.create(name="no-key", key_name=key_name), 400)
        assert message.startswith(
            "Invalid input for field/attribute key_name. Invalid key_name provided."
        ), message
        assert key_name in message
    assert me.usage() == ZEROS
    assert me.servers() == []


def test_the_101st_keypair_of_a_user_is_403(me: NovaClient) -> None:
    limits = me.http.get("/v2.1/limits").json()["limits"]["absolute"]
    assert limits["maxTotalKeypairs"] == 100
    for index in range(100):
        response = me.create_keypair(f"k{index:03d}", public_line())
        assert response.status_code == 200, response.text
    message = refused(me.create_keypair("one too many", public_line()), 403)
    assert message == "Quota exceeded, too many key pairs."
    refused(me.create_keypair("generated one too many"), 403)
    assert len(me.keypair_names()) == 100
    assert "one too many" not in me.keypair_names()
    # Deleting one makes room again.
    assert me.http.delete("/v2.1/os-keypairs/k000").status_code == 202
    assert me.create_keypair("one too many", public_line()).status_code == 200
    assert len(me.keypair_names()) == 100
