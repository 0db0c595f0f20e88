"""python-openstackclient, unmodified, through its real command line against the real stack: a
clouds.yaml as the README gives it (admin_token under noauth; the image, network and identity
endpoints overridden to novaflow's own), `-f json` answers read back.

The CLI takes 1-2 s to start, so the test runs few commands, and those that do not depend on
the server run at the same time as its create.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tests.integration.client import NovaClient
from tests.integration.leaks import leaks
from workers.devstack import DEFAULT_HOSTS, Stack

OPENSTACK = Path(sys.executable).parent / "openstack"

CLOUDS_YAML = """\
clouds:
  novaflow:
    auth_type: admin_token
    auth:
      token: {token}
      endpoint: {api}/v2.1
    identity_endpoint_override: {api}/identity
    image_endpoint_override: {api}/image
    network_endpoint_override: {api}/network
"""


def cli_env(stack: Stack, tmp_path: Path, token: str) -> dict[str, str]:
    """The caller's environment without its own OS_* settings, pointed at a clouds.yaml of
    its own."""
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(CLOUDS_YAML.format(token=token, api=stack.api_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    return {**env, "OS_CLIENT_CONFIG_FILE": str(clouds), "OS_CLOUD": "novaflow"}


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(OPENSTACK), *args], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def finish(command: subprocess.Popen[str]) -> str:
    out, err = command.communicate(timeout=120)
    assert command.returncode == 0, f"{command.args!r}: {out}{err}"
    return out


def run(env: dict[str, str], *args: str) -> Any:
    """One command's `-f json` answer."""
    return json.loads(finish(start(env, *args, "-f", "json")))


def flavor_name(server: dict[str, Any]) -> str:
    """The CLI shows "name (id)" below microversion 2.47, the embedded flavor from it."""
    flavor = server["flavor"]
    return str(flavor["original_name"] if isinstance(flavor, dict) else flavor.split(" (")[0])


def test_the_openstack_cli_builds_lists_and_deletes_a_server(
    nova: NovaClient, stack: Stack, tmp_path: Path
) -> None:
    env = cli_env(stack, tmp_path, token=f"admin:{nova.project}")
    name, key = f"osc-{uuid.uuid4().hex[:8]}", f"osc-key-{uuid.uuid4().hex[:8]}"

    # The create resolves --image through the image service and --network through the
    # network service (their lookups by name), then waits for ACTIVE.
    create = start(
        env, "server", "create", "--image", "cirros-0.6.2", "--flavor", "m1.tiny",
        "--network", "private", "--wait", "-f", "json", name,
    )  # fmt: skip
    others = {
        "flavors": start(env, "flavor", "list", "-f", "json"),
        "hypervisors": start(env, "hypervisor", "list", "-f", "json"),
        "services": start(env, "compute", "service", "list", "-f", "json"),
        "keypair": start(env, "keypair", "create", key),
    }
    server = json.loads(finish(create))
    server_id = server["id"]
    assert server["status"] == "ACTIVE" and server["name"] == name
    assert server["image"].startswith("cirros-0.6.2 (") and flavor_name(server) == "m1.tiny"
    assert len(server["addresses"]["private"]) == 1  # an address on the network named

    try:
        flavors = json.loads(finish(others["flavors"]))
        assert {"m1.tiny", "m1.small", "m1.medium", "m1.large"} <= {f["Name"] for f in flavors}
        hypervisors = json.loads(finish(others["hypervisors"]))
        assert {h.name for h in DEFAULT_HOSTS} <= {h["Hypervisor Hostname"] for h in hypervisors}
        services = json.loads(finish(others["services"]))
        assert {h.name for h in DEFAULT_HOSTS} <= {
            s["Host"] for s in services if s["Binary"] == "nova-compute"
        }

        # The private key is printed by the create, once: the API keeps only the public one.
        private_key = finish(others["keypair"])
        assert private_key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----"), private_key
        kept = nova.admin.get(f"/v2.1/os-keypairs/{key}")
        assert kept.status_code == 200 and "private_key" not in kept.json()["keypair"], kept.text
        assert nova.admin.delete(f"/v2.1/os-keypairs/{key}").status_code == 202

        listed = {s["ID"]: s for s in run(env, "server", "list")}
        assert listed[server_id]["Status"] == "ACTIVE"
        assert listed[server_id]["Networks"] == server["addresses"]
        shown = run(env, "server", "show", name)
        assert shown["id"] == server_id and shown["addresses"] == server["addresses"]

        # A cold migration (through the API: the CLI's own waits are slow) for the list to show.
        moved = nova.admin.post(f"/v2.1/servers/{server_id}/action", json={"migrate": None})
        assert moved.status_code == 202, moved.text
        nova.wait_status(server_id, "VERIFY_RESIZE")
        [migration] = run(env, "server", "migration", "list", "--server", server_id)
        assert migration["Server UUID"] == server_id and migration["Status"] == "finished"
        assert migration["Source Compute"] == server["OS-EXT-SRV-ATTR:host"]
        assert migration["Dest Compute"] != migration["Source Compute"]

        # Deleted during VERIFY_RESIZE (confirmed first, as Nova): nothing left on either host.
        finish(start(env, "server", "delete", "--wait", server_id))
        assert nova.status(server_id) == "GONE"
        assert leaks(stack, [server_id]) == {}
    finally:  # a failure half-way leaves no command running nor server for the next test
        for command in others.values():
            if command.poll() is None:
                command.kill()
                command.communicate()
        if nova.status(server_id) != "GONE":
            nova.admin.delete(f"/v2.1/servers/{server_id}")
            nova.wait_status(server_id, "GONE")
