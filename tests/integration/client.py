"""A small HTTP client for the compute API, with waits on conditions (never bare sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from novaflow.seed import IMAGES, PRIVATE_NETWORK_ID

T = TypeVar("T")
# From 2.21 Nova shows a deleted server's instance actions (404 before); the bodies are 2.1's.
AT_2_21 = {"OpenStack-API-Version": "compute 2.21"}
CIRROS = IMAGES[0].id
ARM_IMAGE = IMAGES[2].id


def wait_until(check: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class NovaClient:
    def __init__(self, base_url: str, user: str, project: str) -> None:
        self.project = project
        self.user = user
        self.http = httpx.Client(
            base_url=base_url, timeout=60, headers={"X-Auth-Token": f"{user}:{project}"}
        )
        self.admin = httpx.Client(
            base_url=base_url, timeout=60, headers={"X-Auth-Token": f"admin:{project}"}
        )

    def close(self) -> None:
        self.http.close()
        self.admin.close()

    def as_user(self, user: str) -> NovaClient:
        """Another user in the same project (keypairs belong to users, not projects)."""
        return NovaClient(str(self.http.base_url), user=user, project=self.project)

    def create_keypair(
        self, name: str, public_key: str | None = None, **extra: Any
    ) -> httpx.Response:
        keypair: dict[str, Any] = {"name": name, **extra}
        if public_key is not None:
            keypair["public_key"] = public_key
        return self.http.post("/v2.1/os-keypairs", json={"keypair": keypair})

    def keypair_names(self) -> list[str]:
        response = self.http.get("/v2.1/os-keypairs")
        assert response.status_code == 200, response.text
        return [entry["keypair"]["name"] for entry in response.json()["keypairs"]]

    def server_body(
        self,
        name: str = "vm",
        flavor: str = "1",
        image: str = CIRROS,
        networks: Any = None,
        **extra: Any,
    ) -> dict[str, Any]:
        server: dict[str, Any] = {
            "name": name,
            "flavorRef": flavor,
            "imageRef": image,
            "networks": networks if networks is not None else [{"uuid": PRIVATE_NETWORK_ID}],
        }
        server.update(extra)
        return {"server": server}

    def create(self, **kwargs: Any) -> httpx.Response:
        return self.http.post("/v2.1/servers", json=self.server_body(**kwargs))

    def create_ok(self, **kwargs: Any) -> str:
        response = self.create(**kwargs)
        assert response.status_code == 202, response.text
        return str(response.json()["server"]["id"])

    def show(self, server_id: str, admin: bool = True) -> dict[str, Any]:
        """The server's body, with novaflow's extension fields (lock, embedded flavor) from
        GET /v2.1/os-novaflow-servers/{id} merged in."""
        client = self.admin if admin else self.http
        response = client.get(f"/v2.1/servers/{server_id}")
        assert response.status_code == 200, response.text
        extension = client.get(f"/v2.1/os-novaflow-servers/{server_id}")
        assert extension.status_code == 200, extension.text
        return {**response.json()["server"], **extension.json()["server"]}

    def status(self, server_id: str) -> str | None:
        response = self.admin.get(f"/v2.1/servers/{server_id}")
        if response.status_code == 404:
            return "GONE"
        return str(response.json()["server"]["status"])

    def wait_status(self, server_id: str, wanted: str, timeout: float = 60.0) -> dict[str, Any]:
        def reached() -> str | None:
            status = self.status(server_id)
            if status == "ERROR" and wanted == "ACTIVE":
                raise AssertionError(f"{server_id} went to ERROR: {self.show(server_id)}")
            return status if status == wanted else None

        wait_until(reached, f"server {server_id} to be {wanted}", timeout)
        return self.show(server_id) if wanted != "GONE" else {}

    def delete(self, server_id: str) -> None:
        response = self.http.delete(f"/v2.1/servers/{server_id}")
        assert response.status_code == 204, response.text

    def delete_and_wait(self, server_id: str, timeout: float = 60.0) -> None:
        self.delete(server_id)
        self.wait_status(server_id, "GONE", timeout)

    def usage(self) -> dict[str, int]:
        absolute = self.http.get("/v2.1/limits").json()["limits"]["absolute"]
        # Ports are novaflow's quota, not Nova's: only its extension shows their use.
        extension = self.http.get(f"/v2.1/os-novaflow-quota-sets/{self.project}/detail")
        assert extension.status_code == 200, extension.text
        return {
            "instances": absolute["totalInstancesUsed"],
            "cores": absolute["totalCoresUsed"],
            "ram": absolute["totalRAMUsed"],
            "ports": extension.json()["quota_set"]["ports"]["in_use"],
            "floating_ips": absolute["totalFloatingIpsUsed"],
        }

    def set_quota(self, **limits: int) -> None:
        response = self.admin.put(f"/v2.1/os-quota-sets/{self.project}", json={"quota_set": limits})
        assert response.status_code == 200, response.text

    def hypervisors(self) -> dict[str, dict[str, Any]]:
        rows = self.admin.get("/v2.1/os-hypervisors/detail").json()["hypervisors"]
        return {row["hypervisor_hostname"]: row for row in rows}

    def servers(self) -> list[dict[str, Any]]:
        return list(self.http.get("/v2.1/servers/detail").json()["servers"])

    def actions(self, server_id: str) -> list[dict[str, Any]]:
        """The server's actions, as an admin sees them at 2.21 (a deleted server's too)."""
        response = self.admin.get(f"/v2.1/servers/{server_id}/os-instance-actions", headers=AT_2_21)
        return list(response.json()["instanceActions"])

    def actions_after_delete(self, server_id: str) -> list[dict[str, Any]]:
        """A deleted server's actions stay readable for an admin, like Nova's."""
        return self.actions(server_id)

    def action(self, server_id: str, request_id: str) -> dict[str, Any]:
        """The action (as an admin sees it), with its workflow_id from novaflow's extension."""
        path = f"/v2.1/servers/{server_id}/os-instance-actions/{request_id}"
        shown = self.admin.get(path, headers=AT_2_21)
        extension = self.admin.get(f"/v2.1/os-novaflow-servers/{server_id}/actions/{request_id}")
        assert extension.status_code == 200, extension.text
        return {**shown.json()["instanceAction"], **extension.json()["instanceAction"]}

    def rename(self, server_id: str, name: str) -> httpx.Response:
        return self.http.put(f"/v2.1/servers/{server_id}", json={"server": {"name": name}})

    def metadata(self, server_id: str) -> dict[str, str]:
        response = self.http.get(f"/v2.1/servers/{server_id}/metadata")
        assert response.status_code == 200, response.text
        return dict(response.json()["metadata"])

    def server_action(
        self, server_id: str, body: Any, admin: bool = False, version: str | None = None
    ) -> httpx.Response:
        """POST /servers/{id}/action with `body` as it is (any JSON value), at `version`
        (default: none asked for, 2.1)."""
        client = self.admin if admin else self.http
        headers = {"OpenStack-API-Version": f"compute {version}"} if version else {}
        return client.post(f"/v2.1/servers/{server_id}/action", json=body, headers=headers)

    def console_output(self, server_id: str, length: int | None = None) -> str:
        args = {} if length is None else {"length": length}
        response = self.server_action(server_id, {"os-getConsoleOutput": args})
        assert response.status_code == 200, response.text
        return str(response.json()["output"])


# Nova's error body: {"<title>": {"code": <status>, "message": "..."}}
TITLES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
}


def refused(response: httpx.Response, status: int, *names: str) -> str:
    """The response is `status` with Nova's error body, whose message names every one of
    `names`. Returns the message."""
    assert response.status_code != 500, response.text
    assert response.status_code == status, response.text
    body = response.json()
    title = TITLES[status]
    assert list(body) == [title], body
    assert body[title]["code"] == status, body
    message = body[title]["message"]
    assert isinstance(message, str) and message, body
    for name in names:
        assert name in message, f"{name!r} not named in {message!r}"
    return message
