"""Latency benchmark for FilterScheduler.select.

Builds fleets of varied hosts (seeded random, so runs are comparable) and times a few hundred
scheduling decisions with varied request specs against each fleet. Prints p50/p95/p99
milliseconds per decision and decisions per second.

    .venv/bin/python bench/scheduler_bench.py [--decisions 300] [--seed 42]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import random
import statistics
import time
from dataclasses import dataclass

from novaflow.resources import Resources
from novaflow.scheduler import FilterScheduler, HostState, NoValidHost, RequestSpec

AZS = ("nova", "az1", "az2", "az3")
# (vcpus, memory_mb, disk_gb) of typical hypervisors
HOST_SHAPES = (
    (16, 65_536, 500),
    (32, 131_072, 1_000),
    (48, 196_608, 2_000),
    (64, 262_144, 2_000),
    (96, 393_216, 4_000),
    (128, 524_288, 8_000),
)
# (vcpus, memory_mb, disk_gb) of flavors, small ones more common
FLAVORS = (
    (1, 512, 1),
    (1, 2_048, 20),
    (2, 4_096, 40),
    (4, 8_192, 80),
    (8, 16_384, 160),
    (16, 65_536, 320),
    (2, 4_096, 0),  # boot from volume
)
FLAVOR_WEIGHTS = (20, 25, 25, 15, 8, 3, 4)
GROUP_POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


def build_hosts(n: int, rng: random.Random) -> list[HostState]:
    hosts: list[HostState] = []
    for i in range(n):
        vcpus, mem, disk = rng.choice(HOST_SHAPES)
        cpu_ratio = rng.choice((1.0, 2.0, 4.0, 4.0, 16.0))
        ram_ratio = rng.choice((1.0, 1.0, 1.5))
        fill = rng.random()  # how busy this host is
        instances = int(fill * vcpus)
        hosts.append(
            HostState(
                name=f"compute-{i:05d}",
                availability_zone=AZS[i % len(AZS)],
                enabled=rng.random() > 0.02,
                up=rng.random() > 0.01,
                arch="aarch64" if rng.random() < 0.1 else "x86_64",
                vcpus=vcpus,
                vcpus_used=int(fill * vcpus * cpu_ratio * rng.uniform(0.5, 1.0)),
                cpu_allocation_ratio=cpu_ratio,
                memory_mb=mem,
                memory_mb_used=int(fill * mem * ram_ratio * rng.uniform(0.6, 1.0)),
                ram_allocation_ratio=ram_ratio,
                disk_gb=disk,
                disk_gb_used=int(fill * disk * rng.uniform(0.3, 1.0)),
                disk_allocation_ratio=1.0,
                instance_count=instances,
            )
        )
    return hosts


def build_specs(n: int, host_names: list[str], rng: random.Random) -> list[RequestSpec]:
    specs: list[RequestSpec] = []
    for i in range(n):
        vcpus, mem, disk = rng.choices(FLAVORS, weights=FLAVOR_WEIGHTS)[0]
        image_properties: dict[str, str] = {}
        roll = rng.random()
        if roll < 0.1:
            image_properties["hw_architecture"] = rng.choice(("aarch64", "arm64"))
        elif roll < 0.3:
            image_properties["architecture"] = rng.choice(("x86_64", "amd64"))
        policy = rng.choice(GROUP_POLICIES) if rng.random() < 0.2 else None
        group_hosts = frozenset(rng.sample(host_names, 3)) if policy else frozenset()
        ignore_hosts = frozenset(rng.sample(host_names, 2)) if rng.random() < 0.1 else frozenset()
        specs.append(
            RequestSpec(
                server_id=f"server-{i}",
                resources=Resources(vcpus, mem, disk),
                availability_zone=rng.choice(AZS) if rng.random() < 0.3 else None,
                image_properties=image_properties,
                group_policy=policy,
                group_hosts=group_hosts,
                ignore_hosts=ignore_hosts,
            )
        )
    return specs


@dataclass(slots=True)
class Result:
    hosts: int
    decisions: int
    no_valid_host: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    per_second: float


def run(n_hosts: int, n_decisions: int, seed: int, scheduler: FilterScheduler) -> Result:
    rng = random.Random(seed)
    hosts = build_hosts(n_hosts, rng)
    specs = build_specs(n_decisions, [h.name for h in hosts], rng)
    for spec in specs[:20]:  # warm-up
        with contextlib.suppress(NoValidHost):
            scheduler.select(hosts, spec)
    timings: list[float] = []
    failures = 0
    gc.collect()
    started = time.perf_counter()
    for spec in specs:
        t0 = time.perf_counter()
        try:
            scheduler.select(hosts, spec)
        except NoValidHost:
            failures += 1
        timings.append((time.perf_counter() - t0) * 1000.0)
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(timings, n=100, method="inclusive")
    return Result(
        hosts=n_hosts,
        decisions=n_decisions,
        no_valid_host=failures,
        p50_ms=cuts[49],
        p95_ms=cuts[94],
        p99_ms=cuts[98],
        per_second=n_decisions / elapsed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=300)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    scheduler = FilterScheduler()
    print(f"scheduler: {scheduler!r}")
    for n_hosts in (100, 1_000, 10_000):
        r = run(n_hosts, args.decisions, args.seed, scheduler)
        print(
            f"hosts={r.hosts:>6}  decisions={r.decisions}  "
            f"p50={r.p50_ms:7.3f} ms  p95={r.p95_ms:7.3f} ms  p99={r.p99_ms:7.3f} ms  "
            f"{r.per_second:9.1f} decisions/s  (NoValidHost: {r.no_valid_host})"
        )


if __name__ == "__main__":
    main()
