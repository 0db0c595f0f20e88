"""Request bodies are limited before they are read (Nova's sizelimit, 114688 bytes): a larger
declared body is a 413 at once, before any authentication and on every route; a larger chunked
body is cut off at the limit as it is read (an unauthenticated one is refused, 401, before any
byte of it is read); in Nova's error shape, with nothing created; a body at the
limit still reaches validation. Only an image's data upload is exempt (it has its own limit).
The API's memory does not follow the size of a refused body."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from novaflow.config import Settings
from tests.integration.client import NovaClient
from tests.integration.test_bad_input import server, snapshot
from workers.devstack import Stack

LIMIT = Settings().max_request_body_size  # the stack runs with the default
ANY_ID = "00000000-0000-4000-8000-000000000000"
JSON = {"Content-Type": "application/json"}
OCTETS = {"Content-Type": "application/octet-stream"}
MiB = 1024 * 1024


def padded(document: Any, size: int) -> bytes:
    """`document` as JSON of exactly `size` bytes (trailing whitespace: still valid JSON)."""
    text = json.dumps(document).encode()
    assert len(text) <= size
    return text + b" " * (size - len(text))


def chunks(data: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    """`data` sent chunked (httpx sends no Content-Length for a generator)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def zeros(total: int, size: int = MiB) -> Iterator[bytes]:
    """`total` bytes made as they are sent, so the test never holds them."""
    block = b"\0" * size
    for _ in range(total // size):
        yield block


def over_limit(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.json() == {"overLimit": {"code": 413, "message": "Request is too large."}}


@pytest.fixture
def anonymous(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, timeout=60) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", "/v2.1/servers", JSON),
        ("POST", f"/v2.1/servers/{ANY_ID}/action", JSON),
        ("PUT", "/v2.1/os-quota-sets/p", JSON),
        ("POST", "/v2.1/os-keypairs", JSON),
        ("GET", "/v2.1/flavors", JSON),
        ("POST", "/image/v2/images", JSON),
        ("POST", "/no/such/route", JSON),
        # The image data exemption is that route, method and Content-Type only.
        ("PUT", f"/image/v2/images/{ANY_ID}/file", JSON),
        ("POST", f"/image/v2/images/{ANY_ID}/file", OCTETS),
        ("PUT", f"/image/v2/images/{ANY_ID}/file/more", OCTETS),
        ("PUT", f"/v2.1/images/{ANY_ID}/file", OCTETS),
    ],
)
def test_a_declared_body_over_the_limit_is_refused_before_authentication(
    anonymous: httpx.Client, method: str, path: str, headers: dict[str, str]
) -> None:
    body = padded({"server": {"name": "vm"}}, LIMIT + 1)
    over_limit(anonymous.request(method, path, content=body, headers=headers))


def test_an_authenticated_body_over_the_limit_creates_nothing(nova: NovaClient) -> None:
    before = snapshot(nova)
    # A valid create, but one byte too long: never read, so no server.
    body = padded(server(name="too-long-body"), LIMIT + 1)
    over_limit(nova.http.post("/v2.1/servers", content=body, headers=JSON))
    streamed = nova.http.post("/v2.1/servers", content=chunks(body), headers=JSON)
    assert streamed.request.headers.get("transfer-encoding") == "chunked"
    over_limit(streamed)
    assert snapshot(nova) == before


def test_a_chunked_body_is_cut_off_at_the_limit(nova: NovaClient, anonymous: httpx.Client) -> None:
    response = nova.http.post("/v2.1/servers", content=zeros(8 * MiB, 64 * 1024), headers=JSON)
    assert response.request.headers.get("transfer-encoding") == "chunked"
    over_limit(response)
    # Without a token nothing of it is read: authentication comes before any body is.
    response = anonymous.post("/v2.1/servers", content=zeros(8 * MiB, 64 * 1024), headers=JSON)
    assert response.status_code == 401, response.text


def test_a_body_at_the_limit_reaches_validation(nova: NovaClient) -> None:
    before = snapshot(nova)
    body = padded(server(name="x" * 256), LIMIT)  # a name too long: validation's 400
    for content in (body, chunks(body)):
        response = nova.http.post("/v2.1/servers", content=content, headers=JSON)
        assert response.status_code == 400, response.text
        assert "name" in response.json()["badRequest"]["message"]
    assert snapshot(nova) == before


def test_image_data_far_above_the_limit_is_still_uploaded(nova: NovaClient) -> None:
    for name, content, size in (
        ("declared", b"\1" * (3 * MiB), 3 * MiB),
        ("streamed", zeros(3 * MiB), 3 * MiB),
    ):
        image = nova.admin.post("/image/v2/images", json={"name": name, "disk_format": "raw"})
        assert image.status_code == 201, image.text
        url = f"/image/v2/images/{image.json()['id']}/file"
        response = nova.admin.put(url, content=content, headers=OCTETS)
        assert response.status_code == 204, response.text
        shown = nova.admin.get(f"/image/v2/images/{image.json()['id']}").json()
        assert shown["status"] == "active" and shown["size"] == size
        assert nova.admin.delete(f"/image/v2/images/{image.json()['id']}").status_code == 204


class PeakRss:
    """The largest resident set size (KiB) of a process while the block runs: its kernel peak
    (VmHWM, reset first where allowed) and a sampler's, whichever is larger."""

    def __init__(self, pid: int) -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.clear_refs = Path(f"/proc/{pid}/clear_refs")
        self.peak = 0
        self._stop = threading.Event()
        self._hwm_reset = False

    def read(self, field: str) -> int:
        for line in self.status.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in {self.status}")

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self.read("VmRSS"))

    def __enter__(self) -> PeakRss:
        try:
            self.clear_refs.write_text("5")  # resets VmHWM to the current RSS
            self._hwm_reset = True
        except OSError:
            pass
        self.peak = self.read("VmRSS")
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._hwm_reset:
            self.peak = max(self.peak, self.read("VmHWM"))


def test_a_huge_unauthenticated_body_does_not_grow_the_api(
    stack: Stack, anonymous: httpx.Client
) -> None:
    api = PeakRss(stack.processes["api"].pid)
    before = api.read("VmRSS")
    with api:
        streamed = anonymous.post("/v2.1/servers", content=zeros(200 * MiB), headers=JSON)
        declared = anonymous.post(
            "/v2.1/servers",
            content=zeros(200 * MiB),
            headers={**JSON, "Content-Length": str(200 * MiB)},
        )
    assert streamed.request.headers.get("transfer-encoding") == "chunked"
    assert declared.request.headers.get("transfer-encoding") is None
    assert api.peak - before < 30 * 1024, f"API RSS grew from {before} to {api.peak} KiB"
    assert streamed.status_code == 401, streamed.text  # refused before its body is read
    over_limit(declared)
