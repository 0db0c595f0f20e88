"""No secret in Temporal in plain text (issue 11): every payload of a create is encrypted
(codec/), so its user data is in no history, update or memo as the server stores them; a client
with the stack's key reads them; the Temporal UI decodes them through the API's codec endpoint,
for admins only."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

import codec
from api.codec_server import COOKIE
from tests.integration.client import NovaClient, wait_until
from workers.devstack import Stack, temporal_binary
from workflows.contracts import CreateServerInput, ReserveInput

PLAIN_BY_DESIGN = (
    # Indexed for visibility queries: the server must read them (ids, never secrets).
    "search_attributes.indexed_fields",
    # SDK core's own note of a local activity (its type, id, attempt, time), which core writes
    # itself; the activity's result beside it is encrypted.
    "marker_recorded_event_attributes.details[data]",
)


def payloads_in(message: Message, path: str = "") -> Iterator[tuple[str, Payload]]:
    """Every payload anywhere in a protobuf message, with where it is."""
    for field, value in message.ListFields():
        kind = field.message_type
        if kind is None:
            continue
        where = f"{path}.{field.name}" if path else field.name
        if kind.GetOptions().map_entry:
            value_kind = kind.fields_by_name["value"].message_type
            for key in value if value_kind is not None else ():
                if value_kind.full_name == Payload.DESCRIPTOR.full_name:
                    yield f"{where}[{key}]", value[key]
                else:
                    yield from payloads_in(value[key], f"{where}[{key}]")
        elif kind.full_name == Payload.DESCRIPTOR.full_name:
            for item in value if field.is_repeated else [value]:
                yield where, item
        elif field.is_repeated:
            for index, item in enumerate(value):
                yield from payloads_in(item, f"{where}[{index}]")
        else:
            yield from payloads_in(value, where)


def raw_client(stack: Stack) -> Any:
    """A Temporal client without the codec: what `temporal workflow show` sees."""
    return Client.connect(f"127.0.0.1:{stack.temporal_port}")


def creates_of(stack: Stack, project: str, count: int) -> list[str]:
    async def run() -> list[str]:
        client = await raw_client(stack)
        query = f'ProjectId = "{project}" AND Operation = "create"'
        return [w.id async for w in client.list_workflows(query)]

    def found() -> list[str] | None:
        ids: list[str] = run_sync(run)
        return ids if len(ids) >= count else None

    return wait_until(found, f"{count} creates of {project}")


def run_sync(work: Any) -> Any:
    return asyncio.run(work())


@pytest.fixture(scope="module")
def secret_create(stack: Stack) -> Iterator[dict[str, Any]]:
    """Two servers created at once (the second by its sibling workflow) with user data that
    holds a password; deleted afterwards."""
    nova = NovaClient(stack.api_url, user="alice", project="p-sealed-" + uuid.uuid4().hex[:8])
    secret = f"#cloud-config\npassword: hunter2-{uuid.uuid4()}"
    user_data = base64.b64encode(secret.encode()).decode()
    response = nova.create(name="sealed", user_data=user_data, min_count=2, max_count=2)
    assert response.status_code == 202, response.text
    workflow_ids = creates_of(stack, nova.project, 2)
    server_ids = [w.split("-create-")[0].removeprefix("server-") for w in workflow_ids]
    for server_id in server_ids:
        nova.wait_status(server_id, "ACTIVE")
    yield {
        "nova": nova,
        "secret": secret,
        "user_data": user_data,
        "workflow_ids": workflow_ids,
    }
    for server_id in server_ids:
        nova.delete_and_wait(server_id)
    nova.close()


def test_user_data_is_nowhere_in_a_history_as_the_server_keeps_it(
    stack: Stack, secret_create: dict[str, Any]
) -> None:
    secret, user_data = secret_create["secret"], secret_create["user_data"]
    needles = [secret.encode(), user_data.encode(), secret.split("password: ")[1].encode()]

    async def inspect() -> None:
        client = await raw_client(stack)
        for workflow_id in secret_create["workflow_ids"]:
            handle = client.get_workflow_handle(workflow_id)
            history = await handle.fetch_history()
            description = await handle.describe()
            stored = [history.to_json().encode(), description.raw_description.SerializeToString()]
            stored += [event.SerializeToString() for event in history.events]
            for blob in stored:
                assert not [n for n in needles if n in blob], workflow_id
            # Every payload is ciphertext: inputs, the reserve update's argument, activity
            # inputs and results, memo, summaries. Only search attributes are plain.
            unsealed = [
                f"{EventType.Name(event.event_type)} {where}"
                for event in history.events
                for where, payload in payloads_in(event)
                if payload.metadata.get("encoding") != codec.ENCODING
                and not any(plain in where for plain in PLAIN_BY_DESIGN)
            ]
            unsealed += [
                f"description {where}"
                for where, payload in payloads_in(description.raw_description)
                if payload.metadata.get("encoding") != codec.ENCODING
                and not any(plain in where for plain in PLAIN_BY_DESIGN)
            ]
            assert unsealed == [], workflow_id
            # Without the key, the input is no CreateServerInput.
            started = history.events[0].workflow_execution_started_event_attributes
            with pytest.raises(Exception, match="binary/encrypted"):
                await client.data_converter.decode(started.input.payloads, [CreateServerInput])

    asyncio.run(inspect())


def test_temporal_workflow_show_without_the_key_shows_ciphertext(
    stack: Stack, secret_create: dict[str, Any]
) -> None:
    workflow_id = secret_create["workflow_ids"][0]
    shown = subprocess.run(
        [temporal_binary(), "workflow", "show", "-w", workflow_id, "-o", "json"]
        + ["--address", f"127.0.0.1:{stack.temporal_port}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    sealed = (codec.ENCODING.decode(), base64.b64encode(codec.ENCODING).decode())
    assert any(marker in shown for marker in sealed)
    assert secret_create["user_data"] not in shown and "hunter2" not in shown


def test_with_the_key_the_input_the_update_and_the_memo_decode(
    stack: Stack, secret_create: dict[str, Any]
) -> None:
    user_data = secret_create["user_data"]

    async def inspect() -> None:
        client = await Client.connect(
            f"127.0.0.1:{stack.temporal_port}", data_converter=stack.data_converter()
        )
        first = None
        for workflow_id in secret_create["workflow_ids"]:
            handle = client.get_workflow_handle(workflow_id)
            history: WorkflowHistory = await handle.fetch_history()
            started = history.events[0].workflow_execution_started_event_attributes
            [inp] = await client.data_converter.decode(started.input.payloads, [CreateServerInput])
            assert inp.request.user_data == user_data
            if not inp.reserved:
                first = handle
        assert first is not None  # the one the API started, with the reservation
        history = await first.fetch_history()
        [accepted] = [
            e.workflow_execution_update_accepted_event_attributes
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        ]
        assert accepted.accepted_request.input.name == "reserve"
        [reserve] = await client.data_converter.decode(
            accepted.accepted_request.input.args.payloads, [ReserveInput]
        )
        assert reserve.request.user_data == user_data
        memo = await (await first.describe()).memo()
        assert memo["request"]["user_data"] == f"<{len(user_data)} bytes>"  # never the data

    asyncio.run(inspect())


# ------------------------------------------------------------ the UI's codec endpoint


def started_input(stack: Stack, workflow_id: str) -> Payloads:
    async def run() -> Payloads:
        client = await raw_client(stack)
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        return history.events[0].workflow_execution_started_event_attributes.input

    return run_sync(run)


def as_json(payloads: Payloads) -> dict[str, Any]:
    return dict(json_format.MessageToDict(payloads))


def from_json(body: dict[str, Any]) -> Payloads:
    return json_format.ParseDict(body, Payloads())


def test_the_codec_endpoint_decodes_for_admins_only(
    stack: Stack, secret_create: dict[str, Any]
) -> None:
    sealed = as_json(started_input(stack, secret_create["workflow_ids"][0]))
    url = f"{stack.api_url}/temporal-codec/decode"
    with httpx.Client(timeout=30) as http:
        admin = http.post(
            url, json=sealed, headers={"X-Auth-Token": "admin:ops", "X-Namespace": "default"}
        )
        assert admin.status_code == 200, admin.text
        [payload] = from_json(admin.json()).payloads
        assert payload.metadata["encoding"] == b"json/plain"
        assert json.loads(payload.data)["request"]["user_data"] == secret_create["user_data"]

        member = http.post(url, json=sealed, headers={"X-Auth-Token": "alice:ops"})
        assert member.status_code == 403, member.text
        assert secret_create["user_data"] not in member.text
        nobody = http.post(url, json=sealed)
        assert nobody.status_code == 401, nobody.text

        # Another namespace's payloads are not ours: answered as they are.
        other = http.post(
            url, json=sealed, headers={"X-Auth-Token": "admin:ops", "X-Namespace": "elsewhere"}
        )
        assert other.status_code == 200 and other.json() == sealed


def test_the_codec_endpoint_encodes_what_it_decodes(stack: Stack) -> None:
    plain = Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"}, data=b'"retry"')])
    admin = {"X-Auth-Token": "admin:ops"}
    with httpx.Client(base_url=f"{stack.api_url}/temporal-codec", timeout=30) as http:
        encoded = http.post("/encode", json=as_json(plain), headers=admin)
        assert encoded.status_code == 200, encoded.text
        [sealed] = from_json(encoded.json()).payloads
        assert sealed.metadata["encoding"] == codec.ENCODING and b"retry" not in sealed.data
        decoded = http.post("/decode", json=encoded.json(), headers=admin)
        assert from_json(decoded.json()) == plain
        assert http.post("/encode", json=as_json(plain)).status_code == 401
        broken = http.post("/decode", content=b"{not json", headers=admin)
        assert broken.status_code == 400


def test_the_ui_signs_in_with_a_cookie_and_calls_cross_origin(
    stack: Stack, secret_create: dict[str, Any]
) -> None:
    """The browser's way: a preflight from the UI's origin, a token pasted on the sign-in page
    kept in a cookie, then decode with that cookie only."""
    sealed = as_json(started_input(stack, secret_create["workflow_ids"][0]))
    ui = {"Origin": stack.ui_url}
    with httpx.Client(base_url=f"{stack.api_url}/temporal-codec", timeout=30) as http:
        preflight = http.options(
            "/decode",
            headers={
                **ui,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == stack.ui_url
        assert preflight.headers["access-control-allow-credentials"] == "true"
        elsewhere = http.options(
            "/decode",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in elsewhere.headers

        page = http.get("/")
        assert page.status_code == 200 and "<form" in page.text
        refused = http.post("/session", data={"token": "alice:ops"})
        assert refused.status_code == 403 and not http.cookies
        signed_in = http.post("/session", data={"token": "admin:ops"})
        assert signed_in.status_code == 200, signed_in.text
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Path=/temporal-codec" in cookie

        decoded = http.post("/decode", json=sealed, headers={**ui, "X-Namespace": "default"})
        assert decoded.status_code == 200, decoded.text
        assert decoded.headers["access-control-allow-origin"] == stack.ui_url
        [payload] = from_json(decoded.json()).payloads
        assert json.loads(payload.data)["request"]["user_data"] == secret_create["user_data"]
        # The cookie is the codec's only: the rest of the API does not take it.
        token_cookie = {"Cookie": f"{COOKIE}=admin:ops"}
        assert httpx.get(f"{stack.api_url}/v2.1/servers", headers=token_cookie).status_code == 401

        http.post("/session", data={"token": ""})  # signing out
        assert http.post("/decode", json=sealed, headers=ui).status_code == 401


def test_the_dev_server_ui_is_pointed_at_the_codec_endpoint(stack: Stack) -> None:
    settings = httpx.get(f"{stack.ui_url}/api/v1/settings", timeout=30).json()
    assert settings["Codec"]["Endpoint"] == f"{stack.api_url}/temporal-codec"
