"""A move's disk, copied from one host to the other by the hosts' compute workers themselves,
as Nova's libvirt driver copies a cold migration's disk (with rsync or scp between the two
nova-compute hosts): the source's worker serves the file (sendfile: page cache to socket), the
destination's worker pulls it (splice: socket to file, no copy through Python) and syncs it
once at the end.

Why not libvirt's own storage-volume streams (download on one daemon, upload on the other,
relayed by a client): every byte then crosses two daemons' RPC layers and the relaying process
in 4 MiB messages, which is CPU-bound on a small machine. Measured on the two-host tier
(bench/disk_copy_bench.py): the streams reached 0.17-0.19 of a plain `cp` of the same file.

The wire is plain HTTP/1.1 (one GET per disk: curl can read it). A request carries a token that
only the compute hosts can make: an HMAC, under a key derived from the payload key every process
of a deployment shares, of the server's id and an expiry a few minutes ahead. The destination
makes the token itself when it starts the copy, so no secret passes through a workflow's history.
The source serves a disk only while its domain is not running (a running guest's disk would be
copied torn).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import hmac
import logging
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from hypervisor.errors import DomainDefinitionError, HypervisorError

TOKEN_SECONDS = 300  # how long after it is made a token opens a transfer
STALL_SECONDS = 60  # a transfer that receives nothing this long has failed
CHUNK = 1024**2  # the unit moved between checkpoints (the pipe's largest size without privileges)
_SERVER_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_KEY_LABEL = b"novaflow disk transfer v1"
log = logging.getLogger("novaflow.disk_transfer")


class DiskMissing(DomainDefinitionError):
    """The source host has no disk for the server: copying again will not find one."""


def transfer_keys(payload_keys: Sequence[bytes]) -> list[bytes]:
    """The keys transfer tokens are made with (the first) and checked against (all): derived
    from the payload keys, so that a rotation of those rotates these."""
    return [hmac.new(key, _KEY_LABEL, hashlib.sha256).digest() for key in payload_keys]


def _signature(key: bytes, server_id: str, expires: int) -> str:
    return hmac.new(key, f"{server_id}\n{expires}".encode(), hashlib.sha256).hexdigest()


def make_token(keys: Sequence[bytes], server_id: str, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + TOKEN_SECONDS)
    return f"{expires}.{_signature(keys[0], server_id, expires)}"


def token_valid(
    keys: Sequence[bytes], server_id: str, token: str, now: float | None = None
) -> bool:
    expires_text, _, signature = token.partition(".")
    if not expires_text.isdigit() or int(expires_text) < (time.time() if now is None else now):
        return False
    expires = int(expires_text)
    return any(hmac.compare_digest(_signature(key, server_id, expires), signature) for key in keys)


# -- the source's side ---------------------------------------------------------------------------


Locate = Callable[[str], str]  # a server's id -> its disk's path (raises HypervisorError)


class _DiskRequest(BaseHTTPRequestHandler):
    server: DiskServer
    protocol_version = "HTTP/1.1"
    timeout = STALL_SECONDS  # a client that sends nothing is dropped

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        found = re.fullmatch(r"/disks/([^/?]+)", self.path)
        server_id = found.group(1) if found else ""
        if not _SERVER_ID.fullmatch(server_id):
            return self._refuse(404, "no such disk")
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme != "Bearer" or not token_valid(self.server.keys, server_id, token):
            return self._refuse(403, "a valid transfer token is required")
        try:
            path = self.server.locate(server_id)
        except DiskMissing as exc:
            return self._refuse(404, str(exc))
        except HypervisorError as exc:
            return self._refuse(409, str(exc))
        with open(path, "rb") as disk:
            size = os.fstat(disk.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            with contextlib.suppress(ConnectionError):  # the destination gave up: its retry
                self.connection.sendfile(disk)
        log.info("sent the disk of %s (%d bytes) to %s", server_id, size, self.client_address[0])

    def _refuse(self, status: int, message: str) -> None:
        body = message.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("%s: " + format, self.client_address[0], *args)


class DiskServer(ThreadingHTTPServer):
    """Serves this host's disks to the compute workers of other hosts, one thread per transfer,
    until `stop`. `address` is (host, port); port 0 picks a free one (see `url`)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], locate: Locate, keys: Sequence[bytes]) -> None:
        super().__init__(address, _DiskRequest)
        self.locate, self.keys = locate, list(keys)
        self._thread = threading.Thread(target=self.serve_forever, name="disk-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> DiskServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


# -- the destination's side ----------------------------------------------------------------------


@dataclass(frozen=True)
class DiskSource:
    """Where a move's disk comes from: the source host's compute worker (`url`, with a `token`
    made for this disk) and, for the test driver (which copies nothing), its libvirt URI."""

    host: str
    url: str | None
    token: str
    libvirt_uri: str = ""


def fetch_disk(
    source: DiskSource, server_id: str, path: str, on_wait: Callable[[], None] | None = None
) -> int:
    """Copy the server's disk from `source` into the file at `path` (truncated first) and sync
    it. `on_wait` after each MiB (a checkpoint that raises once the step is cancelled). Returns
    the number of bytes copied. Raises HypervisorError when the source refuses or the copy
    ends early; the file is then left partial (the caller's undo deletes it)."""
    if not source.url:
        raise HypervisorError(f"host {source.host} serves no disks (its worker gave no address)")
    where = urlsplit(source.url)
    if where.scheme != "http" or not where.hostname or not where.port:
        raise HypervisorError(f"host {source.host}: bad disk address {source.url!r}")
    try:
        sock = socket.create_connection((where.hostname, where.port), timeout=STALL_SECONDS)
    except OSError as exc:
        raise HypervisorError(f"connect to the disk server of {source.host}: {exc}") from exc
    with sock:
        sock.sendall(
            (
                f"GET /disks/{server_id} HTTP/1.1\r\nHost: {where.netloc}\r\n"
                f"Authorization: Bearer {source.token}\r\nConnection: close\r\n\r\n"
            ).encode()
        )
        size, early = _response_head(sock, source.host)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, early)
            # splice below needs a blocking socket; a stall still ends: SO_RCVTIMEO.
            sock.settimeout(None)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", STALL_SECONDS, 0)
            )
            _receive(sock, fd, size - len(early), on_wait)
            os.fsync(fd)
        except OSError as exc:
            raise HypervisorError(f"copy the disk from {source.host}: {exc}") from exc
        finally:
            os.close(fd)
    return size


def _response_head(sock: socket.socket, host: str) -> tuple[int, bytes]:
    """The response's Content-Length, and the body's first bytes read with its head."""
    received = b""
    try:
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk or len(received) > 65536:
                raise HypervisorError(f"the disk server of {host} sent no valid answer")
            received += chunk
    except OSError as exc:
        raise HypervisorError(f"the disk server of {host}: {exc}") from exc
    head, _, early = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    status = status_line.split(" ", 2)
    if (
        len(status) < 2
        or not status[1].isdigit()
        or not headers.get("content-length", "").isdigit()
    ):
        raise HypervisorError(f"the disk server of {host} sent no valid answer")
    if status[1] != "200":
        wanted = min(int(headers["content-length"]), 2000)
        with contextlib.suppress(OSError):
            while len(early) < wanted and (more := sock.recv(wanted - len(early))):
                early += more
        reason = early[:wanted].decode(errors="replace") or status_line
        error = DiskMissing if status[1] == "404" else HypervisorError
        raise error(f"the disk server of {host} refused the copy ({status[1]}): {reason}")
    return int(headers["content-length"]), early


def _receive(sock: socket.socket, fd: int, left: int, on_wait: Callable[[], None] | None) -> None:
    """Move `left` bytes from the socket into the file: through a pipe with splice (the bytes
    stay in the kernel), or with reads and writes where splice does not work."""
    read_end, write_end = os.pipe()
    try:
        with contextlib.suppress(OSError):  # a smaller pipe only means more calls
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, CHUNK)
        spliced = True
        buffer = memoryview(bytearray(CHUNK))
        while left > 0:
            want = min(left, CHUNK)
            if spliced:
                try:
                    got = os.splice(sock.fileno(), write_end, want)
                except OSError as exc:
                    if exc.errno not in (errno.EINVAL, errno.ENOSYS):
                        raise
                    spliced = False
                    continue
                pending = got
                while pending:
                    pending -= os.splice(read_end, fd, pending)
            else:
                got = sock.recv_into(buffer, want)
                written = 0
                while written < got:
                    written += os.write(fd, buffer[written:got])
            if got == 0:
                raise HypervisorError(f"the copy ended early: {left} bytes missing")
            left -= got
            if on_wait is not None:
                on_wait()
    finally:
        os.close(read_end)
        os.close(write_end)


def default_listen(libvirt_uri: str) -> tuple[str, int]:
    """Where a compute worker serves disks unless told: the address its libvirt is reached at
    (a worker runs on its hypervisor host), on a free port; the loopback for a local URI."""
    return (urlsplit(libvirt_uri).hostname or "127.0.0.1", 0)


def parse_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)
