"""The disk copy between two hosts' compute workers (hypervisor/disk_transfer.py): a real disk
server on the loopback serving real files, pulled by the destination's side."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hypervisor.disk_transfer import (
    DiskMissing,
    DiskServer,
    DiskSource,
    fetch_disk,
    make_token,
    token_valid,
    transfer_keys,
)
from hypervisor.errors import HypervisorError

KEYS = transfer_keys([b"k" * 32])
OTHER_KEYS = transfer_keys([b"o" * 32])
REPO = Path(__file__).resolve().parents[2]


class Disks:
    """A host's disks as the server finds them: files named by server id; some servers run."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.running = directory, set[str]()

    def add(self, data: bytes) -> str:
        server_id = str(uuid.uuid4())
        (self.directory / server_id).write_bytes(data)
        return server_id

    def locate(self, server_id: str) -> str:
        if server_id in self.running:
            raise HypervisorError(f"server {server_id} is running")
        path = self.directory / server_id
        if not path.exists():
            raise DiskMissing(f"no disk for server {server_id}")
        return str(path)


@pytest.fixture
def disks(tmp_path: Path) -> Disks:
    (tmp_path / "source").mkdir()
    return Disks(tmp_path / "source")


@pytest.fixture
def server(disks: Disks) -> Iterator[DiskServer]:
    served = DiskServer(("127.0.0.1", 0), "host-a", disks.locate, KEYS).start()
    yield served
    served.stop()


def source(server: DiskServer, server_id: str, keys: list[bytes] = KEYS) -> DiskSource:
    return DiskSource("host-a", server.url, make_token(keys, server_id, "host-a"))


def test_a_disk_arrives_byte_for_byte(disks: Disks, server: DiskServer, tmp_path: Path) -> None:
    data = os.urandom(40 * 1024**2 + 123)  # more than a write-back window; no whole chunks
    server_id = disks.add(data)
    target = tmp_path / "copy.qcow2"
    target.write_bytes(b"an earlier, longer attempt" * 400_000)  # replaced, not appended to
    waits: list[None] = []

    copied = fetch_disk(
        source(server, server_id), server_id, str(target), lambda: waits.append(None)
    )

    assert copied == len(data)
    assert target.read_bytes() == data
    assert len(waits) >= 5  # the checkpoint ran as the bytes came


def test_an_empty_disk_is_copied_too(disks: Disks, server: DiskServer, tmp_path: Path) -> None:
    server_id = disks.add(b"")
    target = tmp_path / "copy"
    assert fetch_disk(source(server, server_id), server_id, str(target)) == 0
    assert target.read_bytes() == b""


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            lambda sid: make_token(OTHER_KEYS, sid, "host-a"), id="another-deployment's-key"
        ),
        pytest.param(
            lambda sid: make_token(KEYS, str(uuid.uuid4()), "host-a"), id="another-server's"
        ),
        # A destination that reached the wrong host (its own, say) is refused, not served
        # another disk of the same server.
        pytest.param(lambda sid: make_token(KEYS, sid, "host-b"), id="another-host's"),
        pytest.param(
            lambda sid: make_token(KEYS, sid, "host-a", now=time.time() - 3600), id="expired"
        ),
        pytest.param(lambda sid: "", id="none"),
        pytest.param(lambda sid: "1.\u00e9", id="not-ascii"),
        pytest.param(lambda sid: "\u00b2." + "0" * 64, id="not-a-number"),
        pytest.param(lambda sid: "9" * 5000 + "." + "0" * 64, id="huge"),
    ],
)
def test_a_copy_without_a_valid_token_is_refused_and_writes_nothing(
    disks: Disks, server: DiskServer, tmp_path: Path, token: object
) -> None:
    server_id = disks.add(b"secret disk")
    target = tmp_path / "copy"
    refused = DiskSource("host-a", server.url, token(server_id))  # type: ignore[operator]
    with pytest.raises(HypervisorError, match="refused the copy \\(403\\)"):
        fetch_disk(refused, server_id, str(target))
    assert not target.exists()


def test_tokens_made_under_a_retired_key_still_open_a_copy_after_a_rotation() -> None:
    old, new = [b"1" * 32], [b"2" * 32]
    server_id = str(uuid.uuid4())
    token = make_token(transfer_keys(old), server_id, "host-a")
    assert token_valid(transfer_keys(new + old), server_id, "host-a", token)
    assert not token_valid(transfer_keys(new), server_id, "host-a", token)


def test_a_token_opens_one_copy(disks: Disks, server: DiskServer, tmp_path: Path) -> None:
    server_id = disks.add(b"disk")
    once = source(server, server_id)
    fetch_disk(once, server_id, str(tmp_path / "first"))
    with pytest.raises(HypervisorError, match="refused the copy \\(403\\)"):
        fetch_disk(once, server_id, str(tmp_path / "second"))


def test_a_request_too_long_before_its_token_is_dropped_unread(server: DiskServer) -> None:
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=10) as peer:
        peer.sendall(b"GET /disks/x HTTP/1.1\r\nX-Padding: " + b"a" * 20_000 + b"\r\n\r\n")
        assert peer.recv(100) == b""  # closed, no answer


def test_a_running_guests_disk_is_not_served(
    disks: Disks, server: DiskServer, tmp_path: Path
) -> None:
    server_id = disks.add(b"live disk")
    disks.running.add(server_id)
    with pytest.raises(HypervisorError, match=f"409.*{server_id} is running"):
        fetch_disk(source(server, server_id), server_id, str(tmp_path / "copy"))


def test_a_missing_disk_is_a_permanent_failure(server: DiskServer, tmp_path: Path) -> None:
    server_id = str(uuid.uuid4())
    with pytest.raises(DiskMissing, match="404"):
        fetch_disk(source(server, server_id), server_id, str(tmp_path / "copy"))


@pytest.mark.parametrize("path", ["/disks/../../etc/passwd", "/disks/a%2Fb", "/etc/passwd", "/"])
def test_only_disks_by_server_id_are_served(server: DiskServer, path: str) -> None:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), int(port), timeout=10)
    connection.request("GET", path, headers={"Authorization": "Bearer x"})
    answer = connection.getresponse()
    assert answer.status == 404
    assert answer.read() == b"no such disk"


def test_a_source_that_is_not_there_is_a_retryable_failure(tmp_path: Path) -> None:
    with DiskServer(("127.0.0.1", 0), "host-a", lambda _: "", KEYS) as closed:  # then closed
        url = closed.url
    with pytest.raises(HypervisorError, match="connect to the disk server of host-a"):
        fetch_disk(DiskSource("host-a", url, ""), "x", str(tmp_path / "copy"))
    with pytest.raises(HypervisorError, match="host-a serves no disks"):
        fetch_disk(DiskSource("host-a", None, ""), "x", str(tmp_path / "copy"))
    assert not (tmp_path / "copy").exists()


def test_a_cancelled_copy_stops_at_its_next_checkpoint(
    disks: Disks, server: DiskServer, tmp_path: Path
) -> None:
    server_id = disks.add(os.urandom(8 * 1024**2))
    calls: list[None] = []

    class Cancelled(Exception):
        pass

    def cancelled() -> None:
        calls.append(None)
        raise Cancelled("the step was cancelled")

    with pytest.raises(Cancelled):
        fetch_disk(source(server, server_id), server_id, str(tmp_path / "copy"), cancelled)
    assert len(calls) == 1


def test_a_source_killed_mid_copy_fails_the_copy(disks: Disks, tmp_path: Path) -> None:
    """The source's worker killed (-9) while it sends: the copy fails (its retry copies
    again), it does not end as if the disk were whole."""
    server_id = disks.add(os.urandom(64 * 1024**2))
    url_file = tmp_path / "url"
    serving = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, pathlib\n"
            "from hypervisor.disk_transfer import DiskServer, transfer_keys\n"
            "d = pathlib.Path(sys.argv[1])\n"
            "s = DiskServer(('127.0.0.1', 0), 'host-a', lambda i: str(d / i),\n"
            "               transfer_keys([b'k' * 32]))\n"
            "pathlib.Path(sys.argv[2]).write_text(s.start().url)\n"
            "time.sleep(600)\n",
            str(disks.directory),
            str(url_file),
        ],
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 30
        while not url_file.exists() or not url_file.read_text():
            assert serving.poll() is None and time.monotonic() < deadline, "no disk server"
            time.sleep(0.05)
        received: list[None] = []

        def kill_the_source_after_the_first_mib() -> None:
            received.append(None)
            if len(received) == 1:
                serving.send_signal(signal.SIGKILL)
                serving.wait(10)

        token = make_token(KEYS, server_id, "host-a")
        from_process = DiskSource("host-a", url_file.read_text(), token)
        with pytest.raises(HypervisorError, match="ended early|copy the disk from host-a"):
            fetch_disk(
                from_process, server_id, str(tmp_path / "copy"), kill_the_source_after_the_first_mib
            )
    finally:
        serving.kill()
        serving.wait(10)
