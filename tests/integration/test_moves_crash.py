"""Crash safety of resize, confirm and rebuild: kill -9 the worker inside a step (held there by
fault injection), restart it, and the operation completes with nothing left on either host.
A killed worker is restarted in a `finally`, so one failure does not cascade."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypervisor.faults import clear_faults, is_holding, set_fault
from tests.integration.client import NovaClient, wait_until
from tests.integration.test_moves import act, claims, host_of, settled, where_defined, where_disks
from workers.devstack import Stack


def holder(stack: Stack, step: str) -> str | None:
    """The host whose compute worker is held inside `step`, if one is."""
    return next(
        (h.name for h in stack.hosts if is_holding(stack.host_state_dir(h.name), step)), None
    )


@contextmanager
def killed_inside(stack: Stack, step: str, state_dirs: list[Path]) -> Iterator[None]:
    """Hold `step` in the workers of `state_dirs`; the block starts the operation and kills the
    worker held there; afterwards the hold is released and every worker is running again."""
    for directory in state_dirs:
        set_fault(directory, step, "hold")
    try:
        yield
    finally:
        for directory in state_dirs:
            clear_faults(directory, step)
        stack.ensure_running()


def test_destination_worker_killed_inside_the_disk_copy(
    nova: NovaClient, stack: Stack, server: str
) -> None:
    source = host_of(nova, server)
    with killed_inside(stack, "receive_disk", [stack.host_state_dir(h.name) for h in stack.hosts]):
        act(nova, server, {"resize": {"flavorRef": "2"}})
        dest = wait_until(lambda: holder(stack, "receive_disk"), "the copy to start")
        stack.kill(f"compute-{dest}")
    shown = settled(nova, server, "VERIFY_RESIZE", timeout=90)
    assert shown["OS-EXT-SRV-ATTR:host"] == dest != source
    act(nova, server, {"confirmResize": None})
    settled(nova, server, "ACTIVE")
    assert where_defined(stack, server) == {dest} == where_disks(stack, server)
    assert list(claims(stack, server).values()) == [dest]


def test_control_worker_killed_while_it_claims_a_destination(
    nova: NovaClient, stack: Stack, server: str
) -> None:
    source, held = host_of(nova, server), claims(stack, server)
    with killed_inside(stack, "claim_destination", [stack.control_state_dir]):
        act(nova, server, {"resize": {"flavorRef": "2"}})
        wait_until(
            lambda: is_holding(stack.control_state_dir, "claim_destination"), "the claim step"
        )
        stack.kill("control")
    settled(nova, server, "VERIFY_RESIZE", timeout=90)
    act(nova, server, {"revertResize": None})
    shown = settled(nova, server, "ACTIVE", timeout=60)
    assert shown["OS-EXT-SRV-ATTR:host"] == source and shown["flavor"]["id"] == "1"
    assert claims(stack, server) == held
    assert where_defined(stack, server) == {source} == where_disks(stack, server)


def test_source_worker_killed_while_a_confirm_cleans_it(
    nova: NovaClient, stack: Stack, server: str
) -> None:
    source = host_of(nova, server)
    act(nova, server, {"resize": {"flavorRef": "2"}})
    dest = settled(nova, server, "VERIFY_RESIZE")["OS-EXT-SRV-ATTR:host"]
    with killed_inside(stack, "undefine", [stack.host_state_dir(source)]):
        act(nova, server, {"confirmResize": None})
        wait_until(lambda: holder(stack, "undefine") == source, "the source's clean-up")
        stack.kill(f"compute-{source}")
    settled(nova, server, "ACTIVE", timeout=90)
    assert where_defined(stack, server) == {dest} == where_disks(stack, server)
    assert list(claims(stack, server).values()) == [dest]


def test_compute_worker_killed_inside_a_rebuild(
    nova: NovaClient, stack: Stack, server: str
) -> None:
    host = host_of(nova, server)
    with killed_inside(stack, "define", [stack.host_state_dir(host)]):
        response = nova.server_action(
            server, {"rebuild": {"imageRef": nova.show(server)["image"]["id"]}}
        )
        assert response.status_code == 202, response.text
        wait_until(lambda: holder(stack, "define") == host, "the rebuild's define")
        stack.kill(f"compute-{host}")
    shown = settled(nova, server, "ACTIVE", timeout=90)
    assert shown["OS-EXT-SRV-ATTR:host"] == host
    assert where_defined(stack, server) == {host} == where_disks(stack, server)


def test_destination_worker_killed_while_a_revert_cleans_it(
    nova: NovaClient, stack: Stack, server: str
) -> None:
    source, held = host_of(nova, server), claims(stack, server)
    act(nova, server, {"migrate": None}, admin=True)
    dest = settled(nova, server, "VERIFY_RESIZE")["OS-EXT-SRV-ATTR:host"]
    with killed_inside(stack, "undefine", [stack.host_state_dir(dest)]):
        act(nova, server, {"revertResize": None})
        wait_until(lambda: holder(stack, "undefine") == dest, "the destination's clean-up")
        stack.kill(f"compute-{dest}")
    shown = settled(nova, server, "ACTIVE", timeout=90)
    assert shown["OS-EXT-SRV-ATTR:host"] == source
    assert claims(stack, server) == held
    assert where_defined(stack, server) == {source} == where_disks(stack, server)


def test_control_worker_killed_as_a_migration_finishes(
    nova: NovaClient, stack: Stack, server: str
) -> None:
    source = host_of(nova, server)
    with killed_inside(stack, "finish_move", [stack.control_state_dir]):
        act(nova, server, {"migrate": None}, admin=True)
        wait_until(lambda: is_holding(stack.control_state_dir, "finish_move"), "finish_move")
        stack.kill("control")
    dest = settled(nova, server, "VERIFY_RESIZE", timeout=90)["OS-EXT-SRV-ATTR:host"]
    assert dest != source
    act(nova, server, {"confirmResize": None})
    settled(nova, server, "ACTIVE")
    assert where_defined(stack, server) == {dest} == where_disks(stack, server)
    assert list(claims(stack, server).values()) == [dest]
