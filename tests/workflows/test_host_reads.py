"""ServerDiagnostics and ServerConsoleOutput: a short read on the server's host, through the
API's own start path, against stand-in activities."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.client import Client

from api import operations
from tests.workflows.standins import StandInActivities, run_workers
from workflows.contracts import ConsoleOutput, DomainDiagnostics


def test_diagnostics_are_read_on_the_servers_host(temporal_address: str) -> None:
    standins = StandInActivities()
    standins.on("describe_domain", lambda _, host: DomainDiagnostics(defined=True, vcpus=2))

    async def scenario(client: Client) -> DomainDiagnostics:
        return await operations.diagnostics(client, str(uuid.uuid4()), "host-b")

    info = asyncio.run(run_workers(temporal_address, standins, scenario))
    assert info.defined and info.vcpus == 2
    assert [c.host for c in standins.called("describe_domain")] == ["host-b"]


def test_console_output_is_read_on_the_servers_host(temporal_address: str) -> None:
    standins = StandInActivities()
    standins.on("read_console", lambda arg, _: ConsoleOutput(output=f"last {arg.length} lines"))

    async def scenario(client: Client) -> str:
        return await operations.console_output(client, str(uuid.uuid4()), "host-c", 5)

    assert asyncio.run(run_workers(temporal_address, standins, scenario)) == "last 5 lines"
    assert standins.called("read_console")[0].host == "host-c"
