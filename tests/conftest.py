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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _status["code"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if "code" in _status and os.environ.get("NOVAFLOW_TEST_NO_HARD_EXIT") != "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_status["code"])
