"""Server-group quota (Nova's server_groups and server_group_members): enforced at a group's
creation and at a create into a group, race-safe, shown by /limits and os-quota-sets."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.integration.client import NovaClient, refused


def new_group(nova: NovaClient, name: str) -> httpx.Response:
    return nova.http.post(
        "/v2.1/os-server-groups", json={"server_group": {"name": name, "policy": "affinity"}}
    )


def in_group(nova: NovaClient, group: str, name: str, **extra: Any) -> httpx.Response:
    body = nova.server_body(name=name, **extra)
    return nova.http.post("/v2.1/servers", json={**body, "os:scheduler_hints": {"group": group}})


def absolute_limits(nova: NovaClient) -> dict[str, int]:
    return dict(nova.http.get("/v2.1/limits").json()["limits"]["absolute"])


def test_a_project_makes_no_more_groups_than_its_quota_even_all_at_once(nova: NovaClient) -> None:
    nova.set_quota(server_groups=2)
    with ThreadPoolExecutor(6) as pool:  # six at once: exactly two fit
        answers = list(pool.map(lambda i: new_group(nova, f"g-{i}"), range(6)))
    assert sorted(a.status_code for a in answers) == [200, 200, 403, 403, 403, 403]
    refused(next(a for a in answers if a.status_code == 403), 403, "too many server groups")
    limits = absolute_limits(nova)
    assert (limits["maxServerGroups"], limits["totalServerGroupsUsed"]) == (2, 2)
    detail = nova.http.get(f"/v2.1/os-quota-sets/{nova.project}/detail").json()["quota_set"]
    assert detail["server_groups"] == {"limit": 2, "in_use": 2, "reserved": 0}

    # A limit below what is used is refused (unless forced); a group deleted gives its place back.
    low = nova.admin.put(
        f"/v2.1/os-quota-sets/{nova.project}", json={"quota_set": {"server_groups": 1}}
    )
    refused(low, 400, "server_groups")
    made = [a.json()["server_group"]["id"] for a in answers if a.status_code == 200]
    assert nova.http.delete(f"/v2.1/os-server-groups/{made[0]}").status_code == 204
    assert new_group(nova, "again").status_code == 200


def test_a_group_takes_no_more_servers_than_its_quota(nova: NovaClient) -> None:
    nova.set_quota(server_group_members=2)
    group = new_group(nova, "small").json()["server_group"]["id"]
    before = nova.usage()
    refused(in_group(nova, group, "three", min_count=3), 403, "too many servers in group")
    assert nova.usage() == before and nova.servers() == []  # nothing recorded

    first, second = (in_group(nova, group, f"m-{i}").json()["server"]["id"] for i in range(2))
    refused(in_group(nova, group, "m-2"), 403, "too many servers in group")
    shown = nova.http.get(f"/v2.1/os-server-groups/{group}").json()["server_group"]
    assert sorted(shown["members"]) == sorted([first, second])
    assert absolute_limits(nova)["maxServerGroupMembers"] == 2

    nova.wait_status(first, "ACTIVE")
    nova.delete_and_wait(first)  # a deleted server leaves its group: its place is free again
    third = in_group(nova, group, "m-3")
    assert third.status_code == 202, third.text
    members = nova.http.get(f"/v2.1/os-server-groups/{group}").json()["server_group"]["members"]
    assert sorted(members) == sorted([second, third.json()["server"]["id"]])
    for server_id in members:
        nova.delete(server_id)
    for server_id in members:
        nova.wait_status(server_id, "GONE")


def test_another_projects_limits_are_an_admins(nova: NovaClient) -> None:
    other = f"{nova.project}-other"
    refused(
        nova.http.get(f"/v2.1/limits?tenant_id={other}"),
        403,
        "os_compute_api:limits:other_project",
    )
    assert nova.http.get(f"/v2.1/limits?tenant_id={nova.project}").status_code == 200
    nova.admin.put(f"/v2.1/os-quota-sets/{other}", json={"quota_set": {"server_groups": 7}})
    shown = nova.admin.get(f"/v2.1/limits?tenant_id={other}").json()["limits"]["absolute"]
    assert shown["maxServerGroups"] == 7
