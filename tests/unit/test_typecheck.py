"""The Temporal-facing layers type-check. A misspelled step or a wrong dataclass field in a
workflow does not fail at import: it fails the workflow task at run time, over and over, until
someone deploys a fix. mypy finds it before that."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_workflows_activities_and_workers_type_check() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "workflows",
            "activities",
            "workers",
            "cli",
            "api",
            "hypervisor",
            "--ignore-missing-imports",
            "--follow-imports=silent",
            "--no-error-summary",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
