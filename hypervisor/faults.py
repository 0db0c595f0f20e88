"""Fault injection for tests and drills; inert unless faults.json exists.

A FaultInjector sits at the hypervisor boundary: LibvirtHost calls `check(step)` at the top of
prepare_disk, define, start and undefine. The control-plane worker has one too, checked before
its database steps (schedule, allocate_network, ...), so tests can stop a step and kill -9 the
worker while it runs. What happens is read from `STATE_DIR/faults.json`
on every call (re-parsed only when the file changes), e.g.

    {"define": {"mode": "fail", "message": "injected: define failed"},
     "start": {"mode": "hold"}}

Modes:
  fail       raise HostFailure(message): the host cannot build, the caller reschedules
  transient  raise HypervisorError(message): the caller retries on the same host
  hold       block while the entry stays in the file (polling every 50 ms and calling on_wait,
             so an activity keeps heartbeating), then re-evaluate: gone -> proceed

Use set_fault() / clear_faults() to edit the file (atomically) from tests or drill scripts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
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
    # control-plane steps: the control worker's StepRecorder checks each before its
    # transaction, and `<step>:committed` right after the commit (see after_commit)
    "reserve_quota",  # (the create's first write: only its `:committed` position is held)
    "schedule",
    "allocate_network",
    "release_network",
    "finish_create",
    "claim_destination",
    "finish_move",
    "confirm_move",
    "revert_move",
)
CONTROL_STEPS = FAULT_STEPS[FAULT_STEPS.index("reserve_quota") :]
COMMITTED = ":committed"
FAULT_MODES = ("fail", "transient", "hold")


def after_commit(step: str) -> str:
    """The fault position right after a control step's transaction committed and before
    Temporal hears the step is done: a worker killed there proves the step idempotent (its
    retry finds its own write)."""
    return f"{step}{COMMITTED}"


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

    def check(self, step: str, on_wait: Callable[[], None] | None = None) -> None:
        """Apply the fault configured for `step`, if any (see the module docstring)."""
        marker = holding_marker(self.path.parent, step)
        try:
            while True:
                entry = self.faults().get(step)
                if entry is None:
                    return
                mode = entry.get("mode")
                message = str(entry.get("message") or f"injected: {step} {mode}")
                if mode == "fail":
                    raise HostFailure(message)
                if mode == "transient":
                    raise HypervisorError(message)
                if mode != "hold":
                    log.warning("ignoring unknown fault mode %r for step %r", mode, step)
                    return
                marker.touch()  # a drill can wait until a worker is really inside the step
                if on_wait is not None:
                    on_wait()
                time.sleep(HOLD_POLL_SECONDS)
        finally:
            marker.unlink(missing_ok=True)


def holding_marker(state_dir: Path, step: str) -> Path:
    """A file that exists while a worker is held inside `step` (left behind if it is killed
    there: clear_faults removes it)."""
    return Path(state_dir) / f"holding.{step}"


def is_holding(state_dir: Path, step: str) -> bool:
    return holding_marker(state_dir, step).exists()


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def set_fault(state_dir: Path, step: str, mode: str, message: str | None = None) -> None:
    """Arm a fault for `step` (tests and drills only)."""
    known = step in FAULT_STEPS or (
        step.endswith(COMMITTED) and step.removesuffix(COMMITTED) in CONTROL_STEPS
    )
    if not known:
        raise ValueError(
            f"step: must be one of {FAULT_STEPS}, or a control step + {COMMITTED!r} (got {step!r})"
        )
    if mode not in FAULT_MODES:
        raise ValueError(f"mode: must be one of {FAULT_MODES} (got {mode!r})")
    path = Path(state_dir) / FAULTS_FILE
    faults = _read(path)
    entry: dict[str, str] = {"mode": mode}
    if message is not None:
        entry["message"] = message
    faults[step] = entry
    write_atomic(path, json.dumps(faults, indent=2, sort_keys=True) + "\n")


def clear_faults(state_dir: Path, step: str | None = None) -> None:
    """Disarm the fault for `step`, or all faults (removing faults.json) when step is None."""
    path = Path(state_dir) / FAULTS_FILE
    if step is None:
        path.unlink(missing_ok=True)
        for marker in Path(state_dir).glob("holding.*"):  # of workers killed while held
            marker.unlink(missing_ok=True)
        return
    holding_marker(state_dir, step).unlink(missing_ok=True)
    faults = _read(path)
    if faults.pop(step, None) is not None:
        write_atomic(path, json.dumps(faults, indent=2, sort_keys=True) + "\n")
