"""Session-wide test plumbing.

The Temporal SDK can crash the interpreter at exit after workers or clients ran
(temporalio/sdk-python#300: 'Fatal Python error: PyGILState_Release'). The suite's exit code
must not depend on that luck, so once pytest has printed its summary the process ends with
os._exit(<pytest's own status>).
"""

from __future__ import annotations

import os
import sys

import pytest

_status: dict[str, int] = {}

# Test files that must not run beside each other (pytest-xdist): the real tiers share the
# machine's libvirt, QEMU and the bridge of two-hosts.sh.
SHARED_GROUPS = {"tests/real/": "real"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `-n N --dist loadgroup` each test file runs whole on one worker (its module
    fixtures, e.g. the crash matrix's waves, are made once), and the files that share a
    resource run on the same one."""
    for item in items:
        path = item.nodeid.split("::")[0]
        group = next((g for prefix, g in SHARED_GROUPS.items() if path.startswith(prefix)), path)
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _status["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if "code" in _status and os.environ.get("NOVAFLOW_TEST_NO_HARD_EXIT") != "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_status["code"])
