"""Keypairs (Nova's os-keypairs): the public keys a user names as a server's key_name.

A keypair belongs to a *user*, not a project, and is named uniquely per user. An imported SSH
public key must be an OpenSSH line, `<type> <base64 key data> [comment]`, whose key data is a
valid key of the type it names; its fingerprint is the MD5 of that key data, in Nova's colon
form (`ssh-keygen -l -E md5`). Without a public key one is generated (ed25519) and its private
key handed back once, never stored. Type `x509` holds a PEM certificate instead, fingerprinted
with SHA-1 as Nova does.

Each user may hold at most `limit` keypairs (Nova's `[quota] key_pairs`, 100). The count and
the insert are one critical section per user: a write session on SQLite already serialises
writers (BEGIN IMMEDIATE); on PostgreSQL a transaction-scoped advisory lock on the user does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import string
import struct
from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, text
from sqlmodel import Session, col, select

from novaflow.errors import Conflict, Invalid, NotFound, OverQuota
from novaflow.models import KeyPair, utcnow
from novaflow.sqlutil import insert_ignore

SSH_KEY_TYPES = (
    "ssh-rsa",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)
TYPES = ("ssh", "x509")
DEFAULT_LIMIT = 100  # per user, Nova's default key_pairs quota; negative means unlimited
NAME_MAX_LENGTH = 255
NAME_CHARACTERS = frozenset(string.ascii_letters + string.digits + " ._-@")
GENERATED_COMMENT = "Generated-by-novaflow"


class InvalidKeypair(Invalid):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Keypair data is invalid: {reason}")


class KeypairExists(Conflict):
    pass


class KeypairNotFound(NotFound):
    pass


class KeypairLimitExceeded(OverQuota):
    pass


@dataclass(frozen=True)
class SSHPublicKey:
    key_type: str  # e.g. "ssh-ed25519"
    blob: bytes  # the decoded key data
    comment: str

    @property
    def fingerprint(self) -> str:
        return md5_fingerprint(self.blob)


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a keypair, or None when it can."""
    if not 1 <= len(name) <= NAME_MAX_LENGTH:
        return f"Keypair name must be 1 to {NAME_MAX_LENGTH} characters long"
    unsafe = sorted(set(name) - NAME_CHARACTERS)
    if unsafe:
        shown = ", ".join(repr(ch) for ch in unsafe)
        return (
            f"Keypair name contains unsafe characters ({shown}): only letters, digits, "
            "spaces, '.', '_', '-' and '@' are allowed"
        )
    return None


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in digest)


def md5_fingerprint(blob: bytes) -> str:
    """`1e:2c:...`: the MD5 of an SSH key's decoded key data, as Nova and `ssh-keygen -E md5`."""
    return _colon_hex(hashlib.md5(blob, usedforsecurity=False).digest())


def _embedded_type(blob: bytes) -> str | None:
    """The key type the key data names in its first field (an SSH string: length, bytes)."""
    if len(blob) < 4:
        return None
    (length,) = struct.unpack(">I", blob[:4])
    if length > len(blob) - 4:
        return None
    try:
        return blob[4 : 4 + length].decode("ascii")
    except UnicodeDecodeError:
        return None


def parse_ssh_public_key(line: str) -> SSHPublicKey:
    """An OpenSSH public key line, checked: a supported type, base64 key data that names the
    same type, and key material that is a valid key of that type."""
    line = line.strip()
    if "\n" in line or "\r" in line:
        raise InvalidKeypair("public_key must be a single line")
    parts = line.split(None, 2)
    if len(parts) < 2:
        raise InvalidKeypair("public_key must be '<type> <base64 key data> [comment]'")
    key_type, data = parts[0], parts[1]
    if key_type not in SSH_KEY_TYPES:
        raise InvalidKeypair(
            f"public_key has the unsupported key type {key_type!r} "
            f"(supported: {', '.join(SSH_KEY_TYPES)})"
        )
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKeypair("public_key's key data is not valid base64") from None
    embedded = _embedded_type(blob)
    if embedded != key_type:
        found = f"a {embedded} key" if embedded else "not an SSH key"
        raise InvalidKeypair(f"public_key says {key_type} but its key data is {found}")
    try:
        serialization.load_ssh_public_key(f"{key_type} {data}".encode())
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidKeypair(f"public_key's key data is not a valid {key_type} key") from None
    return SSHPublicKey(key_type=key_type, blob=blob, comment=parts[2] if len(parts) > 2 else "")


def _x509_fingerprint(pem: str) -> str:
    try:
        certificate = x509.load_pem_x509_certificate(pem.strip().encode())
    except ValueError:
        raise InvalidKeypair("public_key is not a PEM encoded x509 certificate") from None
    return _colon_hex(certificate.fingerprint(hashes.SHA1()))


def fingerprint(public_key: str, key_type: str = "ssh") -> str:
    """The fingerprint of a public key of `key_type`; InvalidKeypair when it is not one."""
    if key_type == "x509":
        return _x509_fingerprint(public_key)
    return parse_ssh_public_key(public_key).fingerprint


def generate(key_type: str = "ssh", user_id: str = "") -> tuple[str, str]:
    """A new keypair: (public key, private key in PEM). ssh: ed25519 (OpenSSH formats);
    x509: an RSA key and a self-signed certificate for the user, valid for a year."""
    if key_type == "x509":
        return _generate_x509(user_id)
    key = ed25519.Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return f"{public.decode()} {GENERATED_COMMENT}", private.decode()


def _generate_x509(user_id: str) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "novaflow"),
            x509.NameAttribute(NameOID.COMMON_NAME, user_id or "novaflow"),
        ]
    )
    now = utcnow()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), private.decode()


def _lock_user(session: Session, user_id: str) -> None:
    """Serialise keypair writes of one user until the transaction ends (PostgreSQL; SQLite's
    write sessions are already serial)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"keypair:{user_id}"}
        )


def find(session: Session, user_id: str, name: str) -> KeyPair | None:
    return session.exec(
        select(KeyPair).where(KeyPair.user_id == user_id).where(KeyPair.name == name)
    ).first()


def get(session: Session, user_id: str, name: str) -> KeyPair:
    keypair = find(session, user_id, name)
    if keypair is None:
        raise KeypairNotFound(f"Keypair {name} not found for user {user_id}")
    return keypair


def list_for_user(
    session: Session, user_id: str, limit: int | None = None, marker: str | None = None
) -> list[KeyPair]:
    """The user's keypairs by name; a page of them after the keypair named `marker` (Invalid
    if the user has none such), at most `limit`."""
    statement = select(KeyPair).where(KeyPair.user_id == user_id)
    if marker is not None:
        if find(session, user_id, marker) is None:
            raise Invalid(f"Marker {marker} could not be found.")
        statement = statement.where(col(KeyPair.name) > marker)
    statement = statement.order_by(col(KeyPair.name))
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.exec(statement))


def count(session: Session, user_id: str) -> int:
    return session.exec(
        select(func.count()).select_from(KeyPair).where(col(KeyPair.user_id) == user_id)
    ).one()


def create(
    session: Session,
    user_id: str,
    name: str,
    public_key: str | None = None,
    key_type: str = "ssh",
    limit: int = DEFAULT_LIMIT,
) -> tuple[KeyPair, str | None]:
    """Import `public_key`, or generate a keypair when it is None. Returns the keypair and the
    private key (only when generated: it is not kept). Needs a write session."""
    problem = name_problem(name)
    if problem is not None:
        raise Invalid(f"Invalid input for field/attribute name. {problem}")
    if key_type not in TYPES:
        raise Invalid(f"Invalid input for field/attribute type. {key_type!r} is not one of {TYPES}")
    private_key = None
    if public_key is None:
        public_key, private_key = generate(key_type, user_id)
    else:
        public_key = public_key.strip()
    key_fingerprint = fingerprint(public_key, key_type)

    _lock_user(session, user_id)
    if find(session, user_id, name) is not None:
        raise KeypairExists(f"Key pair '{name}' already exists.")
    if 0 <= limit <= count(session, user_id):
        raise KeypairLimitExceeded("Quota exceeded, too many key pairs.")
    inserted = insert_ignore(
        session,
        KeyPair,
        {
            "name": name,
            "user_id": user_id,
            "public_key": public_key,
            "fingerprint": key_fingerprint,
            "type": key_type,
            "created_at": utcnow(),
        },
    )
    if not inserted:  # a concurrent create of the same name won
        raise KeypairExists(f"Key pair '{name}' already exists.")
    return get(session, user_id, name), private_key


def delete(session: Session, user_id: str, name: str) -> None:
    session.delete(get(session, user_id, name))
