"""Servers through the API, as any client sees them: list, show, and the actions (202, then
followed until the server's task is over)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from cli.config import CliError, Endpoints

# What the CLI's verbs send (Nova's action bodies).
ACTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "stop": lambda: {"os-stop": None},
    "start": lambda: {"os-start": None},
    "reboot": lambda hard=False: {"reboot": {"type": "HARD" if hard else "SOFT"}},
    "pause": lambda: {"pause": None},
    "unpause": lambda: {"unpause": None},
    "suspend": lambda: {"suspend": None},
    "resume": lambda: {"resume": None},
    "lock": lambda reason=None: {"lock": {"locked_reason": reason} if reason else None},
    "unlock": lambda: {"unlock": None},
    "resize": lambda flavor: {"resize": {"flavorRef": flavor}},
    "migrate": lambda host=None: {"migrate": {"host": host} if host else None},
    "confirm": lambda: {"confirmResize": None},
    "revert": lambda: {"revertResize": None},
}
# The compute microversion a verb is sent in, when its body needs a later one than 2.1 (the
# target host of a migrate is Nova 2.56's).
ACTION_VERSIONS = {"migrate": "2.56"}


class ServersAPI:
    def __init__(self, where: Endpoints) -> None:
        self.http = httpx.Client(
            base_url=where.api_url + "/v2.1",
            headers={"X-Auth-Token": where.token},
            timeout=60,
        )
        self.where = where

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise CliError(f"cannot reach the API at {self.where.api_url}: {error}") from None
        if response.status_code >= 400:
            raise CliError(f"{response.status_code}: {api_message(response)}")
        return response

    def list(self, all_projects: bool = False) -> list[dict[str, Any]]:
        """Nova's server details, with novaflow's extension fields (the lock, the embedded
        flavor: GET /v2.1/os-novaflow-servers) merged in."""
        params = {"all_tenants": "true"} if all_projects else {}
        rows = self._call("GET", "/servers/detail", params=params).json()["servers"]
        extra = self._call("GET", "/os-novaflow-servers", params=params).json()["servers"]
        by_id = {row["id"]: row for row in extra}
        return [{**row, **by_id.get(row["id"], {})} for row in rows]

    def show(self, server_id: str) -> dict[str, Any]:
        extra = self._call("GET", f"/os-novaflow-servers/{server_id}").json()["server"]
        return {**self._server(server_id), **extra}

    def _server(self, server_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/servers/{server_id}").json()["server"])

    def act(self, server_id: str, verb: str, **arguments: Any) -> str:
        """Send the action; returns its request id (the instance action's)."""
        version = ACTION_VERSIONS.get(verb)
        headers = {"OpenStack-API-Version": f"compute {version}"} if version else {}
        body = ACTIONS[verb](**arguments)
        response = self._call("POST", f"/servers/{server_id}/action", json=body, headers=headers)
        return response.headers.get("x-openstack-request-id", "")

    def follow(
        self,
        server_id: str,
        on_change: Callable[[dict[str, Any]], None],
        timeout: float = 300.0,
    ) -> dict[str, Any]:
        """Poll the server until no task runs on it; `on_change` sees each new state."""
        deadline = time.monotonic() + timeout
        last: tuple[object, ...] | None = None
        while True:
            server = self._server(server_id)
            state = (server["status"], server.get("OS-EXT-STS:task_state"))
            if state != last:
                on_change(server)
                last = state
            if server.get("OS-EXT-STS:task_state") is None:
                return server
            if time.monotonic() > deadline:
                raise CliError(f"{server_id} still in task {state[1]} after {timeout:.0f} s")
            time.sleep(0.2)


def api_message(response: httpx.Response) -> str:
    """Nova's error body {"<title>": {"code": N, "message": "..."}}, as one line."""
    try:
        body = response.json()
        [inner] = body.values()
        return str(inner["message"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return response.text[:200] or response.reason_phrase
