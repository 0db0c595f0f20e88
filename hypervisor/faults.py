"""Fault injection for tests and drills; inert unless faults.json exists.

A FaultInjector sits at the hypervisor boundary: LibvirtHost calls `check(step)` at the top of
prepare_disk, define, start, undefine, ..., so tests can stop a step and kill -9 the worker
while it runs. What happens is read from `STATE_DIR/faults.json`
on every call (re-parsed only when the file changes), e.g.

    {"define": {"mode": "fail", "message": "injected: define failed"},
     "start": {"mode": "hold"}}

Modes:
  fail       raise HostFailure(message): the host cannot build, the caller reschedules
  transient  raise HypervisorError(message): the caller retries on the same host
  hold       block while the entry stays in the file (polling every 50 ms and calling on_wait,
             so an activity keeps heartbeating), then re-evaluate: gone -> proceed

Every activity, on either kind of worker, also has two positions of its own, checked by the
workers' StepFaults interceptor (workers/step_faults.py) around the activity's body:
`<activity>:before` and `<activity>:after` (the body returned: its transaction committed, its
libvirt calls returned; Temporal not yet told). The crash matrix holds them
(tests/integration/test_crash_matrix.py); they are the control worker's only positions.

A fault may be scoped to one server: the key `<step>@<scope>` applies only to a step working for
that server, named by its id or its name (`set_fault(..., scope=...)`), so many tests can hold
the same step for servers of their own at once.

Use set_fault() / clear_faults() to edit the file (atomically) from tests or drill scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from hypervisor.errors import HostFailure, HypervisorError

log = logging.getLogger(__name__)

FAULTS_FILE = "faults.json"
FAULT_STEPS = (
    # at the hypervisor boundary (compute workers)
    "prepare_disk",
    "define",
    "start",
    "undefine",
    "power",  # every power action (stop, start, reboot, pause, suspend, ...)
    "receive_disk",  # a resize's or migration's disk, on its destination
    "fetch_image",  # an image's copy into a host's cache
)
BEFORE, AFTER = ":before", ":after"  # around every activity (workers/step_faults.py)
FAULT_MODES = ("fail", "transient", "hold")
SCOPE = "@"


def around(activity_name: str, position: str) -> str:
    """An activity's own fault position: `position` is BEFORE or AFTER."""
    if position not in (BEFORE, AFTER):
        raise ValueError(f"position: must be {BEFORE!r} or {AFTER!r} (got {position!r})")
    return f"{activity_name}{position}"


def is_known_step(step: str) -> bool:
    if step in FAULT_STEPS:
        return True
    name, _, position = step.rpartition(":")
    return name.isidentifier() and f":{position}" in (BEFORE, AFTER)


def fault_key(step: str, scope: str | None = None) -> str:
    return step if scope is None else f"{step}{SCOPE}{scope}"


HOLD_POLL_SECONDS = 0.05


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so readers see the old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class FaultInjector:
    """Fault injection for tests and drills; inert unless faults.json exists."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / FAULTS_FILE
        self._lock = threading.Lock()
        self._cache_key: tuple[int, int, int] | None = None
        self._cache: dict[str, dict[str, Any]] = {}

    def faults(self) -> dict[str, dict[str, Any]]:
        """The current faults by step ({} when the file is absent or unreadable)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}
        # os.replace gives every write a new inode, so this key changes on every update.
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key == self._cache_key:
                return self._cache
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable fault file %s: %s", self.path, exc)
            data = {}
        if not isinstance(data, dict):
            log.warning("ignoring fault file %s: not a JSON object", self.path)
            data = {}
        parsed = {step: entry for step, entry in data.items() if isinstance(entry, dict)}
        with self._lock:
            self._cache_key, self._cache = key, parsed
        return parsed

    def scoped(self, step: str) -> bool:
        """Whether a fault scoped to some server is armed for `step`."""
        prefix = fault_key(step, "")
        return any(key.startswith(prefix) for key in self.faults())

    def _applicable(self, step: str, scopes: Iterable[str]) -> tuple[str, dict[str, Any]] | None:
        """The fault entry that applies to `step` (its key and entry): one scoped to a server
        the step works for (`scopes`: its id and name), else an unscoped one."""
        faults = self.faults()
        for scope in sorted(scopes):
            entry = faults.get(fault_key(step, scope))
            if entry is not None:
                return fault_key(step, scope), entry
        entry = faults.get(step)
        return (step, entry) if entry is not None else None

    def _holds(self, step: str, scopes: Iterable[str], markers: set[Path]) -> bool:
        """One look at the fault for `step`: raises for `fail` and `transient`; True while a
        hold lasts (its marker touched, so a drill can wait until a worker is really inside
        the step, and remembered in `markers` for the caller to remove)."""
        found = self._applicable(step, scopes)
        if found is None:
            return False
        key, entry = found
        mode = entry.get("mode")
        message = str(entry.get("message") or f"injected: {step} {mode}")
        if mode == "fail":
            raise HostFailure(message)
        if mode == "transient":
            raise HypervisorError(message)
        if mode != "hold":
            log.warning("ignoring unknown fault mode %r for step %r", mode, step)
            return False
        marker = holding_marker(self.path.parent, key)
        marker.touch()
        markers.add(marker)
        return True

    def check(
        self,
        step: str,
        on_wait: Callable[[], None] | None = None,
        scopes: Iterable[str] = (),
    ) -> None:
        """Apply the fault configured for `step`, if any (see the module docstring)."""
        markers: set[Path] = set()
        try:
            while self._holds(step, scopes, markers):
                if on_wait is not None:
                    on_wait()
                time.sleep(HOLD_POLL_SECONDS)
        finally:
            _remove(markers)

    async def check_async(
        self,
        step: str,
        on_wait: Callable[[], None] | None = None,
        scopes: Iterable[str] = (),
    ) -> None:
        """`check` for an event loop: a hold waits without blocking the loop."""
        markers: set[Path] = set()
        try:
            while self._holds(step, scopes, markers):
                if on_wait is not None:
                    on_wait()
                await asyncio.sleep(HOLD_POLL_SECONDS)
        finally:
            _remove(markers)


def _remove(markers: set[Path]) -> None:
    for marker in markers:
        marker.unlink(missing_ok=True)


def holding_marker(state_dir: Path, key: str) -> Path:
    """A file that exists while a worker is held by the fault `key` (a step, or a step scoped
    to a server): left behind if it is killed there, clear_faults removes it."""
    return Path(state_dir) / f"holding.{key}"


def is_holding(state_dir: Path, step: str, scope: str | None = None) -> bool:
    return holding_marker(state_dir, fault_key(step, scope)).exists()


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def _editing(path: Path) -> Iterator[None]:
    """One edit of the fault file at a time (tests arm faults from many threads): a lock file
    beside it, so no edit is lost to another's read-modify-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def set_fault(
    state_dir: Path, step: str, mode: str, message: str | None = None, scope: str | None = None
) -> None:
    """Arm a fault for `step` (tests and drills only); `scope`: only for that server (its id or
    name)."""
    if not is_known_step(step):
        raise ValueError(
            f"step: must be one of {FAULT_STEPS}, or an activity + {BEFORE!r} or {AFTER!r} "
            f"(got {step!r})"
        )
    if mode not in FAULT_MODES:
        raise ValueError(f"mode: must be one of {FAULT_MODES} (got {mode!r})")
    path = Path(state_dir) / FAULTS_FILE
    entry: dict[str, str] = {"mode": mode}
    if message is not None:
        entry["message"] = message
    with _editing(path):
        faults = _read(path)
        faults[fault_key(step, scope)] = entry
        write_atomic(path, json.dumps(faults, indent=2, sort_keys=True) + "\n")


def clear_faults(state_dir: Path, step: str | None = None, scope: str | None = None) -> None:
    """Disarm the fault for `step` (scoped to `scope`, if given), or all faults (removing
    faults.json) when step is None."""
    path = Path(state_dir) / FAULTS_FILE
    if step is None:
        path.unlink(missing_ok=True)
        for marker in Path(state_dir).glob("holding.*"):  # of workers killed while held
            marker.unlink(missing_ok=True)
        return
    key = fault_key(step, scope)
    holding_marker(state_dir, key).unlink(missing_ok=True)
    with _editing(path):
        faults = _read(path)
        if faults.pop(key, None) is not None:
            write_atomic(path, json.dumps(faults, indent=2, sort_keys=True) + "\n")
