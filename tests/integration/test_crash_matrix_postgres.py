"""The crash matrix on PostgreSQL: every step once, at alternating positions (the whole matrix
runs on SQLite in test_crash_matrix.py), on a stack of its own whose database is PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dbs import POSTGRES_URL, fresh_database
from tests.integration.crash_matrix import POSITIONS, Case, cases
from tests.integration.test_crash_matrix import Waves, selected_in
from tests.stacks import running_stack
from workers.devstack import Stack


def every_step_once() -> list[Case]:
    chosen: dict[str, Case] = {}
    for case in cases():
        position = list(POSITIONS)[len(chosen) % len(POSITIONS)]
        if case.step not in chosen and case.position == position:
            chosen[case.step] = case
    return list(chosen.values())


CASES = every_step_once()


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured (NOVAFLOW_TEST_POSTGRES_URL)")
    fresh_database("postgres", Path(tmp_path_factory.mktemp("pg"))).dispose()
    with running_stack(tmp_path_factory.mktemp("pgstack"), database_url=POSTGRES_URL) as stack:
        yield stack


@pytest.fixture(scope="module")
def waves(pg_stack: Stack, request: pytest.FixtureRequest) -> Waves:
    return Waves(pg_stack, CASES, selected_in(request))


@pytest.mark.postgres
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_killed_inside_a_step_on_postgres(case: Case, waves: Waves) -> None:
    run = waves.outcome(case)
    if run.error is not None:
        raise run.error
