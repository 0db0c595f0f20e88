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
import io
import logging
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from hypervisor.errors import DomainDefinitionError, HypervisorError

TOKEN_SECONDS = 300  # how long after it is made a token opens a transfer
STALL_SECONDS = 60  # a transfer that moves nothing this long has failed
WAIT_SECONDS = 2  # how often a waiting transfer looks at its checkpoint
HEAD_BYTES = 8192  # what the server reads of a request before it checks its token...
HEAD_SECONDS = 10  # ...and how long it waits for that
MAX_TRANSFERS = 8  # transfers served at once (more connections are closed at once)
WRITEBACK_BYTES = 32 * 1024**2  # see _receive
CHUNK = 1024**2  # the unit moved between checkpoints (the pipe's largest size without privileges)
_SERVER_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_TOKEN = re.compile(r"(\d{1,12})\.([0-9a-f]{64})")
_LENGTH = re.compile(r"\d{1,19}")  # a Content-Length (int() of more digits is refused)
_KEY_LABEL = b"novaflow disk transfer v1"
log = logging.getLogger("novaflow.disk_transfer")


class DiskMissing(DomainDefinitionError):
    """The source host has no disk for the server: copying again will not find one."""


def transfer_keys(payload_keys: Sequence[bytes]) -> list[bytes]:
    """The keys transfer tokens are made with (the first) and checked against (all): derived
    from the payload keys, so that a rotation of those rotates these."""
    return [hmac.new(key, _KEY_LABEL, hashlib.sha256).digest() for key in payload_keys]


def _signature(key: bytes, server_id: str, source_host: str, expires: int) -> bytes:
    message = f"{server_id}\n{source_host}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest().encode()


def make_token(
    keys: Sequence[bytes], server_id: str, source_host: str, now: float | None = None
) -> str:
    """A token for one copy of the server's disk from `source_host` (no other host serves
    it: a destination that reached the wrong one gets a refusal, not a wrong disk)."""
    expires = int((time.time() if now is None else now) + TOKEN_SECONDS)
    return f"{expires}.{_signature(keys[0], server_id, source_host, expires).decode()}"


def token_valid(
    keys: Sequence[bytes], server_id: str, source_host: str, token: str, now: float | None = None
) -> bool:
    found = _TOKEN.fullmatch(token)
    if found is None or int(found.group(1)) < (time.time() if now is None else now):
        return False
    expires, signature = int(found.group(1)), found.group(2).encode()
    return any(
        hmac.compare_digest(_signature(key, server_id, source_host, expires), signature)
        for key in keys
    )


# -- the source's side ---------------------------------------------------------------------------


Locate = Callable[[str], str]  # a server's id -> its disk's path (raises HypervisorError)


class _DiskRequest(BaseHTTPRequestHandler):
    server: DiskServer
    protocol_version = "HTTP/1.1"
    server_version, sys_version = "novaflow-disk", ""

    def setup(self) -> None:
        """Read the request's head (at most HEAD_BYTES, within HEAD_SECONDS) before anything
        parses it: what an unauthenticated peer can make this server read is bounded."""
        super().setup()
        self.rfile = io.BytesIO(_read_head(self.connection))
        self.connection.settimeout(STALL_SECONDS)  # then: a destination that stops reading

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        found = re.fullmatch(r"/disks/([^/?]+)", self.path)
        server_id = found.group(1) if found else ""
        if not _SERVER_ID.fullmatch(server_id):
            return self._refuse(404, "no such disk")
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme != "Bearer" or not self.server.admit(server_id, token):
            return self._refuse(403, "a valid transfer token is required")
        try:
            path = self.server.locate(server_id)
            disk = open(path, "rb")  # noqa: SIM115  (closed below)
        except (DiskMissing, FileNotFoundError) as exc:
            return self._refuse(404, str(exc))
        except Exception as exc:  # e.g. its guest runs: the destination retries
            return self._refuse(409, str(exc))
        with disk:
            size = os.fstat(disk.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                if size:  # (sendfile counts from 1)
                    self.connection.sendfile(disk, count=size)
            except OSError as exc:  # the destination gave up or stalled: its retry asks again
                log.warning("sending the disk of %s failed: %s", server_id, exc)
                return
        log.info("sent the disk of %s (%d bytes) to %s", server_id, size, self.client_address[0])

    def _refuse(self, status: int, message: str) -> None:
        body = message.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("%s: " + format, self.client_address[0], *args)


def _read_head(sock: socket.socket) -> bytes:
    """The request's head, or b"" (the connection is then closed unanswered) when it is too
    long or too slow."""
    received, deadline = b"", time.monotonic() + HEAD_SECONDS
    try:
        while b"\r\n\r\n" not in received:
            left = deadline - time.monotonic()
            if left <= 0 or len(received) >= HEAD_BYTES:
                return b""
            sock.settimeout(left)
            chunk = sock.recv(HEAD_BYTES - len(received))
            if not chunk:
                return b""
            received += chunk
    except OSError:
        return b""
    return received


class DiskServer(ThreadingHTTPServer):
    """Serves this host's disks to the compute workers of other hosts, one thread per transfer
    (at most MAX_TRANSFERS), until `stop`. `address` is (address, port); port 0 picks a free
    one (see `url`). `host`: this host's name, which the tokens it admits must name. A token
    opens one transfer."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], host: str, locate: Locate, keys: Sequence[bytes]
    ) -> None:
        super().__init__(address, _DiskRequest)
        self.host, self.locate, self.keys = host, locate, list(keys)
        self._slots = threading.BoundedSemaphore(MAX_TRANSFERS)
        self._used: dict[str, float] = {}  # tokens already admitted, until they expire
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.1,), name="disk-server", daemon=True
        )

    def admit(self, server_id: str, token: str) -> bool:
        if not token_valid(self.keys, server_id, self.host, token):
            return False
        now = time.time()
        with self._lock:
            self._used = {used: until for used, until in self._used.items() if until >= now}
            if token in self._used:
                return False
            self._used[token] = now + TOKEN_SECONDS
        return True

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    @property
    def url(self) -> str:
        address, port = self.server_address[:2]
        return f"http://{address!s}:{port}"

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
    made for this disk and host)."""

    host: str
    url: str | None
    token: str = field(repr=False)


def fetch_disk(
    source: DiskSource, server_id: str, path: str, on_wait: Callable[[], None] | None = None
) -> int:
    """Copy the server's disk from `source` into the file at `path` (truncated first) and sync
    it. `on_wait` as the bytes come, and every WAIT_SECONDS while none do (a checkpoint that
    raises once the step is cancelled). Returns the number of bytes copied. Raises
    HypervisorError when the source refuses, stalls or the copy ends early; the file is then
    left partial (the caller's undo deletes it)."""
    if not _SERVER_ID.fullmatch(server_id):
        raise ValueError(f"server_id: not a server's id: {server_id!r}")
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
        try:
            sock.sendall(
                (
                    f"GET /disks/{server_id} HTTP/1.1\r\nHost: {where.netloc}\r\n"
                    f"Authorization: Bearer {source.token}\r\nConnection: close\r\n\r\n"
                ).encode()
            )
        except OSError as exc:
            raise HypervisorError(f"the disk server of {source.host}: {exc}") from exc
        size, early = _response_head(sock, source.host)
        if len(early) > size:
            raise HypervisorError(f"the disk server of {source.host} sent more than it said")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _write_all(fd, early)
                # splice needs a blocking socket; SO_RCVTIMEO still ends each wait.
                sock.settimeout(None)
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", WAIT_SECONDS, 0)
                )
                _receive(sock, fd, len(early), size, on_wait)
                os.fsync(fd)
                if os.fstat(fd).st_size != size:
                    raise HypervisorError(f"the copy from {source.host} is not {size} bytes")
            finally:
                os.close(fd)
        except OSError as exc:
            raise HypervisorError(f"copy the disk from {source.host}: {exc}") from exc
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
    length = headers.get("content-length", "")
    if len(status) < 2 or not re.fullmatch(r"\d{3}", status[1]) or not _LENGTH.fullmatch(length):
        raise HypervisorError(f"the disk server of {host} sent no valid answer")
    if status[1] != "200":
        wanted = min(int(length), 2000)
        with contextlib.suppress(OSError):
            while len(early) < wanted and (more := sock.recv(wanted - len(early))):
                early += more
        reason = early[:wanted].decode(errors="replace") or status_line
        error = DiskMissing if status[1] == "404" else HypervisorError
        raise error(f"the disk server of {host} refused the copy ({status[1]}): {reason}")
    return int(length), early


def _receive(
    sock: socket.socket, fd: int, done: int, size: int, on_wait: Callable[[], None] | None
) -> None:
    """Move bytes from the socket into the file from offset `done` to `size`: through a pipe
    with splice (the bytes stay in the kernel), or with reads and writes where splice does not
    work. Each WRITEBACK_BYTES that arrived are handed to the disk at once (and dropped from
    this host's page cache: the guest reads its disk, this worker does not), so the fsync at
    the end waits for the last of them only: a durable copy takes about as long as the
    transfer, not the transfer and then the write-back."""
    left, handed = size - done, 0
    read_end, write_end = os.pipe()
    try:
        with contextlib.suppress(OSError):  # a smaller pipe only means more calls
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, CHUNK)
        spliced, idle = True, 0.0
        buffer = memoryview(bytearray(CHUNK))
        while left > 0:
            want = min(left, CHUNK)
            try:
                if spliced:
                    got = os.splice(sock.fileno(), write_end, want)
                    spliced = _drain(read_end, fd, got)
                else:
                    got = sock.recv_into(buffer, want)
                    _write_all(fd, buffer[:got])
            except BlockingIOError:  # nothing for WAIT_SECONDS (SO_RCVTIMEO)
                idle += WAIT_SECONDS
                if idle >= STALL_SECONDS:
                    raise HypervisorError(f"the copy stalled: nothing for {idle:.0f} s") from None
                got = -1
            except OSError as exc:
                if not spliced or exc.errno not in (errno.EINVAL, errno.ENOSYS):
                    raise
                spliced = False  # this socket cannot be spliced from: read and write
                continue
            if got == 0:
                raise HypervisorError(f"the copy ended early: {left} bytes missing")
            if got > 0:
                left, done, idle = left - got, done + got, 0.0
                if done - handed >= WRITEBACK_BYTES:
                    os.posix_fadvise(fd, handed, done - handed, os.POSIX_FADV_DONTNEED)
                    handed = done
            if on_wait is not None:
                on_wait()
    finally:
        os.close(read_end)
        os.close(write_end)


def _drain(read_end: int, fd: int, pending: int) -> bool:
    """Move `pending` bytes from the pipe into the file; False when the file takes no splice
    (they were read and written instead, as the next ones will be)."""
    while pending:
        try:
            pending -= os.splice(read_end, fd, pending)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS):
                raise
            while pending:
                chunk = os.read(read_end, pending)
                _write_all(fd, chunk)
                pending -= len(chunk)
            return False
    return True


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def default_listen(libvirt_uri: str) -> tuple[str, int]:
    """Where a compute worker serves disks unless told: the address its libvirt is reached at
    (a worker runs on its hypervisor host), on a free port; the loopback for a local URI."""
    return (urlsplit(libvirt_uri).hostname or "127.0.0.1", 0)
