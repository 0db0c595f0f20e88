"""novaflow: the operator's command line.

    novaflow ops list [--server ID] [--host H] [--project P] [--operation OP] [--status S]
                      [--needs-attention]
    novaflow ops show <server id | workflow id>
    novaflow ops retry|rollback|mark-error <server id | workflow id>
    novaflow server list|show|stop|start|reboot [--hard]|pause|unpause|suspend|resume|
                    lock [--reason R]|unlock|confirm|revert <server id>
    novaflow server resize <server id> <flavor>
    novaflow server migrate <server id> [--host H]
    novaflow image add FILE --name N [--property k=v ...] [--disk-format F] | image list

Temporal at NOVAFLOW_TEMPORAL_ADDRESS (127.0.0.1:7233), the API at NOVAFLOW_API_URL
(http://127.0.0.1:8774) with NOVAFLOW_TOKEN (noauth: "<user>:<project>"). An error is one line
on stderr and exit status 1.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from cli import ops
from cli.config import CliError, Endpoints, endpoints
from cli.images import ImagesAPI
from cli.servers import ServersAPI
from workflows.parking import Decision

app = typer.Typer(
    help="The operator's command line: operations through Temporal (ops), servers through the "
    "API (server). Temporal at NOVAFLOW_TEMPORAL_ADDRESS, the API at NOVAFLOW_API_URL with "
    "NOVAFLOW_TOKEN ('<user>:<project>' under noauth).",
    no_args_is_help=True,
    add_completion=False,
)
ops_app = typer.Typer(help="Operations (Temporal workflows): find, inspect, resume.")
server_app = typer.Typer(help="Servers, through the compute API.")
image_app = typer.Typer(help="Images, through the image API.")
app.add_typer(ops_app, name="ops")
app.add_typer(server_app, name="server")
app.add_typer(image_app, name="image")

out = Console()
err = Console(stderr=True)
T = TypeVar("T")

ApiOption = Annotated[str | None, typer.Option("--api", help="the compute API's base URL")]
TokenOption = Annotated[str | None, typer.Option("--token", help="X-Auth-Token to send")]
TemporalOption = Annotated[str | None, typer.Option("--temporal", help="Temporal's host:port")]


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _run(work: Callable[[], T]) -> T:
    """Run a command's work: a CliError (or any surprise) is one line and exit 1."""
    try:
        return work()
    except CliError as error:
        _fail(str(error))
    except Exception as error:  # never a traceback for an operator
        _fail(f"{type(error).__name__}: {error}")
    raise AssertionError("unreachable")


def _temporal(where: Endpoints, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    async def main() -> T:
        return await work(await ops.connect(where))

    return _run(lambda: asyncio.run(main()))


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


# ------------------------------------------------------------------ ops


@ops_app.command("list")
def ops_list(
    server: Annotated[str | None, typer.Option(help="server id")] = None,
    host: Annotated[str | None, typer.Option(help="host name")] = None,
    project: Annotated[str | None, typer.Option(help="project id")] = None,
    operation: Annotated[str | None, typer.Option(help="create, delete, stop, ...")] = None,
    status: Annotated[str | None, typer.Option(help="running, completed, failed, ...")] = None,
    needs_attention: Annotated[bool, typer.Option(help="only parked or failed undos")] = False,
    limit: Annotated[int, typer.Option(help="at most this many")] = 50,
    temporal: TemporalOption = None,
) -> None:
    """Operations matching the filters (a visibility query; also pasteable in the UI)."""
    query = _run(lambda: ops.list_query(server, host, project, operation, status, needs_attention))
    rows = _temporal(endpoints(temporal=temporal), lambda c: ops.list_operations(c, query, limit))
    table = Table(title=query, title_justify="left")
    for column in ("workflow id", "operation", "status", "started", "host", "attention"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.workflow_id,
            row.operation or row.kind,
            row.status,
            _when(row.started),
            row.host,
            "NEEDS ATTENTION" if row.needs_attention else "",
        )
    out.print(table)


@ops_app.command("show")
def ops_show(
    ident: Annotated[str, typer.Argument(help="server id or workflow id")],
    temporal: TemporalOption = None,
) -> None:
    """An operation's phase, its steps with their times, and what is pending."""

    async def work(client: Any) -> ops.OperationDetail:
        return await ops.show(client, await ops.resolve(client, ident))

    detail = _temporal(endpoints(temporal=temporal), work)
    row = detail.row
    out.print(f"[bold]{row.workflow_id}[/bold]  {row.kind}  {row.status}", highlight=False)
    out.print(f"started {_when(row.started)}  closed {_when(detail.closed) or '-'}")
    if row.host:
        out.print(f"host {row.host}")
    if row.needs_attention:
        out.print("[red]NEEDS ATTENTION[/red]")
    if detail.phase:
        out.print(f"phase: {detail.phase}", highlight=False)
    steps = Table(title="steps", title_justify="left")
    for column in ("step", "scheduled", "finished", "outcome", "detail"):
        steps.add_column(column)
    for step in detail.steps:
        steps.add_row(
            step.name, _when(step.scheduled), _when(step.finished), step.outcome, step.detail
        )
    out.print(steps)
    if detail.pending:
        pending = Table(title="pending", title_justify="left")
        for column in ("step", "attempt", "state", "last failure"):
            pending.add_column(column)
        for p in detail.pending:
            pending.add_row(p.name, str(p.attempt), p.state, p.last_failure)
        out.print(pending)


def _decide(decision: Decision, ident: str, temporal: str | None) -> None:
    async def work(client: Any) -> str:
        workflow_id = await ops.resolve(client, ident, parked=not ident.startswith("server-"))
        await ops.signal(client, workflow_id, decision)
        return workflow_id

    workflow_id = _temporal(endpoints(temporal=temporal), work)
    out.print(f"sent {decision.value} to {workflow_id}", highlight=False)


@ops_app.command("retry")
def ops_retry(ident: Annotated[str, typer.Argument()], temporal: TemporalOption = None) -> None:
    """A parked operation runs its step again."""
    _decide(Decision.RETRY, ident, temporal)


@ops_app.command("rollback")
def ops_rollback(ident: Annotated[str, typer.Argument()], temporal: TemporalOption = None) -> None:
    """A parked operation gives up and compensates."""
    _decide(Decision.ROLLBACK, ident, temporal)


@ops_app.command("mark-error")
def ops_mark_error(
    ident: Annotated[str, typer.Argument()], temporal: TemporalOption = None
) -> None:
    """A parked operation leaves its server in ERROR."""
    _decide(Decision.MARK_ERROR, ident, temporal)


# ------------------------------------------------------------------ servers


def _servers(api: str | None, token: str | None) -> ServersAPI:
    return ServersAPI(endpoints(api_url=api, token=token))


@server_app.command("list")
def server_list(
    all_projects: Annotated[bool, typer.Option(help="every project's (admin)")] = False,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    client = _servers(api, token)
    try:
        rows = _run(lambda: client.list(all_projects))
    finally:
        client.close()
    table = Table()
    for column in ("id", "name", "status", "task", "power", "locked"):
        table.add_column(column)
    for s in rows:
        table.add_row(
            s["id"],
            s["name"],
            s["status"],
            s.get("OS-EXT-STS:task_state") or "",
            str(s.get("OS-EXT-STS:power_state", "")),
            "locked" if s.get("locked") else "",
        )
    out.print(table)


@server_app.command("show")
def server_show(
    server_id: Annotated[str, typer.Argument()], api: ApiOption = None, token: TokenOption = None
) -> None:
    client = _servers(api, token)
    try:
        server = _run(lambda: client.show(server_id))
    finally:
        client.close()
    table = Table(show_header=False)
    for key in sorted(server):
        table.add_row(key, str(server[key]))
    out.print(table)


def _act(server_id: str, verb: str, api: str | None, token: str | None, **args: Any) -> None:
    """Send the action, then follow the server until its task is over."""
    client = _servers(api, token)
    try:
        request_id = _run(lambda: client.act(server_id, verb, **args))
        out.print(f"{verb} accepted (request {request_id})", highlight=False)
        with out.status(f"{verb} {server_id}") as status:

            def show(server: dict[str, Any]) -> None:
                task = server.get("OS-EXT-STS:task_state") or "no task"
                status.update(f"{verb} {server_id}: {server['status']} ({task})")

            final = _run(lambda: client.follow(server_id, show))
    finally:
        client.close()
    out.print(
        f"{server_id}: {final['status']}, power state {final.get('OS-EXT-STS:power_state')}",
        highlight=False,
    )


def _verb(verb: str, doc: str) -> None:
    def command(
        server_id: Annotated[str, typer.Argument()],
        api: ApiOption = None,
        token: TokenOption = None,
    ) -> None:
        _act(server_id, verb, api, token)

    command.__doc__ = doc
    server_app.command(verb)(command)


for _name, _doc in (
    ("stop", "Shut the server down (clean, then power off)."),
    ("start", "Power a stopped server on."),
    ("pause", "Freeze its vCPUs."),
    ("unpause", "Let a paused server run again."),
    ("suspend", "Save its memory to disk and stop it."),
    ("resume", "Restore a suspended server."),
    ("unlock", "Let non-admins act on it again."),
    ("confirm", "Confirm a resize or migration (VERIFY_RESIZE): the source is cleaned."),
    ("revert", "Revert a resize or migration (VERIFY_RESIZE): back to the source, old flavor."),
):
    _verb(_name, _doc)


@server_app.command("reboot")
def server_reboot(
    server_id: Annotated[str, typer.Argument()],
    hard: Annotated[bool, typer.Option(help="power-cycle instead of a clean restart")] = False,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Reboot (soft: the guest shuts down cleanly, with a hard reset as fallback)."""
    _act(server_id, "reboot", api, token, hard=hard)


@server_app.command("lock")
def server_lock(
    server_id: Annotated[str, typer.Argument()],
    reason: Annotated[str | None, typer.Option(help="why (shown as locked_reason)")] = None,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Refuse actions and delete from non-admins."""
    _act(server_id, "lock", api, token, reason=reason)


@server_app.command("resize")
def server_resize(
    server_id: Annotated[str, typer.Argument()],
    flavor: Annotated[str, typer.Argument(help="the new flavor's id")],
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Move the server to a new flavor; it waits in VERIFY_RESIZE for confirm or revert."""
    _act(server_id, "resize", api, token, flavor=flavor)


@server_app.command("migrate")
def server_migrate(
    server_id: Annotated[str, typer.Argument()],
    host: Annotated[str | None, typer.Option("--host", help="the host to move to")] = None,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Cold-migrate the server to another host (admin); then confirm or revert."""
    _act(server_id, "migrate", api, token, host=host)


@image_app.command("add")
def image_add(
    file: Annotated[Path, typer.Argument(help="the image's file (qcow2, raw, a kernel, ...)")],
    name: Annotated[str, typer.Option("--name")],
    prop: Annotated[
        list[str] | None, typer.Option("--property", help="k=v, as many as needed")
    ] = None,
    disk_format: Annotated[
        str, typer.Option("--disk-format", help="qcow2, raw, aki (kernel), ari (ramdisk)")
    ] = "qcow2",
    min_disk: Annotated[int, typer.Option("--min-disk")] = 0,
    min_ram: Annotated[int, typer.Option("--min-ram")] = 0,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Register an image and upload its file (admin); it is then active."""
    properties: dict[str, str] = {}
    for item in prop or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"--property {item!r}: expected k=v")
        properties[key] = value
    client = ImagesAPI(endpoints(api_url=api, token=token))
    try:
        image = _run(lambda: client.add(file, name, properties, disk_format, min_disk, min_ram))
    finally:
        client.close()
    out.print(
        f"{image['id']}: {image['name']} {image['status']}, {image['size']} bytes, "
        f"sha256 {image['os_hash_value']}",
        highlight=False,
    )


@image_app.command("list")
def image_list(api: ApiOption = None, token: TokenOption = None) -> None:
    """Every image, with its status, size and checksum."""
    client = ImagesAPI(endpoints(api_url=api, token=token))
    try:
        rows = _run(client.list)
    finally:
        client.close()
    table = Table("id", "name", "status", "format", "size", "checksum (md5)")
    for image in rows:
        table.add_row(
            image["id"],
            image["name"],
            image["status"],
            image["disk_format"],
            str(image["size"] if image["size"] is not None else ""),
            image["checksum"] or "",
        )
    out.print(table)


def main() -> None:
    """The console script. The process ends with os._exit once the command is done: the
    Temporal SDK can crash the interpreter at exit after a client ran (sdk-python#300, seen
    here as a SIGSEGV after a signal was sent), and an operator's exit status must not depend
    on that."""
    code: int = 0
    try:
        app()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
