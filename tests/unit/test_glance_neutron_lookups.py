"""The image and network services' read-only lists as Glance and Neutron clients use them
(openstacksdk finds an image or a network by name or id with these queries), their version
documents, and a create with the block device mapping `openstack server create` sends; on the
app without a stack (tests/integration/test_openstack_cli.py runs the CLI itself)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from novaflow.config import Settings
from novaflow.db import Database
from novaflow.seed import PRIVATE_NETWORK_ID, PUBLIC_NETWORK_ID
from tests.dbs import fresh_database

ALICE = {"X-Auth-Token": "alice:demo"}
IMAGES, NETWORKS = "/image/v2/images", "/network/v2.0/networks"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    db: Database = fresh_database("sqlite", tmp_path)
    settings = Settings(database_url=db.url)
    app = create_app(settings)
    app.state.settings = settings  # what the lifespan sets; no Temporal is needed here
    app.state.db = db
    app.state.temporal = None  # a create refused at its body never reaches Temporal
    # Not entered as a context manager: the lifespan would connect to Temporal.
    yield TestClient(app, base_url="http://127.0.0.1", headers=ALICE)
    db.dispose()


def names(api: TestClient, path: str, key: str, **query: Any) -> list[str]:
    response = api.get(path, params=query)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()[key]]


def test_images_are_found_by_name_id_and_property(api: TestClient) -> None:
    assert names(api, IMAGES, "images", name="debian-12") == ["debian-12"]
    [cirros] = api.get(IMAGES, params={"name": "cirros-0.6.2"}).json()["images"]
    assert names(api, IMAGES, "images", id=f"in:{cirros['id']}") == ["cirros-0.6.2"]
    assert names(api, IMAGES, "images", name="in:debian-12,cirros-0.6.2", os_distro="cirros") == [
        "cirros-0.6.2"
    ]
    assert names(api, IMAGES, "images", name="no-such-image") == []
    # What openstacksdk tries first with a name: a 404, then the list by name.
    assert api.get(f"{IMAGES}/cirros-0.6.2").status_code == 404
    assert api.get(f"{IMAGES}/{cirros['id']}").json()["os_hidden"] is False


def test_image_pages_link_the_next_with_the_same_filters(api: TestClient) -> None:
    qcow2 = names(api, IMAGES, "images", disk_format="qcow2")
    assert len(qcow2) > 2
    page = api.get(IMAGES, params={"limit": 2, "disk_format": "qcow2"}).json()
    seen = [i["name"] for i in page["images"]]
    while "next" in page:  # relative to the endpoint, as Glance's
        assert page["next"].startswith("/v2/images?") and "disk_format=qcow2" in page["next"]
        page = api.get("/image" + page["next"]).json()
        seen += [i["name"] for i in page["images"]]
    assert seen == qcow2
    assert api.get(IMAGES, params={"marker": "nope"}).status_code == 400


def test_networks_are_found_by_name_id_and_fields(api: TestClient) -> None:
    assert names(api, NETWORKS, "networks", name="private") == ["private"]
    assert names(api, NETWORKS, "networks", id=PUBLIC_NETWORK_ID) == ["public"]
    assert names(api, NETWORKS, "networks", **{"router:external": "True"}) == ["public"]
    both = api.get(NETWORKS, params=[("name", "private"), ("name", "public")]).json()
    assert sorted(n["name"] for n in both["networks"]) == ["private", "public"]
    private = api.get(f"{NETWORKS}/{PRIVATE_NETWORK_ID}").json()["network"]
    assert private["shared"] is True and private["status"] == "ACTIVE" and private["subnets"]
    only = api.get(NETWORKS, params=[("name", "private"), ("fields", "id")]).json()
    assert only == {"networks": [{"id": PRIVATE_NETWORK_ID}]}
    refused = api.get(NETWORKS, params={"colour": "blue"})
    assert refused.status_code == 400 and "[colour]" in refused.text
    assert api.get(f"{NETWORKS}/private").status_code == 404


@pytest.mark.parametrize(
    ("path", "status", "self_link"),
    [
        ("/image", 300, "http://127.0.0.1/image/v2/"),
        ("/network/", 200, "http://127.0.0.1/network/v2.0/"),
    ],
)
def test_version_documents_are_public(
    api: TestClient, path: str, status: int, self_link: str
) -> None:
    response = api.get(path, headers={"X-Auth-Token": ""})
    assert response.status_code == status
    [version] = response.json()["versions"]
    assert version["status"] == "CURRENT" and version["links"][0]["href"] == self_link


def test_the_identity_endpoint_is_a_version_document(api: TestClient) -> None:
    [v3] = api.get("/identity", headers={"X-Auth-Token": ""}).json()["versions"]["values"]
    assert v3["id"].startswith("v3") and v3["links"][0]["href"] == "http://127.0.0.1/identity/v3/"
    assert api.get("/identity/v3/", headers={"X-Auth-Token": ""}).json()["version"] == v3


def test_only_the_images_root_disk_is_accepted_as_a_block_device(api: TestClient) -> None:
    image_id = api.get(IMAGES, params={"name": "cirros-0.6.2"}).json()["images"][0]["id"]
    root = {"uuid": image_id, "boot_index": 0, "source_type": "image",
            "destination_type": "local", "delete_on_termination": True}  # fmt: skip
    body = {"name": "vm", "flavorRef": "1", "imageRef": image_id, "networks": "none"}
    for mapping in (
        [{**root, "destination_type": "volume"}],
        [{**root, "uuid": PRIVATE_NETWORK_ID}],
        [root, {**root, "boot_index": 1}],
        [{**root, "source_type": "volume"}],
    ):
        refused = api.post(
            "/v2.1/servers", json={"server": {**body, "block_device_mapping_v2": mapping}}
        )
        assert refused.status_code == 400, refused.text
        assert "block_device_mapping_v2" in refused.json()["badRequest"]["message"]
