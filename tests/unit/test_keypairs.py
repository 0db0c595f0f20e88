"""Keypairs: real OpenSSH public keys are accepted with the fingerprint OpenSSH itself shows,
anything else is refused naming public_key, names follow Nova's rules, and the per-user
store (on SQLite and PostgreSQL) refuses duplicates and keeps to its limit, even when raced."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from novaflow import keypairs
from novaflow.db import Database
from novaflow.errors import Invalid
from novaflow.keypairs import InvalidKeypair, KeypairExists, KeypairLimitExceeded, KeypairNotFound

SSH_KEYGEN = shutil.which("ssh-keygen")

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
MAKERS: dict[str, Callable[[], PrivateKey]] = {
    "ssh-rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ssh-ed25519": ed25519.Ed25519PrivateKey.generate,
    "ecdsa-sha2-nistp256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ecdsa-sha2-nistp384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ecdsa-sha2-nistp521": lambda: ec.generate_private_key(ec.SECP521R1()),
}


def openssh_line(key: PrivateKey, comment: str = "") -> str:
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return f"{public.decode()} {comment}".strip()


def ed25519_line(comment: str = "alice@laptop") -> str:
    return openssh_line(ed25519.Ed25519PrivateKey.generate(), comment)


def reference_fingerprint(line: str, tmp_path: Path) -> str:
    """What OpenSSH says (`ssh-keygen -l -E md5`), or, without it, the MD5 of the decoded key
    data computed here."""
    if SSH_KEYGEN is None:
        digest = hashlib.md5(base64.b64decode(line.split()[1])).hexdigest()
        return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    path = tmp_path / "key.pub"
    path.write_text(line + "\n")
    out = subprocess.run(
        [SSH_KEYGEN, "-l", "-E", "md5", "-f", str(path)], capture_output=True, text=True, check=True
    ).stdout
    # "256 MD5:1e:2c:... alice@laptop (ED25519)"
    return out.split()[1].removeprefix("MD5:")


@pytest.mark.parametrize("key_type", list(MAKERS))
def test_every_supported_key_type_parses_with_openssh_s_fingerprint(
    key_type: str, tmp_path: Path
) -> None:
    line = openssh_line(MAKERS[key_type](), "alice@laptop with spaces")
    parsed = keypairs.parse_ssh_public_key(line + "\n")
    assert parsed.key_type == key_type
    assert parsed.comment == "alice@laptop with spaces"
    assert parsed.fingerprint == reference_fingerprint(line, tmp_path)
    assert keypairs.fingerprint(line) == parsed.fingerprint
    assert len(parsed.fingerprint.split(":")) == 16


@pytest.mark.skipif(SSH_KEYGEN is None, reason="ssh-keygen not installed")
@pytest.mark.parametrize("kind", ["ed25519", "rsa", "ecdsa"])
def test_keys_made_by_ssh_keygen_are_accepted(kind: str, tmp_path: Path) -> None:
    assert SSH_KEYGEN is not None
    key = tmp_path / "id"
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", kind, "-N", "", "-C", "bob@host", "-f", str(key)], check=True
    )
    line = (tmp_path / "id.pub").read_text()
    assert keypairs.fingerprint(line) == reference_fingerprint(line.strip(), tmp_path)


def test_a_key_without_a_comment_is_accepted(tmp_path: Path) -> None:
    line = ed25519_line(comment="")
    assert keypairs.parse_ssh_public_key(line).comment == ""
    assert keypairs.fingerprint(line) == reference_fingerprint(line, tmp_path)


def _corrupt(line: str, change: Callable[[bytes], bytes]) -> str:
    key_type, data, *rest = line.split()
    blob = change(base64.b64decode(data))
    return " ".join([key_type, base64.b64encode(blob).decode(), *rest])


def _flip_last_byte(blob: bytes) -> bytes:
    return blob[:-1] + bytes([blob[-1] ^ 0x01])


ED = ed25519_line()
RSA_LINE = openssh_line(MAKERS["ssh-rsa"]())
P384 = openssh_line(MAKERS["ecdsa-sha2-nistp384"]())
BAD_KEYS = [
    pytest.param("", "public_key must be", id="empty"),
    pytest.param("   \n", "public_key must be", id="blank"),
    pytest.param("ssh-ed25519", "public_key must be", id="type-only"),
    pytest.param(ED.split()[1], "public_key must be", id="data-only"),
    pytest.param("ssh-dss AAAAB3NzaC1kc3MAAACBAP8= x", "unsupported key type", id="dsa"),
    pytest.param("ssh-ed25519 not*base64 x", "not valid base64", id="not-base64"),
    pytest.param("ssh-rsa " + ED.split(maxsplit=1)[1], "key data is a ssh-ed25519", id="mismatch"),
    pytest.param(
        "ecdsa-sha2-nistp256 " + P384.split(maxsplit=1)[1], "nistp384", id="ecdsa-curve-mismatch"
    ),
    pytest.param("ssh-ed25519 " + base64.b64encode(b"xx").decode(), "not an SSH", id="tiny-blob"),
    pytest.param(_corrupt(ED, lambda b: b[:-1]), "not a valid ssh-ed25519", id="truncated"),
    pytest.param(_corrupt(ED, lambda b: b + b"\0"), "not a valid ssh-ed25519", id="extra-bytes"),
    pytest.param(_corrupt(P384, _flip_last_byte), "not a valid ecdsa", id="ecdsa-off-curve"),
    pytest.param(_corrupt(RSA_LINE, lambda b: b[:40]), "not a valid ssh-rsa", id="rsa-cut"),
    pytest.param(ED + "\n" + ED, "single line", id="two-lines"),
    pytest.param(
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode(),
        "single line",
        id="private-key-pasted",
    ),
]


@pytest.mark.parametrize(("line", "reason"), BAD_KEYS)
def test_bad_public_keys_are_refused_naming_public_key(line: str, reason: str) -> None:
    with pytest.raises(InvalidKeypair) as refused:
        keypairs.fingerprint(line)
    message = refused.value.message
    assert message.startswith("Keypair data is invalid: public_key")
    assert reason in message
    assert refused.value.code == 400


@pytest.mark.parametrize(
    "name", ["k", "my key", "alice@laptop", "deploy_key-2.old", "x" * 255, "007"]
)
def test_names_nova_allows(name: str) -> None:
    assert keypairs.name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("", "1 to 255"),
        ("x" * 256, "1 to 255"),
        ("a/b", "'/'"),
        ("key;rm", "';'"),
        ("tab\tkey", "'\\t'"),
        ("ключ", "'к'"),
        ("quote'", '"\'"'),
    ],
)
def test_names_nova_refuses(name: str, shown: str) -> None:
    problem = keypairs.name_problem(name)
    assert problem is not None and shown in problem


def test_a_generated_ssh_keypair_is_ed25519_and_its_halves_match(tmp_path: Path) -> None:
    public, private = keypairs.generate()
    assert public.startswith("ssh-ed25519 ") and public.endswith(keypairs.GENERATED_COMMENT)
    loaded = serialization.load_ssh_private_key(private.encode(), password=None)
    assert isinstance(loaded, ed25519.Ed25519PrivateKey)
    assert openssh_line(loaded, keypairs.GENERATED_COMMENT) == public
    assert keypairs.fingerprint(public) == reference_fingerprint(public, tmp_path)
    if SSH_KEYGEN is not None:  # OpenSSH can use the private key as written
        key_file = tmp_path / "id"
        key_file.write_text(private)
        key_file.chmod(0o600)
        derived = subprocess.run(
            [SSH_KEYGEN, "-y", "-f", str(key_file)], capture_output=True, text=True, check=True
        ).stdout
        assert derived.split()[:2] == public.split()[:2]
    assert keypairs.generate()[0] != public


def test_x509_keypairs_are_fingerprinted_with_sha1_of_the_certificate() -> None:
    certificate_pem, private = keypairs.generate("x509", user_id="alice")
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    assert "CN=alice" in certificate.subject.rfc4514_string()
    key = serialization.load_pem_private_key(private.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    certified = certificate.public_key()
    assert isinstance(certified, rsa.RSAPublicKey)
    assert key.public_key().public_numbers() == certified.public_numbers()
    expected = hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert keypairs.fingerprint(certificate_pem, "x509").replace(":", "") == expected
    assert certificate.fingerprint(hashes.SHA1()).hex() == expected
    with pytest.raises(InvalidKeypair, match="public_key is not a PEM encoded x509"):
        keypairs.fingerprint(ED, "x509")


# The store, on SQLite and PostgreSQL.


def test_import_list_show_delete(db: Database) -> None:
    line = ed25519_line()
    with db.write() as s:
        made, private = keypairs.create(s, "alice", "laptop", public_key=line + "\n")
        assert private is None
    assert made.public_key == line and made.type == "ssh"
    assert made.fingerprint == keypairs.fingerprint(line)
    with db.read() as s:
        assert [k.name for k in keypairs.list_for_user(s, "alice")] == ["laptop"]
        assert keypairs.list_for_user(s, "bob") == []
        assert keypairs.get(s, "alice", "laptop").id == made.id
        with pytest.raises(KeypairNotFound, match="Keypair laptop not found for user bob"):
            keypairs.get(s, "bob", "laptop")
    with db.write() as s:
        keypairs.delete(s, "alice", "laptop")
    with db.read() as s:
        assert keypairs.count(s, "alice") == 0
    with db.write() as s, pytest.raises(KeypairNotFound):
        keypairs.delete(s, "alice", "laptop")


def test_generated_keypair_keeps_no_private_key(db: Database) -> None:
    with db.write() as s:
        made, private = keypairs.create(s, "alice", "generated")
    assert private is not None and "PRIVATE KEY" in private
    with db.read() as s:
        stored = keypairs.get(s, "alice", "generated")
    assert private not in str(stored.model_dump())
    assert stored.public_key == made.public_key


def test_names_are_unique_per_user_only(db: Database) -> None:
    with db.write() as s:
        first, _ = keypairs.create(s, "alice", "k", public_key=ed25519_line())
        keypairs.create(s, "bob", "k", public_key=ed25519_line())
    with db.write() as s, pytest.raises(KeypairExists, match="Key pair 'k' already exists."):
        keypairs.create(s, "alice", "k", public_key=ed25519_line())
    with db.read() as s:
        assert keypairs.get(s, "alice", "k").public_key == first.public_key
        assert keypairs.count(s, "alice") == keypairs.count(s, "bob") == 1


def test_bad_name_or_key_stores_nothing(db: Database) -> None:
    with db.write() as s, pytest.raises(Invalid, match="field/attribute name"):
        keypairs.create(s, "alice", "a/b", public_key=ed25519_line())
    with db.write() as s, pytest.raises(InvalidKeypair, match="public_key"):
        keypairs.create(s, "alice", "ok", public_key="ssh-ed25519 AAAA")
    with db.read() as s:
        assert keypairs.count(s, "alice") == 0


def test_the_limit_is_per_user(db: Database) -> None:
    with db.write() as s:
        for index in range(3):
            keypairs.create(s, "alice", f"k{index}", public_key=ed25519_line(), limit=3)
    with (
        db.write() as s,
        pytest.raises(KeypairLimitExceeded, match="Quota exceeded, too many key pairs."),
    ):
        keypairs.create(s, "alice", "k3", public_key=ed25519_line(), limit=3)
    with db.write() as s:
        keypairs.create(s, "bob", "k3", public_key=ed25519_line(), limit=3)
        keypairs.delete(s, "alice", "k0")
        keypairs.create(s, "alice", "k3", public_key=ed25519_line(), limit=3)
        keypairs.create(s, "alice", "k4", public_key=ed25519_line(), limit=-1)  # no limit
    with db.read() as s:
        assert [k.name for k in keypairs.list_for_user(s, "alice")] == ["k1", "k2", "k3", "k4"]


def test_racing_creates_never_pass_the_limit_or_share_a_name(db: Database) -> None:
    lines = [ed25519_line() for _ in range(12)]

    def attempt(index: int) -> str:
        try:
            with db.write() as s:
                keypairs.create(s, "alice", f"k{index % 6}", public_key=lines[index], limit=4)
        except (KeypairExists, KeypairLimitExceeded) as error:
            return type(error).__name__
        return "created"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(attempt, range(12)))
    assert outcomes.count("created") == 4
    with db.read() as s:
        names = [k.name for k in keypairs.list_for_user(s, "alice")]
    assert len(names) == len(set(names)) == 4
