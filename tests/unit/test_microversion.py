"""Microversion negotiation (api/microversion.py), header by header."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers, MutableHeaders

from api import microversion
from api.microversion import MAX_VERSION, MIN_VERSION, Version, VersionRefused, negotiate


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
    assert MIN_VERSION == (2, 1) and MAX_VERSION == (2, 1)  # see the module's docstring


def test_vary_keeps_what_is_there() -> None:
    response_headers = MutableHeaders({"vary": "Origin"})
    microversion.stamp(response_headers, Version(2, 1))
    assert response_headers["vary"] == "Origin, OpenStack-API-Version, X-OpenStack-Nova-API-Version"
    assert response_headers["openstack-api-version"] == "compute 2.1"
    assert response_headers["x-openstack-nova-api-version"] == "2.1"
