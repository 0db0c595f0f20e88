"""The crash matrix on PostgreSQL: every step once, at alternating positions (the whole matrix
runs on SQLite in test_crash_matrix.py), on a stack of its own whose database is PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import make_url, text

from hypervisor.faults import BEFORE, around, clear_faults, is_holding, set_fault
from novaflow.db import make_engine
from tests.dbs import POSTGRES_URL
from tests.integration.client import NovaClient, wait_until
from tests.integration.crash_matrix import POSITIONS, Case, cases
from tests.integration.leaks import leaks
from tests.integration.test_crash_matrix import Waves, selected_in
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
def waves(pg_stack: Stack, request: pytest.FixtureRequest) -> Waves:
    return Waves(pg_stack, CASES, selected_in(request))


@pytest.mark.postgres
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_killed_inside_a_step_on_postgres(case: Case, waves: Waves) -> None:
    run = waves.outcome(case)
    if run.error is not None:
        raise run.error


@pytest.mark.postgres
def test_postgres_refusing_connections_while_a_create_finishes(pg_stack: Stack) -> None:
    """The stack's database refuses every connection (its open ones are cut) as a create
    records its end: the step fails to connect and is retried; once PostgreSQL takes
    connections again the create ends ACTIVE, its end recorded once, nothing leaked."""
    nova = NovaClient(pg_stack.api_url, user="u-pg-refusing", project="p-pg-refusing")
    name, control = "pg-refusing", pg_stack.control_state_dir
    step = around("finish_create", BEFORE)
    database = make_url(str(pg_stack.database_url)).database
    set_fault(control, step, "hold", scope=name)
    try:
        server_id = nova.create_ok(name=name)
        wait_until(lambda: is_holding(control, step, scope=name), "the create about to finish")
        offset = pg_stack.log_size("control")
        # Connected to another database, the one that refuses is turned back on afterwards.
        other = make_url(str(POSTGRES_URL)).set(database="postgres")
        admin = make_engine(other.render_as_string(hide_password=False)).execution_options(
            isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            )
        try:
            clear_faults(control, step, scope=name)
            wait_until(
                lambda: (
                    "accepting connections" in pg_stack.log_path("control").read_text()[offset:]
                ),
                "the step refused by the database",
            )
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
            admin.dispose()
    finally:
        clear_faults(control, step, scope=name)
        pg_stack.ensure_running()
    server = nova.wait_status(server_id, "ACTIVE", timeout=90)
    [create] = nova.actions(server_id)
    events = [e["event"] for e in nova.action(server_id, create["request_id"])["events"]]
    assert events.count("finish_create") == 1, events
    assert server["OS-EXT-SRV-ATTR:host"]
    nova.delete_and_wait(server_id)
    assert leaks(pg_stack, [server_id]) == {}
    nova.close()
