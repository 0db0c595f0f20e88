"""Images through the image API (/image/v2/images): register one, upload its file in a stream,
list them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from cli.config import CliError, Endpoints
from cli.servers import api_message

CHUNK = 1024 * 1024
IMAGES = "/image/v2/images"


class ImagesAPI:
    def __init__(self, where: Endpoints) -> None:
        self.http = httpx.Client(
            base_url=where.api_url,
            headers={"X-Auth-Token": where.token},
            timeout=httpx.Timeout(60, write=600),
        )
        self.where = where

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str = "", **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, IMAGES + path, **kwargs)
        except httpx.HTTPError as error:
            raise CliError(f"cannot reach the API at {self.where.api_url}: {error}") from None
        if response.status_code >= 400:
            raise CliError(f"{response.status_code}: {api_message(response)}")
        return response

    def add(
        self,
        file: Path,
        name: str,
        properties: dict[str, str],
        disk_format: str,
        min_disk: int = 0,
        min_ram: int = 0,
    ) -> dict[str, Any]:
        """Register the image, then upload the file's bytes: the image is then active."""
        if not file.is_file():
            raise CliError(f"{file}: no such file")
        container = disk_format if disk_format in ("aki", "ari") else "bare"
        record = self._call(
            "POST",
            json={
                **properties,
                "name": name,
                "disk_format": disk_format,
                "container_format": container,
                "min_disk": min_disk,
                "min_ram": min_ram,
            },
        ).json()
        self._call(
            "PUT",
            f"/{record['id']}/file",
            content=_chunks(file),
            headers={"Content-Type": "application/octet-stream"},
        )
        return dict(self._call("GET", f"/{record['id']}").json())

    def list(self) -> list[dict[str, Any]]:
        return list(self._call("GET").json()["images"])


def _chunks(file: Path) -> Iterator[bytes]:
    with file.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk
