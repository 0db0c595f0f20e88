"""Create/delete benchmark: the whole stack (Temporal dev server, control and compute workers,
API) started fresh in a temp dir, driven through the HTTP API, compared with a bare Temporal
workflow of 8 trivial sequential activities run against the same Temporal server.

    .venv/bin/python bench/create_delete_bench.py [--n 40] [--concurrency 20]

What it measures (a benchmark, not a test: it prints figures):
  1. one at a time: POST /servers -> GET shows ACTIVE (GET polled every --poll-ms), the
     create workflow's own duration (Temporal start -> close, free of polling overhead), and
     DELETE -> GET 404 likewise;
     then N creates one at a time awaiting the workflow instead (no GET polling: on a
     2-core machine a 5 ms GET poll keeps the API busy and slows the create it watches);
  2. at --concurrency in flight: N creates, then N deletes; throughput and latency. Here the
     end of each operation is awaited with a Temporal long poll on its workflow (no GET
     polling that would load the API); every server is then checked ACTIVE / gone;
  3. the bare workflow (bench/bare_workflow.py), one at a time and at --concurrency (one
     batch right before and one right after the concurrent creates, so that a machine shared
     with other work loads both alike);
  4. CPU per operation of each process (Temporal, control, compute, API, this process) and of
     the rest of the machine, per phase: the machine may be shared, and CPU per op is steadier
     than wall-clock throughput;
  5. moves, one at a time on a new server per round: resize -> VERIFY_RESIZE, confirmResize,
     migrate -> VERIFY_RESIZE, revertResize, rebuild (on the test driver no disk content is
     copied: the disk copy's own throughput is measured on the real tier);
  6. where the create's time goes: per step from the instance-action events (admin view of
     os-instance-actions/{request_id}), and the gaps between steps (Temporal's share).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from bench.bare_workflow import BARE_STEPS, BARE_TASK_QUEUE, BareWorkflow, bare_step  # noqa: E402
from novaflow import quota  # noqa: E402
from novaflow.seed import IMAGES, PRIVATE_NETWORK_ID  # noqa: E402
from workers.devstack import SimulatedHost, Stack, free_port  # noqa: E402
from workflows.contracts import operation_workflow_id  # noqa: E402

PROJECT = "bench"
USER = "bench"
CIRROS = IMAGES[0].id
FLAVOR = "1"  # m1.tiny: 1 vCPU, 512 MiB, 1 GiB
# Hosts big enough that capacity never limits the run.
HOSTS = tuple(
    SimulatedHost(f"bench-{x}", cpus=256, memory_mb=1_048_576, disk_gb=20_000) for x in "abc"
)
TARGET_CREATE_P50_MS = 250.0
TARGET_THROUGHPUT_RATIO = 0.80  # create at c=20 vs the bare workflow (issue 9)
TARGET_CREATE_RATIO = 0.80  # create p50 vs the bare workflow p50, one at a time
TARGET_POWER_RATIO = 0.75  # each power action p50 vs the bare workflow p50


# ---------------------------------------------------------------- figures


def pct(values: list[float], p: float) -> float:
    """Percentile with linear interpolation (p in 0..100)."""
    if not values:
        return float("nan")
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    k = (len(data) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


@dataclass
class Series:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float | None = None  # for a concurrent batch: first start -> last finish

    @property
    def throughput(self) -> float | None:
        if self.wall_s is None or not self.latencies_ms:
            return None
        return len(self.latencies_ms) / self.wall_s

    def row(self) -> tuple[str, str, str, str, str, str, str]:
        v = self.latencies_ms
        tput = self.throughput
        return (
            self.name,
            str(len(v)),
            f"{pct(v, 50):.1f}",
            f"{pct(v, 95):.1f}",
            f"{pct(v, 99):.1f}",
            f"{max(v):.1f}" if v else "-",
            f"{tput:.2f}" if tput is not None else "-",
        )


def table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"

    def fmt(cells: tuple[str, ...]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    return "\n".join([line, fmt(headers), line, *(fmt(r) for r in rows), line])


def log(message: str) -> None:
    print(message, flush=True)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def _process_cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


class CpuMeter:
    """CPU used per stack process (grouped), by this process (the bench client and the bare
    workflow's worker) and by everything else on the machine, between two snapshots."""

    GROUPS = ("temporal", "control", "compute x3", "api", "bench proc", "other")

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def _group(self, name: str) -> str:
        return "compute x3" if name.startswith("compute-") else name

    def snapshot(self) -> tuple[float, float, dict[str, float]]:
        used: dict[str, float] = defaultdict(float)
        for name, process in self.stack.processes.items():
            used[self._group(name)] += _process_cpu_s(process.pid)
        used["bench proc"] = _process_cpu_s(os.getpid())
        return time.monotonic(), _machine_busy_s(), used

    @staticmethod
    def usage(
        before: tuple[float, float, dict[str, float]], after: tuple[float, float, dict[str, float]]
    ) -> tuple[float, dict[str, float]]:
        wall = after[0] - before[0]
        used = {g: after[2].get(g, 0.0) - before[2].get(g, 0.0) for g in CpuMeter.GROUPS[:-1]}
        used["other"] = max(0.0, (after[1] - before[1]) - sum(used.values()))
        return wall, used


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def ms_between(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() * 1000


# ---------------------------------------------------------------- the API


class Api:
    def __init__(self, base_url: str, limit: int) -> None:
        limits = httpx.Limits(max_connections=limit + 8, max_keepalive_connections=limit + 8)
        self.user = httpx.AsyncClient(
            base_url=base_url,
            timeout=120,
            limits=limits,
            headers={"X-Auth-Token": f"{USER}:{PROJECT}"},
        )
        self.admin = httpx.AsyncClient(
            base_url=base_url,
            timeout=120,
            limits=limits,
            headers={"X-Auth-Token": f"admin:{PROJECT}"},
        )

    async def close(self) -> None:
        await self.user.aclose()
        await self.admin.aclose()

    async def raise_quota(self) -> None:
        body = {"quota_set": {name: quota.UNLIMITED for name in quota.RESOURCES}}
        response = await self.admin.put(f"/v2.1/os-quota-sets/{PROJECT}", json=body)
        response.raise_for_status()

    async def post_create(self, name: str) -> tuple[str, str]:
        body = {
            "server": {
                "name": name,
                "flavorRef": FLAVOR,
                "imageRef": CIRROS,
                "networks": [{"uuid": PRIVATE_NETWORK_ID}],
            }
        }
        response = await self.user.post("/v2.1/servers", json=body)
        if response.status_code != 202:
            raise RuntimeError(f"create: {response.status_code} {response.text}")
        return str(response.json()["server"]["id"]), response.headers["x-openstack-request-id"]

    async def post_delete(self, server_id: str) -> str:
        response = await self.user.delete(f"/v2.1/servers/{server_id}")
        if response.status_code != 204:
            raise RuntimeError(f"delete: {response.status_code} {response.text}")
        return response.headers.get("x-openstack-request-id", "")

    async def status(self, server_id: str) -> str:
        response = await self.admin.get(f"/v2.1/servers/{server_id}")
        if response.status_code == 404:
            return "GONE"
        response.raise_for_status()
        return str(response.json()["server"]["status"])

    async def wait_status(
        self, server_id: str, wanted: str, poll_s: float, timeout: float = 60.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status = await self.status(server_id)
            if status == wanted:
                return
            if status == "ERROR":
                raise RuntimeError(f"server {server_id} went to ERROR")
            if time.monotonic() > deadline:
                raise TimeoutError(f"server {server_id}: {status}, never {wanted}")
            await asyncio.sleep(poll_s)

    async def action(self, server_id: str, request_id: str) -> dict[str, Any]:
        response = await self.admin.get(
            f"/v2.1/servers/{server_id}/os-instance-actions/{request_id}"
        )
        response.raise_for_status()
        return dict(response.json()["instanceAction"])

    async def statuses(self) -> dict[str, str]:
        response = await self.admin.get("/v2.1/servers/detail")
        response.raise_for_status()
        return {s["id"]: s["status"] for s in response.json()["servers"]}


# ---------------------------------------------------------------- the runs


@dataclass
class Op:
    server_id: str
    request_id: str
    client_ms: float  # POST/DELETE -> observed done
    request_ms: float  # the POST/DELETE call alone


async def create_one(api: Api, poll_s: float) -> Op:
    started = time.perf_counter()
    server_id, request_id = await api.post_create(f"bench-{uuid.uuid4().hex[:8]}")
    posted = time.perf_counter()
    await api.wait_status(server_id, "ACTIVE", poll_s)
    done = time.perf_counter()
    return Op(server_id, request_id, (done - started) * 1000, (posted - started) * 1000)


async def delete_one(api: Api, server_id: str, poll_s: float) -> Op:
    started = time.perf_counter()
    request_id = await api.post_delete(server_id)
    posted = time.perf_counter()
    await api.wait_status(server_id, "GONE", poll_s)
    done = time.perf_counter()
    return Op(server_id, request_id, (done - started) * 1000, (posted - started) * 1000)


async def create_awaiting_workflow(api: Api, client: Client) -> Op:
    started = time.perf_counter()
    server_id, request_id = await api.post_create(f"bench-{uuid.uuid4().hex[:8]}")
    posted = time.perf_counter()
    await client.get_workflow_handle(
        operation_workflow_id(server_id, "create", request_id)
    ).result()
    done = time.perf_counter()
    return Op(server_id, request_id, (done - started) * 1000, (posted - started) * 1000)


async def delete_awaiting_workflow(api: Api, client: Client, server_id: str) -> Op:
    started = time.perf_counter()
    request_id = await api.post_delete(server_id)
    posted = time.perf_counter()
    await client.get_workflow_handle(
        operation_workflow_id(server_id, "delete", request_id)
    ).result()
    done = time.perf_counter()
    return Op(server_id, request_id, (done - started) * 1000, (posted - started) * 1000)


async def action_awaiting_workflow(
    api: Api, client: Client, server_id: str, action: str, body: dict[str, Any]
) -> float:
    """POST the server action, then await its ServerAction workflow: ms for both."""
    started = time.perf_counter()
    response = await api.user.post(f"/v2.1/servers/{server_id}/action", json=body)
    if response.status_code != 202:
        raise RuntimeError(f"{action}: {response.status_code} {response.text}")
    request_id = response.headers["x-openstack-request-id"]
    await client.get_workflow_handle(operation_workflow_id(server_id, action, request_id)).result()
    return (time.perf_counter() - started) * 1000


# (series key, label, instance-action name, body), run in this order on one server.
POWER_ACTIONS = [
    ("stop", "os-stop -> SHUTOFF", "stop", {"os-stop": None}),
    ("start", "os-start -> ACTIVE", "start", {"os-start": None}),
    ("reboot_soft", "reboot SOFT -> ACTIVE", "reboot", {"reboot": {"type": "SOFT"}}),
    ("reboot_hard", "reboot HARD -> ACTIVE", "reboot", {"reboot": {"type": "HARD"}}),
    ("lock", "lock (the gate alone)", "lock", {"lock": None}),
    ("unlock", "unlock (the gate alone)", "unlock", {"unlock": None}),
]


# Resize and cold migration (issue 10), one at a time, each against the bare workflow's p50.
MOVES = [
    ("resize", "resize -> VERIFY_RESIZE (GET poll)"),
    ("confirm", "confirmResize -> ACTIVE (wf long-poll)"),
    ("migrate", "migrate -> VERIFY_RESIZE (GET poll)"),
    ("revert", "revertResize -> ACTIVE (wf long-poll)"),
    ("rebuild", "rebuild -> ACTIVE (wf long-poll)"),
]
TARGET_MOVE_RATIO = 1.5  # each move p50 vs the bare workflow p50 (issue 10)


async def move_round(api: Api, client: Client, poll_s: float) -> dict[str, float]:
    """On a new server: resize, confirm, migrate, revert, rebuild; ms for each (the server is then
    deleted; its create and delete are not timed here)."""
    server = await create_one(api, poll_s)
    timings: dict[str, float] = {}

    async def post(body: dict[str, Any], admin: bool = False) -> str:
        http = api.admin if admin else api.user
        response = await http.post(f"/v2.1/servers/{server.server_id}/action", json=body)
        if response.status_code not in (202, 204):
            raise RuntimeError(f"{body}: {response.status_code} {response.text}")
        return response.headers["x-openstack-request-id"]

    for key, body, admin in (
        ("resize", {"resize": {"flavorRef": "2"}}, False),
        ("migrate", {"migrate": None}, True),
    ):
        started = time.perf_counter()
        request_id = await post(body, admin)
        await api.wait_status(server.server_id, "VERIFY_RESIZE", poll_s)
        timings[key] = (time.perf_counter() - started) * 1000
        decision = "confirm" if key == "resize" else "revert"
        started = time.perf_counter()
        await post({"confirmResize" if key == "resize" else "revertResize": None})
        workflow_id = operation_workflow_id(server.server_id, key, request_id)
        await client.get_workflow_handle(workflow_id).result()
        timings[decision] = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    request_id = await post({"rebuild": {"imageRef": CIRROS}})
    workflow_id = operation_workflow_id(server.server_id, "rebuild", request_id)
    await client.get_workflow_handle(workflow_id).result()
    timings["rebuild"] = (time.perf_counter() - started) * 1000
    await delete_one(api, server.server_id, poll_s)
    return timings


async def bare_one(client: Client) -> tuple[float, str]:
    workflow_id = f"bench-bare-{uuid.uuid4()}"
    started = time.perf_counter()
    await client.execute_workflow(
        BareWorkflow.run, BARE_STEPS, id=workflow_id, task_queue=BARE_TASK_QUEUE
    )
    return (time.perf_counter() - started) * 1000, workflow_id


async def in_parallel(
    n: int, concurrency: int, op: Callable[[int], Awaitable[Any]]
) -> tuple[list[Any], float]:
    """n operations with at most `concurrency` in flight; returns results and wall seconds."""
    semaphore = asyncio.Semaphore(concurrency)

    async def guarded(i: int) -> Any:
        async with semaphore:
            return await op(i)

    started = time.perf_counter()
    results = await asyncio.gather(*(guarded(i) for i in range(n)))
    return list(results), time.perf_counter() - started


async def workflow_duration_ms(client: Client, workflow_id: str) -> float:
    description = await client.get_workflow_handle(workflow_id).describe()
    if description.close_time is None:  # still closing: wait for it
        await client.get_workflow_handle(workflow_id).result()
        description = await client.get_workflow_handle(workflow_id).describe()
    assert description.close_time is not None
    return ms_between(description.start_time, description.close_time)


# ---------------------------------------------------------------- where the time goes


def step_name(event: str) -> str:
    return event.split("@", 1)[0]


@dataclass
class Breakdown:
    """Per step: its own duration and the gap before it (the previous step's end -> its
    start: workflow task + activity dispatch in Temporal)."""

    durations: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    gaps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    order: list[str] = field(default_factory=list)
    totals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(
        self, workflow_start: datetime, workflow_close: datetime, events: list[dict[str, Any]]
    ) -> None:
        rows = sorted(
            (
                (step_name(e["event"]), parse_time(e["start_time"]), parse_time(e["finish_time"]))
                for e in events
                if e.get("start_time") and e.get("finish_time")
            ),
            key=lambda r: (r[1], r[2]),
        )
        previous_end = workflow_start
        steps_ms = gaps_ms = 0.0
        for name, start, finish in rows:
            assert start is not None and finish is not None
            if name not in self.order:
                self.order.append(name)
            duration = ms_between(start, finish)
            gap = ms_between(previous_end, start)
            self.durations[name].append(duration)
            self.gaps[name].append(gap)
            steps_ms += duration
            gaps_ms += gap
            previous_end = max(previous_end, finish)
        self.gaps["(close)"].append(ms_between(previous_end, workflow_close))
        gaps_ms += ms_between(previous_end, workflow_close)
        self.totals["in steps"].append(steps_ms)
        self.totals["between steps (Temporal)"].append(gaps_ms)
        self.totals["workflow start -> close"].append(ms_between(workflow_start, workflow_close))

    def rows(self) -> list[tuple[str, str, str]]:
        out = [
            (name, f"{pct(self.gaps[name], 50):.1f}", f"{pct(self.durations[name], 50):.1f}")
            for name in self.order
        ]
        out.append(("(workflow close)", f"{pct(self.gaps['(close)'], 50):.1f}", "-"))
        return out


async def breakdown_of(
    api: Api, client: Client, ops: list[Op], operation: str
) -> tuple[Breakdown, list[float]]:
    breakdown = Breakdown()
    durations: list[float] = []
    for op in ops:
        action = await api.action(op.server_id, op.request_id)
        workflow_id = action.get("workflow_id") or operation_workflow_id(
            op.server_id, operation, op.request_id
        )
        description = await client.get_workflow_handle(workflow_id).describe()
        if description.close_time is None:
            await client.get_workflow_handle(workflow_id).result()
            description = await client.get_workflow_handle(workflow_id).describe()
        assert description.close_time is not None
        durations.append(ms_between(description.start_time, description.close_time))
        breakdown.add(description.start_time, description.close_time, action.get("events", []))
    return breakdown, durations


# ---------------------------------------------------------------- main


@dataclass
class Phase:
    name: str
    ops: int
    wall_s: float
    cpu_s: dict[str, float]


@dataclass
class Results:
    series: dict[str, Series] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    breakdowns: dict[str, Breakdown] = field(default_factory=dict)
    load: list[tuple[str, tuple[float, float, float]]] = field(default_factory=list)


async def run(args: argparse.Namespace, stack: Stack, out: Results) -> None:
    n, concurrency, poll_s = args.n, args.concurrency, args.poll_ms / 1000
    client = await Client.connect(
        f"127.0.0.1:{stack.temporal_port}", data_converter=stack.data_converter()
    )
    api = Api(stack.api_url, concurrency)
    meter = CpuMeter(stack)
    series = out.series

    class metered:  # noqa: N801  (a tiny context manager: CPU and wall time of one phase)
        def __init__(self, name: str, ops: int) -> None:
            self.name, self.ops = name, ops

        def __enter__(self) -> None:
            self.before = meter.snapshot()

        def __exit__(self, *_: object) -> None:
            wall, used = CpuMeter.usage(self.before, meter.snapshot())
            out.phases.append(Phase(self.name, self.ops, wall, used))

    try:
        await api.raise_quota()
        out.load.append(("start", os.getloadavg()))
        async with Worker(
            client,
            task_queue=BARE_TASK_QUEUE,
            workflows=[BareWorkflow],
            activities=[bare_step],
            max_concurrent_activities=100,
            max_concurrent_workflow_tasks=100,
        ):
            # ---- warm-up: every process, connection and code path once or twice
            log(f"warming up ({args.warmup} create/delete + {args.warmup} bare)...")
            for _ in range(args.warmup):
                op = await create_one(api, poll_s)
                await delete_one(api, op.server_id, poll_s)
                await bare_one(client)

            # ---- bare workflow: one at a time, then at concurrency
            log(f"bare workflow ({BARE_STEPS} trivial activities): {n} one at a time...")
            bare_seq = Series("bare workflow, 1 at a time (client)")
            bare_ids = []
            with metered("bare, 1 at a time", n):
                for _ in range(n):
                    ms, workflow_id = await bare_one(client)
                    bare_seq.latencies_ms.append(ms)
                    bare_ids.append(workflow_id)
            series["bare_seq"] = bare_seq
            series["bare_wf"] = Series(
                "bare workflow, 1 at a time (Temporal start->close)",
                [await workflow_duration_ms(client, w) for w in bare_ids],
            )
            # ---- creates and deletes one at a time, observed through the API
            log(f"create -> ACTIVE: {n} one at a time (GET every {args.poll_ms:g} ms)...")
            with metered(f"create, 1 at a time, GET poll {args.poll_ms:g} ms", n):
                creates = [await create_one(api, poll_s) for _ in range(n)]
            log(f"delete -> 404: {n} one at a time (GET every {args.poll_ms:g} ms)...")
            with metered(f"delete, 1 at a time, GET poll {args.poll_ms:g} ms", n):
                deletes = [await delete_one(api, op.server_id, poll_s) for op in creates]
            out.breakdowns["create, 1 at a time (GET poll)"], create_wf_ms = await breakdown_of(
                api, client, creates, "create"
            )
            out.breakdowns["delete, 1 at a time (GET poll)"], delete_wf_ms = await breakdown_of(
                api, client, deletes, "delete"
            )
            series["create_seq"] = Series(
                "create -> ACTIVE, 1 at a time (client, GET poll)", [o.client_ms for o in creates]
            )
            series["create_wf"] = Series("  create workflow (Temporal start->close)", create_wf_ms)
            series["create_post"] = Series(
                "  POST -> 202 (update-with-start: reserve)", [o.request_ms for o in creates]
            )
            series["delete_seq"] = Series(
                "delete -> 404, 1 at a time (client, GET poll)", [o.client_ms for o in deletes]
            )
            series["delete_wf"] = Series("  delete workflow (Temporal start->close)", delete_wf_ms)
            series["delete_req"] = Series("  DELETE -> 204", [o.request_ms for o in deletes])

            # ---- power actions one at a time, on one server, each awaited to its workflow's end
            log(f"power actions: {n} rounds of stop, start, reboot SOFT/HARD, lock, unlock...")
            target = await create_one(api, poll_s)
            timings: dict[str, list[float]] = {key: [] for key, *_ in POWER_ACTIONS}
            with metered("power actions, 1 at a time", n * len(POWER_ACTIONS)):
                for _ in range(n):
                    for key, _label, action, body in POWER_ACTIONS:
                        timings[key].append(
                            await action_awaiting_workflow(
                                api, client, target.server_id, action, body
                            )
                        )
            await delete_one(api, target.server_id, poll_s)
            for key, label, *_ in POWER_ACTIONS:
                series[f"power_{key}"] = Series(
                    f"{label}, 1 at a time (wf long-poll)", timings[key]
                )

            # ---- resize, confirm, migrate, revert: one at a time, a new server per round
            log(f"moves: {n} rounds of resize, confirm, migrate, revert, rebuild...")
            move_timings: dict[str, list[float]] = {key: [] for key, _ in MOVES}
            with metered("moves, 1 at a time", n * len(MOVES)):
                for _ in range(n):
                    for key, ms in (await move_round(api, client, poll_s)).items():
                        move_timings[key].append(ms)
            for key, label in MOVES:
                series[f"move_{key}"] = Series(f"{label}, 1 at a time", move_timings[key])

            # ---- creates one at a time without GET polling (the polling costs API CPU)
            log(f"create: {n} one at a time, awaiting the workflow (no GET polling)...")
            with metered("create, 1 at a time, wf long-poll", n):
                quiet = [await create_awaiting_workflow(api, client) for _ in range(n)]
            out.breakdowns["create, 1 at a time (no polling)"], quiet_wf_ms = await breakdown_of(
                api, client, quiet, "create"
            )
            series["create_lp"] = Series(
                "create -> done, 1 at a time (client, wf long-poll)", [o.client_ms for o in quiet]
            )
            series["create_lp_wf"] = Series(
                "  create workflow (Temporal start->close)", quiet_wf_ms
            )

            # ---- creates and deletes at concurrency, with a bare batch right before and right
            # after the creates: the machine may be shared, so both see the same conditions
            async def bare_batch(label: str) -> Series:
                log(f"bare workflow: {n} at concurrency {concurrency} ({label})...")
                with metered(f"bare, c={concurrency} ({label})", n):
                    timed, wall = await in_parallel(n, concurrency, lambda _: bare_one(client))
                return Series(
                    f"bare workflow, c={concurrency} ({label})", [t for t, _ in timed], wall
                )

            bare_before = await bare_batch("before creates")
            log(f"create: {n} at concurrency {concurrency}...")
            with metered(f"create, c={concurrency}", n):
                conc_creates, create_wall = await in_parallel(
                    n, concurrency, lambda _: create_awaiting_workflow(api, client)
                )
            statuses = await api.statuses()
            not_active = [
                op.server_id for op in conc_creates if statuses.get(op.server_id) != "ACTIVE"
            ]
            if not_active:
                raise RuntimeError(f"{len(not_active)} servers not ACTIVE: {not_active[:3]}")
            bare_after = await bare_batch("after creates")
            log(f"delete: {n} at concurrency {concurrency}...")
            with metered(f"delete, c={concurrency}", n):
                conc_deletes, delete_wall = await in_parallel(
                    n,
                    concurrency,
                    lambda i: delete_awaiting_workflow(api, client, conc_creates[i].server_id),
                )
            statuses = await api.statuses()
            left = [op.server_id for op in conc_deletes if op.server_id in statuses]
            if left:
                raise RuntimeError(f"{len(left)} servers still listed after delete: {left[:3]}")
            out.breakdowns[f"create, c={concurrency}"], conc_wf_ms = await breakdown_of(
                api, client, conc_creates, "create"
            )
            series["create_conc"] = Series(
                f"create -> done, c={concurrency} (client, wf long-poll)",
                [o.client_ms for o in conc_creates],
                create_wall,
            )
            series["create_conc_wf"] = Series(
                "  create workflow (Temporal start->close)", conc_wf_ms
            )
            series["bare_conc_before"] = bare_before
            series["bare_conc_after"] = bare_after
            series["bare_conc"] = Series(
                f"bare workflow, c={concurrency} (both batches)",
                bare_before.latencies_ms + bare_after.latencies_ms,
                (bare_before.wall_s or 0.0) + (bare_after.wall_s or 0.0),
            )
            series["delete_conc"] = Series(
                f"delete -> done, c={concurrency} (client, wf long-poll)",
                [o.client_ms for o in conc_deletes],
                delete_wall,
            )
            out.load.append(("end", os.getloadavg()))
    finally:
        await api.close()


def report(args: argparse.Namespace, out: Results) -> None:
    n, c = args.n, args.concurrency
    r = out.series
    for name, breakdown in out.breakdowns.items():
        log("")
        log(
            f"Where the time goes: {name}, median of {n} (instance-action events; 'gap' = the "
            f"previous step's end, or the workflow's start, -> this step's start)"
        )
        log(table(("step", "gap before ms", "step itself ms"), breakdown.rows()))
        log(
            table(
                ("sum per operation", "p50 ms"),
                [(k, f"{pct(v, 50):.1f}") for k, v in breakdown.totals.items()],
            )
        )

    log("")
    log(
        "CPU per operation, by process (ms of CPU per op; 'other' = the rest of the machine, "
        f"i.e. load that is not this benchmark; {os.cpu_count()} cores)"
    )
    groups = CpuMeter.GROUPS
    rows = []
    for phase in out.phases:
        total = sum(phase.cpu_s.values())
        rows.append(
            (
                phase.name,
                f"{phase.wall_s:.1f}",
                *(f"{phase.cpu_s[g] * 1000 / phase.ops:.0f}" for g in groups),
                f"{total / (phase.wall_s * (os.cpu_count() or 1)):.0%}",
            )
        )
    log(table(("phase", "wall s", *groups, "machine busy"), rows))
    log(
        "load average (1/5/15 min): "
        + "; ".join(f"{when} {a:.2f}/{b:.2f}/{c_:.2f}" for when, (a, b, c_) in out.load)
    )

    order = [
        "create_seq",
        "create_wf",
        "create_post",
        "create_lp",
        "create_lp_wf",
        "delete_seq",
        "delete_wf",
        "delete_req",
        "create_conc",
        "create_conc_wf",
        "delete_conc",
        *(f"power_{key}" for key, *_ in POWER_ACTIONS),
        *(f"move_{key}" for key, _ in MOVES),
        "bare_seq",
        "bare_wf",
        "bare_conc_before",
        "bare_conc_after",
        "bare_conc",
    ]
    log("")
    log(
        f"novaflow create/delete benchmark: n={n}, concurrency={c}, GET poll {args.poll_ms:g} ms, "
        f"{len(HOSTS)} hosts (libvirt test driver), flavor m1.tiny"
    )
    log(
        table(
            ("series", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "ops/s"),
            [r[k].row() for k in order if k in r],
        )
    )

    create_p50 = pct(r["create_seq"].latencies_ms, 50)
    create_wf_p50 = pct(r["create_wf"].latencies_ms, 50)
    create_lp_p50 = pct(r["create_lp"].latencies_ms, 50)
    bare_p50 = pct(r["bare_seq"].latencies_ms, 50)
    bare_wf_p50 = pct(r["bare_wf"].latencies_ms, 50)
    create_tput = r["create_conc"].throughput or 0.0
    bare_tput = r["bare_conc"].throughput or float("nan")
    ratio = create_tput / bare_tput
    ok_latency = create_p50 < TARGET_CREATE_P50_MS
    ok_tput = ratio >= TARGET_THROUGHPUT_RATIO

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    # CPU spent by the benchmark's own processes per operation at concurrency: on a machine
    # that is CPU-bound and shared, this ratio is steadier than the measured throughputs.
    def own_cpu_ms(prefix: str) -> float:
        phases = [p for p in out.phases if p.name.startswith(prefix)]
        ops = sum(p.ops for p in phases)
        return sum(v for p in phases for g, v in p.cpu_s.items() if g != "other") * 1000 / ops

    create_cpu = own_cpu_ms(f"create, c={c}")
    bare_cpu = own_cpu_ms(f"bare, c={c}")

    rows = [
        (
            "create p50 / bare p50, 1 at a time (client: GET poll / result)",
            f"{create_p50:.1f} / {bare_p50:.1f} ms",
            f"{create_p50 / bare_p50:.2f}x",
            "",
        ),
        (
            "create p50 / bare p50, 1 at a time (client, both awaiting the wf)",
            f"{create_lp_p50:.1f} / {bare_p50:.1f} ms",
            f"{create_lp_p50 / bare_p50:.2f}x",
            "",
        ),
        (
            "create p50 / bare p50, 1 at a time (Temporal start->close)",
            f"{create_wf_p50:.1f} / {bare_wf_p50:.1f} ms",
            f"{create_wf_p50 / bare_wf_p50:.2f}x",
            "",
        ),
        (
            f"create throughput / bare throughput, c={c}",
            f"{create_tput:.2f} / {bare_tput:.2f} ops/s",
            f"{ratio:.2f}",
            f">= {TARGET_THROUGHPUT_RATIO:.2f}: {verdict(ok_tput)}",
        ),
        (
            f"bare CPU / create CPU per op at c={c} (own processes)",
            f"{bare_cpu:.0f} / {create_cpu:.0f} ms",
            f"{bare_cpu / create_cpu:.2f}",
            "CPU-bound estimate of the ratio above",
        ),
        (
            "create -> ACTIVE p50, 1 at a time (client, GET poll)",
            f"{create_p50:.1f} ms",
            "",
            f"< {TARGET_CREATE_P50_MS:.0f} ms: {verdict(ok_latency)}",
        ),
        (
            "create -> done p50, 1 at a time (client, no polling)",
            f"{create_lp_p50:.1f} ms",
            "",
            f"< {TARGET_CREATE_P50_MS:.0f} ms: {verdict(create_lp_p50 < TARGET_CREATE_P50_MS)}",
        ),
    ]
    # The targets, as ratios to the bare workflow timed in the same run (absolute times
    # here vary 2x from day to day): create p50 <= 0.8x, each power action p50 <= 0.75x.
    ok_ratio = create_lp_p50 / bare_p50 <= TARGET_CREATE_RATIO
    rows.append(
        (
            "create -> done p50 / bare p50 (both awaiting the wf)",
            f"{create_lp_p50:.1f} / {bare_p50:.1f} ms",
            f"{create_lp_p50 / bare_p50:.2f}x",
            f"<= {TARGET_CREATE_RATIO:.2f}x: {verdict(ok_ratio)}",
        )
    )
    ok_power = True
    for key, label, *_ in POWER_ACTIONS:
        p50 = pct(r[f"power_{key}"].latencies_ms, 50)
        ok = p50 / bare_p50 <= TARGET_POWER_RATIO
        ok_power = ok_power and ok
        rows.append(
            (
                f"{label} p50 / bare p50",
                f"{p50:.1f} / {bare_p50:.1f} ms",
                f"{p50 / bare_p50:.2f}x",
                f"<= {TARGET_POWER_RATIO:.2f}x: {verdict(ok)}",
            )
        )
    ok_moves = True
    for key, label in MOVES:
        p50 = pct(r[f"move_{key}"].latencies_ms, 50)
        ok = p50 / bare_p50 <= TARGET_MOVE_RATIO
        ok_moves = ok_moves and ok
        rows.append(
            (
                f"{label} p50 / bare p50",
                f"{p50:.1f} / {bare_p50:.1f} ms",
                f"{p50 / bare_p50:.2f}x",
                f"<= {TARGET_MOVE_RATIO:.2f}x: {verdict(ok)}",
            )
        )
    log(table(("comparison", "values", "ratio", "target"), rows))
    log(
        f"move targets (test driver: no disk content is copied): resize, confirm, migrate, "
        f"revert and rebuild p50 <= {TARGET_MOVE_RATIO:.2f}x bare "
        f"{'HOLD' if ok_moves else 'DO NOT HOLD'}"
    )
    log(
        f"ratio targets: create p50 <= {TARGET_CREATE_RATIO:.2f}x bare "
        f"{'HOLDS' if ok_ratio else 'DOES NOT HOLD'}; every power action p50 <= "
        f"{TARGET_POWER_RATIO:.2f}x bare {'HOLDS' if ok_power else 'DOES NOT HOLD'}"
    )
    log(
        f"targets: create->ACTIVE p50 < {TARGET_CREATE_P50_MS:.0f} ms one at a time "
        f"{'HOLDS' if ok_latency else 'DOES NOT HOLD'}; "
        f"create throughput at c={c} >= {TARGET_THROUGHPUT_RATIO:.0%} of bare "
        f"{'HOLDS' if ok_tput else 'DOES NOT HOLD'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=40, help="operations per series (default 40)")
    parser.add_argument("--concurrency", type=int, default=20, help="in flight (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up rounds (default 2)")
    parser.add_argument(
        "--poll-ms",
        type=float,
        default=5.0,
        help="GET poll interval, one-at-a-time runs (default 5)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the state dir (logs, databases) and print its path",
    )
    args = parser.parse_args()

    state_dir = Path(tempfile.mkdtemp(prefix="novaflow-bench-"))
    stack = Stack(
        state_dir=state_dir,
        hosts=HOSTS,
        api_port=free_port(),
        temporal_port=free_port(),
        ui_port=free_port(),
    )
    started = time.perf_counter()
    status = 0
    try:
        log(
            f"starting the stack in {state_dir} (API :{stack.api_port}, "
            f"Temporal :{stack.temporal_port})..."
        )
        stack.start()
        log(f"stack up in {time.perf_counter() - started:.1f} s")
        results = Results()
        asyncio.run(run(args, stack, results))
        report(args, results)
    except BaseException as error:  # noqa: BLE001  (report, then still stop everything)
        status = 1
        log(f"benchmark failed: {type(error).__name__}: {error}  (logs: {state_dir / 'logs'})")
        args.keep = True
    finally:
        stack.stop()
        if args.keep:
            log(f"state kept in {state_dir}")
        else:
            import shutil

            shutil.rmtree(state_dir, ignore_errors=True)
    log(f"total run time {time.perf_counter() - started:.1f} s")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # temporalio/sdk-python#300: the SDK may crash at interpreter exit


if __name__ == "__main__":
    main()
