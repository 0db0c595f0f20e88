"""The real hypervisor as the tests see it: what scripts/real-hypervisor.sh set up, and two
looks at the machine that do not go through novaflow (virsh, the process table)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from novaflow.virt.domain_xml import domain_name
from workers.devstack import REPO

SCRIPT = REPO / "scripts" / "real-hypervisor.sh"
CANNOT_RUN_QEMU = 77  # the script's exit status when this machine cannot run QEMU at all


@dataclass(frozen=True)
class Hypervisor:
    """What scripts/real-hypervisor.sh set up (its key=value output)."""

    uri: str
    pool: str
    kernel: str
    initrd: str
    marker: str  # what the guest's /init prints on its serial console once booted
    started: bool  # the script started the daemons (so they are stopped afterwards)

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
