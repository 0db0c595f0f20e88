"""Images with content through the image API (/image/v2/images, Glance's shape) on the real
stack: registered, uploaded in a stream with their checksums taken, listed by the compute API,
downloaded byte for byte; admin-only writes; bad uploads refused with nothing stored. A host
fetches an image once into its cache (checked), and drops it once no server there uses it.
AMI-style images (kernel_id/ramdisk_id) boot their kernel and ramdisk from the host's cache;
bad references are refused at the API."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx

from activities.compute import DEFAULT_COMMAND_LINE
from tests.integration.client import NovaClient, refused, wait_until
from tests.integration.leaks import leaks
from tests.integration.test_cli import novaflow, ok
from tests.integration.test_moves import settled
from tests.integration.test_rebuild import rebuild
from workers.devstack import Stack

IMAGES = "/image/v2/images"


def register(nova: NovaClient, name: str, **fields: Any) -> dict[str, Any]:
    response = nova.admin.post(IMAGES, json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def upload(client: httpx.Client, image_id: str, data: Any) -> httpx.Response:
    return client.put(
        f"{IMAGES}/{image_id}/file",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def test_an_image_is_registered_uploaded_listed_and_downloaded(nova: NovaClient) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    image = register(nova, "blob", disk_format="raw", os_distro="test", min_disk=1)
    assert image["status"] == "queued" and image["size"] is None and image["os_distro"] == "test"
    assert upload(nova.admin, image["id"], data).status_code == 204

    shown = nova.admin.get(f"{IMAGES}/{image['id']}").json()
    assert shown["status"] == "active" and shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert shown["os_hash_algo"] == "sha256"
    assert shown["os_hash_value"] == hashlib.sha256(data).hexdigest()
    nova_view = nova.http.get(f"/v2.1/images/{image['id']}").json()["image"]
    assert nova_view["status"] == "ACTIVE" and nova_view["OS-EXT-IMG-SIZE:size"] == len(data)
    assert nova_view["metadata"] == {"os_distro": "test"} and nova_view["minDisk"] == 1
    assert image["id"] in {i["id"] for i in nova.http.get(IMAGES).json()["images"]}

    download = nova.http.get(f"{IMAGES}/{image['id']}/file")
    assert download.status_code == 200 and download.content == data
    assert download.headers["content-md5"] == shown["checksum"]

    # Once: a second upload is a conflict, and the content stays.
    refused(upload(nova.admin, image["id"], b"other"), 409, "active")
    assert nova.http.get(f"{IMAGES}/{image['id']}/file").content == data

    assert nova.admin.delete(f"{IMAGES}/{image['id']}").status_code == 204
    refused(nova.http.get(f"{IMAGES}/{image['id']}"), 404)


def test_only_an_admin_registers_or_uploads(nova: NovaClient) -> None:
    refused(nova.http.post(IMAGES, json={"name": "mine"}), 403)
    image = register(nova, "admin-only")
    refused(upload(nova.http, image["id"], b"x" * 1024), 403)
    refused(nova.http.delete(f"{IMAGES}/{image['id']}"), 403)
    assert nova.admin.get(f"{IMAGES}/{image['id']}").json()["status"] == "queued"


def test_bad_uploads_are_refused_and_store_nothing(nova: NovaClient) -> None:
    refused(nova.admin.post(IMAGES, json={"name": "x", "disk_format": "vmdk"}), 400, "disk_format")
    refused(nova.admin.post(IMAGES, json={"name": "x", "owner_note": 3}), 400, "owner_note")
    image = register(nova, "too-big")
    wrong = nova.admin.put(
        f"{IMAGES}/{image['id']}/file", content=b"x", headers={"Content-Type": "text/plain"}
    )
    refused(wrong, 400, "Content-Type")

    def too_much() -> Iterator[bytes]:  # 33 MiB, streamed: the stack allows 32
        for _ in range(33):
            yield b"\0" * 1024 * 1024

    response = upload(nova.admin, image["id"], too_much())
    assert response.status_code == 413, response.text
    shown = nova.admin.get(f"{IMAGES}/{image['id']}").json()
    assert shown["status"] == "queued" and shown["size"] is None
    # Not active: no server is built from it, and a later upload may still give it content.
    refused(nova.create(name="from-queued", image=image["id"]), 400, "imageRef", "not active")
    assert upload(nova.admin, image["id"], b"fine").status_code == 204


def test_the_cli_adds_and_lists_images(nova: NovaClient, stack: Stack, tmp_path: Any) -> None:
    file = tmp_path / "disk.raw"
    file.write_bytes(os.urandom(100_000))
    out = ok(
        novaflow(
            stack, "image", "add", str(file), "--name", "cli-image", "--disk-format", "raw",
            "--property", "os_distro=cirros",
        )
    )  # fmt: skip
    assert "active, 100000 bytes" in out
    assert hashlib.sha256(file.read_bytes()).hexdigest() in out
    assert "cli-image" in ok(novaflow(stack, "image", "list"))
    bad = novaflow(stack, "image", "add", str(tmp_path / "missing"), "--name", "x")
    assert bad.returncode == 1 and "no such file" in bad.stderr


# ------------------------------------------------------------ hosts' image caches


def uploaded(nova: NovaClient, name: str, data: bytes, **fields: Any) -> str:
    image = register(nova, name, **{"disk_format": "raw", **fields})
    assert upload(nova.admin, image["id"], data).status_code == 204
    return str(image["id"])


def cache_record(stack: Stack, host: str, image_id: str) -> Path:
    return stack.host_state_dir(host) / "base-images" / f"{image_id}.json"


def cache_index(stack: Stack, host: str) -> dict[str, Any]:
    path = stack.host_state_dir(host) / "image-cache.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def test_a_host_fetches_an_image_once_and_drops_it_when_unused(
    nova: NovaClient, stack: Stack
) -> None:
    data = os.urandom(2 * 1024 * 1024)
    image_id = uploaded(nova, "cached", data)
    first = nova.create_ok(name="c1", image=image_id, availability_zone="az-2")
    server = nova.wait_status(first, "ACTIVE")
    host = server["OS-EXT-SRV-ATTR:host"]
    record = cache_record(stack, host, image_id)
    assert json.loads(record.read_text())["size"] == len(data)  # every byte came, checked
    assert cache_index(stack, host)[image_id]["sha256"] == hashlib.sha256(data).hexdigest()
    action = nova.action(first, nova.actions(first)[0]["request_id"])
    assert f"fetch_image@{host}" in {e["event"] for e in action["events"]}

    fetched_at = record.stat().st_mtime_ns
    second = nova.create_ok(name="c2", image=image_id, availability_zone="az-2")
    assert nova.wait_status(second, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == host
    assert record.stat().st_mtime_ns == fetched_at  # taken from the cache, not fetched again

    nova.delete_and_wait(first)
    assert image_id in cache_index(stack, host)  # `second` still uses it
    nova.delete_and_wait(second)
    wait_until(
        lambda: not record.exists() and image_id not in cache_index(stack, host),
        "the unused image to leave the cache",
        timeout=30,
    )


def test_an_image_that_fails_its_checksum_is_a_clear_fault(nova: NovaClient, stack: Stack) -> None:
    image_id = uploaded(nova, "corrupt", os.urandom(1024 * 1024))
    stored = stack.state_dir / "images" / image_id
    damaged = bytearray(stored.read_bytes())
    damaged[100] ^= 0xFF
    stored.write_bytes(bytes(damaged))  # the store's copy no longer matches its checksum
    server_id = nova.create_ok(name="corrupt-vm", image=image_id)
    shown = nova.wait_status(server_id, "ERROR", timeout=90)
    assert "does not match its checksum" in shown["fault"]["message"]
    assert not any(cache_record(stack, h.name, image_id).exists() for h in stack.hosts)
    nova.delete_and_wait(server_id)
    assert leaks(stack, [server_id]) == {}


# ------------------------------------------------------------ AMI-style images


def ami(nova: NovaClient, name: str, **props: str) -> str:
    """A small disk image with content whose properties name a kernel and a ramdisk."""
    return uploaded(nova, name, os.urandom(64 * 1024), **props)


def boot_files(stack: Stack, host: str, server_id: str) -> tuple[str | None, ...]:
    """The <kernel>, <initrd> and <cmdline> of the domain as defined on `host`."""
    xml = (stack.host_state_dir(host) / "domains" / f"{server_id}.xml").read_text()
    os_element = ElementTree.fromstring(xml).find("os")
    assert os_element is not None
    return tuple(os_element.findtext(tag) for tag in ("kernel", "initrd", "cmdline"))


def test_an_ami_image_boots_its_kernel_and_ramdisk_from_the_hosts_cache(
    nova: NovaClient, stack: Stack
) -> None:
    kernel = uploaded(nova, "ami-kernel", os.urandom(96 * 1024), disk_format="aki",
                      container_format="aki")  # fmt: skip
    ramdisk = uploaded(nova, "ami-ramdisk", os.urandom(48 * 1024), disk_format="ari",
                       container_format="ari")  # fmt: skip
    disk = ami(nova, "ami-disk", kernel_id=kernel, ramdisk_id=ramdisk)
    server_id = nova.create_ok(name="ami-vm", image=disk)
    host = nova.wait_status(server_id, "ACTIVE")["OS-EXT-SRV-ATTR:host"]
    cached = {i: str(cache_record(stack, host, i)) for i in (disk, kernel, ramdisk)}
    assert boot_files(stack, host, server_id) == (
        cached[kernel],
        cached[ramdisk],
        DEFAULT_COMMAND_LINE,
    )
    index = cache_index(stack, host)
    assert {disk, kernel, ramdisk} <= set(index)
    action = nova.action(server_id, nova.actions(server_id)[0]["request_id"])
    assert {f"fetch_image@{host}", f"fetch_kernel@{host}", f"fetch_ramdisk@{host}"} <= {
        e["event"] for e in action["events"]
    }

    # A rebuild boots them again from the cache (nothing fetched anew).
    fetched_at = {i: Path(cached[i]).stat().st_mtime_ns for i in (kernel, ramdisk)}
    rebuild(nova, server_id, imageRef=disk)
    settled(nova, server_id, "ACTIVE")
    assert boot_files(stack, host, server_id)[:2] == (cached[kernel], cached[ramdisk])
    assert {i: Path(cached[i]).stat().st_mtime_ns for i in (kernel, ramdisk)} == fetched_at

    # In use while the server is: the cleaner keeps them past the cache's age (it refreshes
    # what is in use; what is not is removed once that old).
    since = time.time()

    def refreshed() -> bool:
        now = cache_index(stack, host)
        return not {kernel, ramdisk} <= set(now) or all(
            now[i]["last_used"] > since + 2.5 for i in (kernel, ramdisk)
        )

    wait_until(refreshed, "the cleaner to pass the cache's age", timeout=30)
    assert {disk, kernel, ramdisk} <= set(cache_index(stack, host))

    nova.delete_and_wait(server_id)
    wait_until(
        lambda: (
            not {disk, kernel, ramdisk} & set(cache_index(stack, host))
            and not any(Path(path).exists() for path in cached.values())
        ),
        "the unused kernel, ramdisk and disk image to leave the cache",
        timeout=30,
    )


def test_bad_kernel_and_ramdisk_references_are_refused_and_change_nothing(
    nova: NovaClient, server: str
) -> None:
    kernel = uploaded(nova, "bad-ref-kernel", b"k" * 1024, disk_format="aki")
    ramdisk = uploaded(nova, "bad-ref-ramdisk", b"r" * 1024, disk_format="ari")
    queued = register(nova, "bad-ref-queued", disk_format="aki")["id"]
    missing = "00000000-0000-4000-8000-00000000dead"
    cases = [  # the image's properties, and what the refusal names
        ({"kernel_id": missing}, ["kernel_id", missing]),
        ({"kernel_id": queued}, ["kernel_id", "not an active kernel image"]),
        ({"kernel_id": ramdisk}, ["kernel_id", "disk_format aki"]),
        ({"kernel_id": kernel, "ramdisk_id": kernel}, ["ramdisk_id", "disk_format ari"]),
        ({"ramdisk_id": ramdisk}, ["ramdisk_id", "needs a kernel"]),
    ]
    bad = [(ami(nova, f"bad-ref-{n}", **props), named) for n, (props, named) in enumerate(cases)]

    def state() -> tuple[Any, ...]:
        shown = nova.show(server)
        kept = (shown[k] for k in ("status", "image", "name", "updated", "OS-EXT-SRV-ATTR:host"))
        return (nova.servers(), nova.usage(), *kept)

    before = state()
    for image_id, named in bad:
        refused(nova.create(name="never", image=image_id), 400, "imageRef", image_id, *named)
        refused(
            nova.server_action(server, {"rebuild": {"imageRef": image_id}}),
            400,
            "rebuild.imageRef",
            *named,
        )
    assert state() == before
