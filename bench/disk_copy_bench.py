"""Disk copy benchmark: a move's disk copy between two real hosts (LibvirtHost.receive_disk:
the destination's compute worker pulls the file from the source's worker,
hypervisor/disk_transfer.py) against a plain `cp` of the same file on the same machine, in the
same run. The hosts are the two libvirt daemons of scripts/two-hosts.sh (set up here, and
removed at the end unless --keep); as in the two-host test tier, each side runs on its host
(in its namespaces): the source's disk server in host A, the copies timed in host B, so the
bytes cross the bridge between them.

    .venv/bin/python bench/disk_copy_bench.py [--mib 1024] [--rounds 5] [--keep]

The disk is a qcow2 volume of --mib MiB of random data (random: nothing compresses or is
skipped as a hole) in host A's pool. Each round copies it with both, alternating which goes
first, `sync` before each copy so that one copy's write-back does not slow the next, and times
each twice: until its bytes are on disk (a copy is done when the source's could be lost: the
target, >= 0.80 of cp) and until they are in the destination's page cache (where cp is a
memory copy). Prints MiB/s (median, best, worst) and the ratios of the medians.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from argparse import SUPPRESS
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hypervisor.disk_transfer import (  # noqa: E402
    DiskServer,
    DiskSource,
    default_listen,
    make_token,
    transfer_keys,
)
from hypervisor.libvirt_host import LibvirtHost, volume_name  # noqa: E402

SCRIPTS = REPO / "scripts"
TARGET = 0.80
KEY_VARIABLE = "NOVAFLOW_BENCH_DISK_KEY"  # the hosts' shared key (not on a command line)
POOL_DIR_ON_HOST = "/var/lib/libvirt/images/novaflow"  # the pool, inside a host's namespace


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


def serve(uri: str, pool: str, url_file: Path) -> None:
    """On host A: its compute worker's disk server, until killed."""
    keys = transfer_keys([bytes.fromhex(os.environ[KEY_VARIABLE])])
    with LibvirtHost(uri, pool=pool) as host:
        server = DiskServer(default_listen(uri), "a", host.disk_to_send, keys).start()
        url_file.write_text(server.url)
        threading.Event().wait()


def measure(args: argparse.Namespace) -> None:
    """On host B: the rounds, timed; prints the figures."""
    keys = transfer_keys([bytes.fromhex(os.environ[KEY_VARIABLE])])
    source = Path(args.source)
    size_mib = source.stat().st_size / 2**20
    copied_by_cp = Path(args.dest_dir) / "cp-copy.qcow2"
    image_id = str(uuid.uuid4())
    rates: dict[tuple[str, bool], list[float]] = defaultdict(list)
    with LibvirtHost(args.uri, pool=args.pool) as dest:

        def pulled() -> None:
            token = make_token(keys, args.server_id, "a")
            dest.receive_disk(args.server_id, DiskSource("a", args.url, token), 1, image_id)

        def plain_cp() -> None:
            shutil.copyfile(source, copied_by_cp)  # what `cp` does, without a process

        def clean() -> None:
            dest.delete_disk(args.server_id)
            copied_by_cp.unlink(missing_ok=True)

        copies = [("receive_disk", pulled), ("cp", plain_cp)]
        for round_ in range(args.rounds):
            for durable in (True, False):
                for name, work in copies if round_ % 2 == 0 else reversed(copies):
                    rates[name, durable].append(size_mib / timed(work, durable))
                clean()
        pulled()  # once more, to check its bytes
        same = filecmp.cmp(source, Path(args.dest_dir) / volume_name(args.server_id), False)
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

    print(f"disk: {size_mib:.0f} MiB qcow2 of random data, {args.rounds} rounds, host A -> B")
    for durable, title in ((True, "until on disk (sync)"), (False, "into the page cache")):
        print(f"copy {title}:")
        print(line("receive_disk", durable))
        print(line("cp", durable))
        print(f"  ratio receive_disk / cp: {ratio(durable):.2f}")
    print(f"copy byte-identical to the source: {'yes' if same else 'NO'}")
    verdict = "PASS" if ratio(True) >= TARGET else "FAIL"
    print(f"target: durable copy ratio >= {TARGET:.2f}: {ratio(True):.2f} {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the two hosts running")
    # The two halves, run on the hosts by the run itself:
    parser.add_argument("--serve", nargs=3, metavar=("URI", "POOL", "URL_FILE"), help=SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=SUPPRESS)
    for name in ("uri", "pool", "url", "server_id", "source", "dest_dir"):
        parser.add_argument(f"--{name.replace('_', '-')}", help=SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve[0], args.serve[1], Path(args.serve[2]))
    if args.measure:
        return measure(args)

    # The packages (and the machine's own daemons, stopped again at the end if it started them).
    machine = run("real-hypervisor.sh")
    facts = run("two-hosts.sh", "start")
    env = {**os.environ, KEY_VARIABLE: secrets.token_hex(32), "PYTHONPATH": str(REPO)}
    me = [sys.executable, str(Path(__file__).resolve())]
    server = None
    try:
        server_id = str(uuid.uuid4())
        make_disk(Path(facts["dir_a"]), volume_name(server_id), args.mib)
        subprocess.run(
            ["virsh", "-q", "-c", facts["uri_a"], "pool-refresh", facts["pool"]],
            check=True,
            capture_output=True,
        )
        with tempfile.TemporaryDirectory() as scratch:
            url_file = Path(scratch) / "url"
            server = subprocess.Popen(
                [
                    *on_host(facts, "a"),
                    *me,
                    "--serve",
                    facts["uri_a"],
                    facts["pool"],
                    str(url_file),
                ],
                env=env,
            )
            deadline = time.monotonic() + 60
            while not (url_file.exists() and url_file.read_text()):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the disk server on host A did not start")
                time.sleep(0.05)
            subprocess.run(
                [
                    *on_host(facts, "b"),
                    *me,
                    "--measure",
                    f"--rounds={args.rounds}",
                    f"--uri={facts['uri_b']}",
                    f"--pool={facts['pool']}",
                    f"--url={url_file.read_text()}",
                    f"--server-id={server_id}",
                    f"--source={Path(facts['dir_a']) / volume_name(server_id)}",
                    f"--dest-dir={POOL_DIR_ON_HOST}",
                ],
                env=env,
                check=True,
            )
    finally:
        if server is not None:
            server.kill()
            server.wait()
        if not args.keep:
            subprocess.run([str(SCRIPTS / "two-hosts.sh"), "stop"], check=False)
        if machine.get("started", "").strip():
            subprocess.run([str(SCRIPTS / "real-hypervisor.sh"), "stop"], check=False)


def on_host(facts: dict[str, str], host: str) -> list[str]:
    """The command prefix that runs a command on host a or b (scripts/two-hosts.sh)."""
    return ["nsenter", "-t", facts[f"pid_{host}"], "-n", "-m", "-u", f"--wd={REPO}"]


if __name__ == "__main__":
    main()
