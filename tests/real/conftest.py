"""The real-VM tier: the whole stack with ONE compute worker, on a real libvirt daemon
(qemu:///system, QEMU under TCG) that scripts/real-hypervisor.sh installs and starts, and an
image that boots the tiny guest the script builds. The scheduler has no other host to pick.

The tier is skipped only when the script says this machine cannot run QEMU at all (exit 77);
any other failure of the set-up fails it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from novaflow.db import Database
from novaflow.models import Image
from tests.integration.client import NovaClient
from tests.real.hypervisor import (
    CANNOT_RUN_QEMU,
    SCRIPT,
    TWO_HOSTS_SCRIPT,
    Hypervisor,
    TwoHosts,
    remove_guests_left_by,
)
from tests.stacks import running_stack
from workers.devstack import RealHost, Stack


@pytest.fixture(scope="session")
def hypervisor() -> Iterator[Hypervisor]:
    """libvirtd + QEMU ready on this machine. Daemons this session started are stopped at
    its end; daemons that were already running are left alone."""
    result = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=900)
    if result.returncode == CANNOT_RUN_QEMU:
        pytest.skip(result.stderr.strip().splitlines()[-1])
    if result.returncode != 0:
        pytest.fail(f"{SCRIPT} failed ({result.returncode}):\n{result.stderr}", pytrace=False)
    hypervisor = Hypervisor.from_output(result.stdout)
    try:
        yield hypervisor
    finally:
        if hypervisor.started:
            subprocess.run([str(SCRIPT), "stop"], check=False, timeout=60)


@pytest.fixture(scope="module")
def real_host(hypervisor: Hypervisor) -> RealHost:
    # User-mode networking: the guest gets its NIC (with its port's MAC) without a bridge.
    return RealHost("qemu-real", uri=hypervisor.uri, pool=hypervisor.pool, nic_mode="user")


@pytest.fixture(scope="module")
def real_stack(real_host: RealHost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("real"), hosts=(real_host,)) as stack:
        try:
            yield stack
        finally:
            remove_guests_left_by(stack, real_host)


@pytest.fixture(scope="module")
def guest_image(real_stack: Stack, hypervisor: Hypervisor) -> str:
    """An image that boots the script's kernel and initramfs straight from the host's files."""
    image = Image(
        name="novaflow-busybox",
        size=Path(hypervisor.initrd).stat().st_size,
        properties={
            "architecture": "x86_64",
            "kernel_path": hypervisor.kernel,
            "initrd_path": hypervisor.initrd,
        },
    )
    db = Database(str(real_stack.database_url))
    try:
        with db.write() as session:
            session.add(image)
    finally:
        db.dispose()
    return image.id


@pytest.fixture
def nova(real_stack: Stack) -> Iterator[NovaClient]:
    client = NovaClient(real_stack.api_url, user="alice", project="p-real")
    yield client
    client.close()


@pytest.fixture(scope="module")
def two_hosts(hypervisor: Hypervisor) -> Iterator[TwoHosts]:
    """Two libvirt daemons in network namespaces (scripts/two-hosts.sh), torn down at the end
    of the module whatever happened (and at the next start, if a killed run left them)."""
    result = subprocess.run(
        [str(TWO_HOSTS_SCRIPT), "start"], capture_output=True, text=True, timeout=300
    )
    if result.returncode == CANNOT_RUN_QEMU:
        pytest.skip(result.stderr.strip().splitlines()[-1])
    if result.returncode != 0:
        pytest.fail(f"{TWO_HOSTS_SCRIPT} failed ({result.returncode}):\n{result.stderr}")
    try:
        yield TwoHosts.from_output(result.stdout)
    finally:
        subprocess.run([str(TWO_HOSTS_SCRIPT), "stop"], check=False, timeout=120)
