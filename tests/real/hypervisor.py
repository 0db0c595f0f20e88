"""The real hypervisor as the tests see it: what scripts/real-hypervisor.sh set up, and two
looks at the machine that do not go through novaflow (virsh, the process table)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, fields
from pathlib import Path

from sqlmodel import select

from hypervisor.libvirt_host import LibvirtHost
from novaflow.db import Database
from novaflow.models import Server
from novaflow.virt.domain_xml import domain_name
from workers.devstack import REPO, RealHost, Stack

SCRIPT = REPO / "scripts" / "real-hypervisor.sh"
TWO_HOSTS_SCRIPT = REPO / "scripts" / "two-hosts.sh"
CANNOT_RUN_QEMU = 77  # the scripts' exit status when this machine cannot run QEMU at all


@dataclass(frozen=True)
class Hypervisor:
    """What scripts/real-hypervisor.sh set up (its key=value output)."""

    uri: str
    pool: str
    kernel: str
    initrd: str
    marker: str  # what the guest's /init prints on its serial console once booted
    started: bool  # the script started the daemons (so they are stopped afterwards)
    initrd2: str  # a second guest: the same, printing marker2 instead
    marker2: str

    @classmethod
    def from_output(cls, stdout: str) -> Hypervisor:
        facts = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
        return cls(
            uri=facts["uri"],
            pool=facts["pool"],
            kernel=facts["kernel"],
            initrd=facts["initrd"],
            marker=facts["marker"],
            started=bool(facts["started"].strip()),
            initrd2=facts["initrd2"],
            marker2=facts["marker2"],
        )

    def virsh(self, *args: str) -> list[str]:
        result = subprocess.run(
            ["virsh", "-q", "-c", self.uri, *args], capture_output=True, text=True, check=True
        )
        return result.stdout.split()


def qemu_processes(server_id: str) -> list[int]:
    """QEMU processes running this server's guest (libvirt names it on the command line)."""
    wanted = f"guest={domain_name(server_id)},".encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes()
        except OSError:  # ended meanwhile
            continue
        if b"qemu-system" in argv and wanted in argv:
            found.append(int(cmdline.parent.name))
    return found


@dataclass(frozen=True)
class TwoHosts:
    """What scripts/two-hosts.sh set up: two libvirt daemons in network namespaces."""

    uri_a: str
    uri_b: str
    pool: str
    dir_a: str  # each pool's directory, as seen from the root namespace
    dir_b: str
    pid_a: str  # each host's libvirtd: what `enter` joins
    pid_b: str
    bridge_ip: str  # this namespace's address, as the hosts reach it

    @classmethod
    def from_output(cls, stdout: str) -> TwoHosts:
        facts = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
        return cls(**{name.name: facts[name.name] for name in fields(cls)})

    def enter(self, host: str) -> tuple[str, ...]:
        """The command prefix that runs a command on host `a` or `b`: in its network, mount
        and UTS namespaces (its address, its /var/lib/libvirt, its host name)."""
        pid = self.pid_a if host == "a" else self.pid_b
        return ("nsenter", "-t", pid, "-n", "-m", "-u", f"--wd={REPO}")


def virsh(uri: str, *args: str) -> list[str]:
    result = subprocess.run(
        ["virsh", "-q", "-c", uri, *args], capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.split()


def remove_guests_left_by(stack: Stack, host: RealHost) -> None:
    """A test that failed half-way must not leave a guest running on the machine: remove the
    domain and disk of every server this stack's database knows (idempotent: what is gone
    already counts as done)."""
    db = Database(str(stack.database_url))
    try:
        with db.read() as session:
            server_ids = list(session.exec(select(Server.id)).all())
    finally:
        db.dispose()
    with LibvirtHost(host.uri, pool=host.pool) as driver:
        for server_id in server_ids:
            driver.undefine(server_id)
            driver.delete_disk(server_id)
