"""A host's cache of images with content (Nova's image cache, `_base`), kept by its compute
worker: an image is downloaded once through the image API (hosts share no filesystem with the
control plane), its SHA-256 checked as it arrives, and written into the host's pool as the
base of every server disk made from it there (each a copy-on-write overlay). An image no server
on the host uses is removed once it has been unused for the cache's maximum age.

The index (which images are complete here, and when each was last used) is the worker's own
file: a copy interrupted by a crash is not in it, so it is fetched again.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from hypervisor.errors import DomainDefinitionError, HostFailure, HypervisorError
from hypervisor.faults import write_atomic
from hypervisor.libvirt_host import LibvirtHost
from workflows.contracts import ImageContent

CHUNK = 1024 * 1024


class ImageUnavailable(DomainDefinitionError):
    """The image is gone from the image service: no host can build from it."""


class ImageCache:
    def __init__(
        self,
        driver: LibvirtHost,
        api_url: str,
        token: str | Callable[[], str],
        state_dir: Path,
        timeout: float = 60,
    ) -> None:
        self.driver = driver
        self.api_url = api_url.rstrip("/")
        # A fixed token (noauth), or what gives a valid one at each download (a Keycloak
        # service account's: workers/service_token.py).
        self.token = token
        self.index_path = Path(state_dir) / "image-cache.json"
        self.timeout = timeout
        self._guard = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}

    def ensure(self, content: ImageContent, on_wait: Callable[[], None] | None = None) -> str:
        """The path of the image's copy on this host, fetched and checked first if it is not
        complete here. One fetch per image at a time; the others wait for it."""
        with self._lock_for(content.image_id):
            entry = self._read().get(content.image_id)
            path = self.driver.base_image_path(content.image_id)
            if entry is not None and entry.get("sha256") == content.sha256 and path:
                self._write_entry(content.image_id, content.sha256)
                return path
            path = self._fetch(content, on_wait)
            self._write_entry(content.image_id, content.sha256)
            return path

    def cached(self) -> dict[str, dict[str, Any]]:
        return self._read()

    def clean(self, in_use: set[str], max_age_seconds: float) -> list[str]:
        """Remove the images no server here uses and that have not been used for
        `max_age_seconds`; returns their ids."""
        removed = []
        with self._guard:
            index = self._read()
            now = time.time()
            for image_id, entry in list(index.items()):
                if image_id in in_use:
                    entry["last_used"] = now
                elif now - float(entry.get("last_used", 0)) >= max_age_seconds:
                    self.driver.delete_base_image(image_id)
                    del index[image_id]
                    removed.append(image_id)
            write_atomic(self.index_path, json.dumps(index, indent=1, sort_keys=True) + "\n")
        return removed

    # ------------------------------------------------------------ internals

    def _token(self) -> str:
        return self.token if isinstance(self.token, str) else self.token()

    def _fetch(self, content: ImageContent, on_wait: Callable[[], None] | None) -> str:
        image_id = content.image_id
        digest = hashlib.sha256()
        received = 0
        url = f"{self.api_url}/image/v2/images/{image_id}/file"
        try:
            with httpx.stream(
                "GET", url, headers={"X-Auth-Token": self._token()}, timeout=self.timeout
            ) as response:
                if response.status_code == 404:
                    raise ImageUnavailable(f"image {image_id} is no longer in the image service")
                if response.status_code != 200:
                    raise HypervisorError(
                        f"image {image_id}: the image service answered {response.status_code}"
                    )

                def chunks() -> Iterator[bytes]:
                    nonlocal received
                    for chunk in response.iter_bytes(CHUNK):
                        received += len(chunk)
                        digest.update(chunk)
                        yield chunk

                path = self.driver.store_base_image(
                    image_id, content.size, chunks(), on_wait=on_wait
                )
        except httpx.HTTPError as error:
            raise HypervisorError(f"image {image_id}: download failed: {error}") from error
        if received != content.size or digest.hexdigest() != content.sha256:
            self.driver.delete_base_image(image_id)
            raise HostFailure(
                f"image {image_id}: the copy on this host does not match its checksum "
                f"({received} bytes, sha256 {digest.hexdigest()[:12]}...; expected "
                f"{content.size} bytes, {content.sha256[:12]}...)"
            )
        return path

    def _lock_for(self, image_id: str) -> threading.Lock:
        with self._guard:
            return self._fetching.setdefault(image_id, threading.Lock())

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_entry(self, image_id: str, sha256: str) -> None:
        with self._guard:
            index = self._read()
            index[image_id] = {"sha256": sha256, "last_used": time.time()}
            write_atomic(self.index_path, json.dumps(index, indent=1, sort_keys=True) + "\n")
