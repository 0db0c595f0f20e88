"""Microversion negotiation (api/microversion.py), header by header; and what request bodies
each version accepts (api/schemas.py), without a stack."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from pydantic import ValidationError
from starlette.datastructures import Headers, MutableHeaders

from api import microversion
from api.microversion import MAX_VERSION, MIN_VERSION, Version, VersionRefused, negotiate
from api.schemas import MigrateAction, ServerCreateBody, ServerGroupBody


def headers(**values: str) -> Headers:
    return Headers({name.replace("_", "-"): value for name, value in values.items()})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, MIN_VERSION),
        ({"OpenStack_API_Version": "compute 2.1"}, Version(2, 1)),
        ({"OpenStack_API_Version": "compute latest"}, MAX_VERSION),
        ({"OpenStack_API_Version": "COMPUTE  Latest"}, MAX_VERSION),
        ({"OpenStack_API_Version": "volume 3.0,compute 2.1"}, Version(2, 1)),
        ({"OpenStack_API_Version": "volume 3.70"}, MIN_VERSION),  # no compute entry
        ({"OpenStack_API_Version": "volume 3.70", "X_OpenStack_Nova_API_Version": "2.1"}, (2, 1)),
        ({"X_OpenStack_Nova_API_Version": "2.1"}, Version(2, 1)),
        ({"OpenStack_API_Version": "compute 2.60"}, Version(2, 60)),
        ({"OpenStack_API_Version": "compute 2.10"}, Version(2, 10)),
        ({"X_OpenStack_Nova_API_Version": "latest"}, MAX_VERSION),
        ({"OpenStack_API_Version": "compute 2.1", "X_OpenStack_Nova_API_Version": "9.9"}, (2, 1)),
    ],
)
def test_negotiated(given: dict[str, str], expected: tuple[int, int]) -> None:
    assert negotiate(headers(**given)) == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("compute 2.999", 406),
        (f"compute 2.{MAX_VERSION.minor + 1}", 406),
        ("compute 1.0", 406),
        ("compute 3.0", 406),
        ("compute banana", 400),
        ("compute 2.", 400),
        ("compute 02.1", 400),
        ("compute 2.01", 400),
        ("compute -2.1", 400),
    ],
)
def test_refused(value: str, code: int) -> None:
    with pytest.raises(VersionRefused) as refused:
        negotiate(headers(OpenStack_API_Version=value))
    assert refused.value.code == code


def test_versions_compare_as_tuples() -> None:
    assert Version(2, 47) >= (2, 47) and Version(2, 10) > (2, 9) and not Version(2, 1) >= (2, 2)
    assert str(Version(2, 47)) == "2.47"
    assert MIN_VERSION == (2, 1) and MAX_VERSION == (2, 62)  # see the module's docstring


def test_every_version_up_to_the_maximum_is_in_the_history() -> None:
    """The module's docstring says what each version changes: none is left out."""
    named: set[int] = set()
    for line in (microversion.__doc__ or "").splitlines():
        found = re.match(r"^- (2\.\d+(?:(?:, | to )2\.\d+)*)", line)
        if found is None:
            continue
        minors = [int(n) for n in re.findall(r"2\.(\d+)", found.group(1))]
        if " to " in found.group(1):
            minors = list(range(minors[0], minors[-1] + 1))
        named.update(minors)
    assert named == set(range(2, MAX_VERSION.minor + 1))


def test_vary_keeps_what_is_there() -> None:
    response_headers = MutableHeaders({"vary": "Origin"})
    microversion.stamp(response_headers, Version(2, 1))
    assert response_headers["vary"] == "Origin, OpenStack-API-Version, X-OpenStack-Nova-API-Version"
    assert response_headers["openstack-api-version"] == "compute 2.1"
    assert response_headers["x-openstack-nova-api-version"] == "2.1"


@contextmanager
def served_in(version: str) -> Iterator[None]:
    token = microversion.current.set(microversion.parse(version))
    try:
        yield
    finally:
        microversion.current.reset(token)


def create_body(**server: object) -> dict[str, object]:
    return {"server": {"name": "vm", "flavorRef": "1", "imageRef": "cirros", **server}}


@pytest.mark.parametrize(
    ("version", "server", "refused"),
    [
        ("2.18", {"description": "d", "networks": []}, "description"),
        ("2.19", {"description": "d", "networks": []}, None),
        ("2.51", {"tags": ["a"], "networks": []}, "tags"),
        ("2.52", {"tags": ["a"], "networks": "none"}, None),
        ("2.36", {"networks": "auto"}, "networks"),
        ("2.36", {}, None),
        ("2.37", {}, "networks"),
        ("2.37", {"networks": [{"uuid": "net"}]}, "uuid"),
        ("2.32", {"networks": [{"uuid": "net", "tag": "t"}]}, None),
        ("2.33", {"networks": [{"uuid": "net", "tag": "t"}]}, "tag"),
        ("2.42", {"networks": [{"uuid": str(uuid.uuid4()), "tag": "t"}]}, None),
    ],
)
def test_create_bodies_by_version(
    version: str, server: dict[str, object], refused: str | None
) -> None:
    with served_in(version):
        if refused is None:
            ServerCreateBody.model_validate(create_body(**server))
            return
        with pytest.raises(ValidationError) as error:
            ServerCreateBody.model_validate(create_body(**server))
    assert refused in str(error.value)


@pytest.mark.parametrize(
    ("version", "body", "refused"),
    [
        ("2.55", {"host": "h"}, True),
        ("2.56", {"host": "h"}, False),
        ("2.55", {}, False),
    ],
)
def test_migrate_names_its_host_from_2_56(
    version: str, body: dict[str, str], refused: bool
) -> None:
    with served_in(version):
        if refused:
            with pytest.raises(ValidationError, match="host"):
                MigrateAction.model_validate(body)
        else:
            MigrateAction.model_validate(body)


def test_server_groups_take_nova_s_policies_list_and_soft_ones_from_2_15() -> None:
    hard = {"server_group": {"name": "g", "policies": ["anti-affinity"]}}
    soft = {"server_group": {"name": "g", "policies": ["soft-affinity"]}}
    with served_in("2.14"):
        assert ServerGroupBody.model_validate(hard).server_group.policy == "anti-affinity"
        with pytest.raises(ValidationError, match="soft-affinity"):
            ServerGroupBody.model_validate(soft)
    with served_in("2.15"):
        assert ServerGroupBody.model_validate(soft).server_group.policy == "soft-affinity"
