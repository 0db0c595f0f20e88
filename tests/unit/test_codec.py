"""The payload codec (codec/): AES-GCM per payload, keys that rotate, the development key file,
and decoding a history event in place."""

from __future__ import annotations

import asyncio
import base64
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.history.v1 import HistoryEvent
from temporalio.converter import DataConverter

import codec
from workflows.contracts import CreateRequest

SECRET = b"#cloud-config\npassword: hunter2"


def key(n: int) -> bytes:
    return bytes([n]) * 32


def b64(*keys: bytes) -> str:
    return ",".join(base64.b64encode(k).decode() for k in keys)


def plain(data: bytes = SECRET) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


def encode(keys: str, payload: Payload) -> Payload:
    return asyncio.run(codec.EncryptionCodec(codec.parse_keys(keys)).encode([payload]))[0]


def decode(keys: str, payload: Payload) -> Payload:
    return asyncio.run(codec.EncryptionCodec(codec.parse_keys(keys)).decode([payload]))[0]


def test_a_payload_is_encrypted_whole_and_names_its_key() -> None:
    sealed = encode(b64(key(1)), plain())
    assert sealed.metadata["encoding"] == codec.ENCODING
    assert sealed.metadata[codec.KEY_ID] == codec.key_id(key(1)).encode()
    assert set(sealed.metadata) == {"encoding", codec.KEY_ID}  # json/plain is inside
    assert SECRET not in sealed.SerializeToString() and b"json/plain" not in sealed.data
    assert decode(b64(key(1)), sealed) == plain()
    assert encode(b64(key(1)), plain()).data != sealed.data  # a fresh nonce each time


def test_a_payload_encrypted_with_an_old_key_decodes_after_rotation() -> None:
    sealed_with_a = encode(b64(key(1)), plain())
    assert decode(b64(key(2), key(1)), sealed_with_a) == plain()
    # The first key is the one that encrypts now.
    assert encode(b64(key(2), key(1)), plain()).metadata[codec.KEY_ID] == (
        codec.key_id(key(2)).encode()
    )


def test_a_payload_whose_key_is_gone_is_a_clear_error() -> None:
    sealed_with_a = encode(b64(key(1)), plain())
    with pytest.raises(codec.PayloadKeyError) as refused:
        decode(b64(key(2)), sealed_with_a)
    message = str(refused.value)
    assert codec.key_id(key(1)) in message and "not one of the payload keys" in message
    assert b64(key(1)) not in message and b64(key(2)) not in message  # ids, never keys


def test_an_altered_payload_does_not_decrypt() -> None:
    sealed = encode(b64(key(1)), plain())
    altered = Payload()
    altered.CopyFrom(sealed)
    altered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(codec.PayloadKeyError, match="altered"):
        decode(b64(key(1)), altered)


def test_a_plain_payload_decodes_as_it_is() -> None:
    """Histories written before encryption (and the recorded replay fixtures) stay readable."""
    assert decode(b64(key(1)), plain()) == plain()


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ("", "no payload key"),
        (" , ", "no payload key"),
        ("not base64!", "#1 is not base64"),
        (b64(key(1)) + "," + base64.b64encode(b"short").decode(), "#2 is 5 bytes"),
    ],
)
def test_keys_that_are_no_keys_are_refused(keys: str, problem: str) -> None:
    with pytest.raises(codec.PayloadKeyError, match=problem):
        codec.parse_keys(keys)


def test_the_development_key_is_made_once_private_and_shared(tmp_path: Path) -> None:
    first = codec.load_keys(None, tmp_path)
    assert len(first) == 1 and len(first[0]) == 32
    path = tmp_path / codec.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert codec.load_keys(None, tmp_path) == first  # another process of the stack: the same
    assert [p.name for p in tmp_path.iterdir()] == [codec.KEY_FILE]  # nothing left aside
    assert codec.load_keys(b64(key(3)), tmp_path) == [key(3)]  # configured keys win


def test_no_key_where_none_may_be_made_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(codec.PayloadKeyError, match="NOVAFLOW_PAYLOAD_KEYS"):
        codec.load_keys(None, tmp_path, create=False)
    assert not (tmp_path / codec.KEY_FILE).exists()


def test_the_data_converter_round_trips_a_contract_without_showing_it() -> None:
    converter = codec.data_converter([key(1)])
    request = CreateRequest(
        request_id="req-1", reservation_id="r-1", project_id="p", user_id="u", flavor_id="1",
        flavor_name="m1.tiny", image_id="img", user_data=base64.b64encode(SECRET).decode(),
    )  # fmt: skip

    async def round_trip() -> tuple[list[Payload], list[object]]:
        payloads = await converter.encode([request])
        return payloads, await converter.decode(payloads, [CreateRequest])

    payloads, [back] = asyncio.run(round_trip())
    assert back == request
    raw = b"".join(p.SerializeToString() for p in payloads)
    assert request.user_data is not None
    assert request.user_data.encode() not in raw and b"req-1" not in raw
    assert DataConverter.default.payload_codec is None  # the default is left alone


def test_a_history_event_decodes_in_place() -> None:
    sealer = codec.EncryptionCodec([key(1)])
    event = HistoryEvent(event_id=1)
    started = event.workflow_execution_started_event_attributes
    [sealed] = asyncio.run(sealer.encode([plain(b'"input"')]))
    started.input.CopyFrom(Payloads(payloads=[sealed, sealed]))
    started.memo.fields["request"].CopyFrom(sealed)
    event.user_metadata.summary.CopyFrom(sealed)
    started.search_attributes.indexed_fields["ServerId"].CopyFrom(plain(b'"s-1"'))

    asyncio.run(codec.decode_message(event, sealer))
    assert list(started.input.payloads) == [plain(b'"input"'), plain(b'"input"')]
    assert started.memo.fields["request"] == plain(b'"input"')
    assert event.user_metadata.summary == plain(b'"input"')
    assert started.search_attributes.indexed_fields["ServerId"] == plain(b'"s-1"')
