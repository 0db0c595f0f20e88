"""Disk copy benchmark: a move's disk copy between two real hosts (LibvirtHost.receive_disk: a
download stream from the source host's libvirt daemon, an upload stream into the destination's,
relayed by the destination's compute worker) against a plain `cp` of the same file on the same
machine, in the same run. The hosts are the two libvirt daemons of scripts/two-hosts.sh (set up
here, and removed at the end unless --keep).

    .venv/bin/python bench/disk_copy_bench.py [--mib 512] [--rounds 5] [--keep]

The disk is a qcow2 volume of --mib MiB of random data (random: nothing compresses or is
skipped as a hole) in host A's pool. Each round copies it with both, alternating which goes
first, `sync` before each copy so that one copy's write-back does not slow the next, and times
each twice: until its bytes are on disk (a copy is done when the source's could be lost: the
target, >= 0.80 of cp) and until they are in the destination's page cache (where cp is a
memory copy, and the streams' relay through two daemons and the worker shows). Prints MiB/s
(median, best, worst) and the ratios of the medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hypervisor.libvirt_host import LibvirtHost, volume_name  # noqa: E402

SCRIPTS = REPO / "scripts"
TARGET = 0.80


def run(script: str, *args: str) -> dict[str, str]:
    """Run one of scripts/; its key=value lines."""
    result = subprocess.run([str(SCRIPTS / script), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{script} {' '.join(args)}: exit {result.returncode}\n{result.stderr}")
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def make_disk(directory: Path, name: str, mib: int) -> Path:
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "random.raw"
        with raw.open("wb") as out:
            for _ in range(mib):
                out.write(os.urandom(1024 * 1024))
        disk = directory / name
        subprocess.run(
            ["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(disk)],
            check=True,
        )
    return disk


def timed(work: Callable[[], None], durable: bool) -> float:
    """Seconds `work` takes (with `durable`: until its writes are on disk, which is when a
    host could lose the source's copy)."""
    os.sync()
    started = time.perf_counter()
    work()
    if durable:
        os.sync()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the two hosts running")
    args = parser.parse_args()

    # The packages (and the machine's own daemons, stopped again at the end if it started them).
    machine = run("real-hypervisor.sh")
    facts = run("two-hosts.sh", "start")
    try:
        server_id = str(uuid.uuid4())
        image_id = str(uuid.uuid4())
        source = make_disk(Path(facts["dir_a"]), volume_name(server_id), args.mib)
        subprocess.run(
            ["virsh", "-q", "-c", facts["uri_a"], "pool-refresh", facts["pool"]],
            check=True,
            capture_output=True,
        )
        size_mib = source.stat().st_size / 2**20
        copied_by_cp = Path(facts["dir_b"]) / "cp-copy.qcow2"
        rates: dict[tuple[str, bool], list[float]] = defaultdict(list)
        with LibvirtHost(facts["uri_b"], pool=facts["pool"]) as dest:

            def stream_copy() -> None:
                dest.receive_disk(server_id, facts["uri_a"], 1, image_id)

            def plain_cp() -> None:
                shutil.copyfile(source, copied_by_cp)  # what `cp` does, without a process

            def clean() -> None:
                dest.delete_disk(server_id)
                copied_by_cp.unlink(missing_ok=True)

            copies = [("receive_disk", stream_copy), ("cp", plain_cp)]
            for round_ in range(args.rounds):
                for durable in (True, False):
                    for name, work in copies if round_ % 2 == 0 else reversed(copies):
                        rates[name, durable].append(size_mib / timed(work, durable))
                    clean()
            stream_copy()  # once more, to check its bytes
            same = subprocess.run(
                ["cmp", str(source), str(Path(facts["dir_b"]) / volume_name(server_id))],
                capture_output=True,
            )
            clean()

        def line(name: str, durable: bool) -> str:
            found = rates[name, durable]
            return (
                f"  {name:<14} median {statistics.median(found):7.1f} MiB/s  "
                f"best {max(found):7.1f}  worst {min(found):7.1f}"
            )

        def ratio(durable: bool) -> float:
            medians = [statistics.median(rates[name, durable]) for name, _ in copies]
            return medians[0] / medians[1]

        print(f"disk: {size_mib:.0f} MiB qcow2 of random data, {args.rounds} rounds")
        for durable, title in ((True, "until on disk (sync)"), (False, "into the page cache")):
            print(f"copy {title}:")
            print(line("receive_disk", durable))
            print(line("cp", durable))
            print(f"  ratio receive_disk / cp: {ratio(durable):.2f}")
        identical = "yes" if same.returncode == 0 else "NO"
        print(f"stream copy byte-identical to the source: {identical}")
        verdict = "PASS" if ratio(True) >= TARGET else "FAIL"
        print(f"target: durable copy ratio >= {TARGET:.2f}: {ratio(True):.2f} {verdict}")
    finally:
        if not args.keep:
            subprocess.run([str(SCRIPTS / "two-hosts.sh"), "stop"], check=False)
        if machine.get("started", "").strip():
            subprocess.run([str(SCRIPTS / "real-hypervisor.sh"), "stop"], check=False)


if __name__ == "__main__":
    main()
