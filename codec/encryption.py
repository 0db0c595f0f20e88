"""The payload codec: AES-256-GCM over each whole payload (its metadata and data), with keys
that rotate.

Keys: NOVAFLOW_PAYLOAD_KEYS, comma-separated base64 32-byte keys; the first encrypts, all
decrypt (rotation: put the new key first, keep the old ones until no history that needs them
is kept any more). Without it, the development key in STATE_DIR/payload-key, made once (mode
0600) by the first process that needs it: every process of one stack shares the state
directory, so they all use the same key with no configuration.

An encrypted payload: metadata `encoding: binary/encrypted` and `encryption-key-id: <id of the
key>`, data the 12-byte nonce then the ciphertext (the key id is authenticated with it). A
payload that is not encrypted decodes as it is: histories written before encryption replay.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
KEY_FILE = "payload-key"
KEY_BYTES = 32
NONCE_BYTES = 12
KEYS_SETTING = "NOVAFLOW_PAYLOAD_KEYS"


class PayloadKeyError(ValueError):
    """A key that is no key, no key at all, or a payload no configured key decrypts."""


def key_id(key: bytes) -> str:
    """A key's name in the payloads it encrypts: a fingerprint, which tells nothing of it."""
    return hashlib.sha256(b"novaflow payload key\0" + key).hexdigest()[:16]


def new_key() -> str:
    """A fresh key, as NOVAFLOW_PAYLOAD_KEYS takes it (base64)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_keys(text: str) -> list[bytes]:
    """Comma-separated base64 keys (whitespace ignored), the encrypting one first. Errors name
    a key by its position, never by its value."""
    keys = []
    for position, item in enumerate(text.replace("\n", ",").split(","), start=1):
        item = item.strip()
        if not item:
            continue
        try:
            key = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise PayloadKeyError(f"payload key #{position} is not base64") from None
        if len(key) != KEY_BYTES:
            raise PayloadKeyError(
                f"payload key #{position} is {len(key)} bytes: AES-256 needs {KEY_BYTES}"
            )
        keys.append(key)
    if not keys:
        raise PayloadKeyError(f"no payload key in {KEYS_SETTING}")
    return keys


def load_keys(configured: str | None, state_dir: Path | None, create: bool = True) -> list[bytes]:
    """The configured keys; without any, those of STATE_DIR/payload-key, which is made (one
    fresh key, mode 0600) when `create` and it is not there yet."""
    if configured and configured.strip():
        return parse_keys(configured)
    if state_dir is None:
        raise PayloadKeyError(f"no payload key: set {KEYS_SETTING}")
    path = Path(state_dir) / KEY_FILE
    if create and not path.exists():
        _create_key_file(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise PayloadKeyError(
            f"no payload key: set {KEYS_SETTING}, or NOVAFLOW_STATE_DIR to the stack's state "
            f"directory (it holds {KEY_FILE}; {path} does not exist)"
        ) from None
    try:
        return parse_keys(text)
    except PayloadKeyError as error:
        raise PayloadKeyError(f"{path}: {error}") from None


def _create_key_file(path: Path) -> None:
    """Written aside, then linked into place: a process reading it never sees it half written,
    and of two processes making it at once, one key wins and both use it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(new_key() + "\n")
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs
            os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)


class EncryptionCodec(PayloadCodec):
    """Encrypts with the first key; decrypts with whichever key a payload names."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise PayloadKeyError("no payload key")
        self._ciphers = {key_id(key): AESGCM(key) for key in keys}
        self.encrypting_key_id = key_id(keys[0])

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") == ENCODING:
            return payload  # already encrypted
        name = self.encrypting_key_id.encode()
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[self.encrypting_key_id].encrypt(
            nonce, payload.SerializeToString(), name
        )
        return Payload(metadata={"encoding": ENCODING, KEY_ID: name}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption (or never encoded: search attributes)
        name = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(name)
        if cipher is None:
            raise PayloadKeyError(
                f"a payload is encrypted with key {name or '(none named)'}, which is not one of "
                f"the payload keys ({KEYS_SETTING}: {', '.join(self._ciphers)}): add it back "
                "(after the encrypting one) to read it"
            )
        try:
            plain = cipher.decrypt(
                payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], name.encode()
            )
        except InvalidTag:
            raise PayloadKeyError(
                f"a payload encrypted with key {name} does not decrypt: it was altered"
            ) from None
        return Payload.FromString(plain)


def data_converter(keys: Sequence[bytes]) -> DataConverter:
    """Temporal's default converter with the encryption codec: what every client connects with."""
    return dataclasses.replace(DataConverter.default, payload_codec=EncryptionCodec(keys))


async def decode_message(message: Message, codec: PayloadCodec) -> None:
    """Decode, in place, every payload anywhere in a protobuf message (e.g. a history event,
    as `fetch_history` returns it encoded): inputs, results, memos, headers, summaries,
    failures' details."""
    for field, value in message.ListFields():
        kind = field.message_type
        if kind is None:
            continue
        if kind.GetOptions().map_entry:
            value_kind = kind.fields_by_name["value"].message_type
            if value_kind is None:
                continue
            for key in list(value):
                if value_kind.full_name == Payload.DESCRIPTOR.full_name:
                    [decoded] = await codec.decode([value[key]])
                    if decoded is not value[key]:
                        value[key].CopyFrom(decoded)
                else:
                    await decode_message(value[key], codec)
        elif kind.full_name == Payload.DESCRIPTOR.full_name:
            if field.is_repeated:
                decoded_all = await codec.decode(list(value))
                del value[:]
                value.extend(decoded_all)
            else:
                [decoded] = await codec.decode([value])
                if decoded is not value:
                    value.CopyFrom(decoded)
        elif field.is_repeated:
            for item in value:
                await decode_message(item, codec)
        else:
            await decode_message(value, codec)
