"""What every scenario stands on: the run's settings, its own databases, topics and service processes,
the progress line, and CPU accounting.

Nothing here touches the developer's `make up` data: every database is `bench_<service>_<run>_<scenario>`,
every topic carries the prefix `bench-<run>-<scenario>.`, and all of them are removed when the
scenario ends, also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from bench.httpclient import Connection, HttpError
from contracts.topics import ALL_TOPICS
from deploy.local import stack
from loyalty_runtime import db
from loyalty_runtime.kafka import ensure_topics

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
MIGRATIONS = {name: ROOT / "services" / name / "migrations" for name in ("partners", "points", "redemption")}


@dataclass(frozen=True)
class Plan:
    """How much each scenario does; `quick()` for trying it out, `full()` meets the issue."""

    quick: bool
    members: int
    earn_events: int
    earn_warmup_s: float
    earn_window_s: float
    profile_s: float
    copy_events: int
    latency_warmup_s: float
    latency_window_s: float
    intake_s: float
    redemption_s: float
    small_history: int
    big_history: int
    balance_reads: int
    expiry_sizes: tuple[int, ...]
    earn_replicas: int = 1
    """Points processes in the earn scenario's consumer group; `make up` runs one."""
    import_rows: int = 1_000_000
    """Balance rows the import scenario generates and imports (`make import KIND=balances`)."""

    @classmethod
    def full(cls) -> Plan:
        return cls(
            quick=False, members=100_000, earn_events=600_000, earn_warmup_s=5, earn_window_s=60, profile_s=15,
            copy_events=200_000, latency_warmup_s=3, latency_window_s=30, intake_s=20, redemption_s=20,
            small_history=1_000, big_history=10_000_000, balance_reads=2_000, expiry_sizes=(1_000, 10_000, 100_000),
        )  # fmt: skip

    @classmethod
    def quick_run(cls) -> Plan:
        return cls(
            quick=True, members=20_000, earn_events=60_000, earn_warmup_s=2, earn_window_s=10, profile_s=5,
            copy_events=30_000, latency_warmup_s=1, latency_window_s=8, intake_s=5, redemption_s=5,
            small_history=1_000, big_history=100_000, balance_reads=300, expiry_sizes=(1_000, 10_000),
            import_rows=100_000,
        )  # fmt: skip


@dataclass
class Run:
    """One `make bench`: its id, where its files go, the infrastructure it uses."""

    plan: Plan
    run_id: str
    kafka: str = field(default_factory=lambda: stack.kafka_cluster().bootstrap)
    admin_dsn: str = field(default_factory=stack.database_admin_url)

    @property
    def directory(self) -> Path:
        return RESULTS / f"run-{self.run_id}"

    def dsn(self, database: str) -> str:
        return str(db.with_database(self.admin_dsn, database))


# --- progress ------------------------------------------------------------------------------


class Progress:
    """One updating status line per phase on stderr (a new line every few seconds when not a terminal)."""

    def __init__(self, stream: object = sys.stderr) -> None:
        self._stream = stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last_plain = 0.0

    def _write(self, text: str) -> None:
        print(text, end="", file=self._stream, flush=True)  # type: ignore[call-overload]

    def show(self, label: str, started: float, text: str, *, final: bool = False) -> None:
        line = f"[bench] {label}: {time.monotonic() - started:6.1f} s  {text}"
        if self._tty:
            self._write("\r\033[K" + line + ("\n" if final else ""))
        elif final or time.monotonic() - self._last_plain >= 5:
            self._last_plain = time.monotonic()
            self._write(line + "\n")

    def note(self, text: str) -> None:
        if self._tty:
            self._write("\r\033[K")
        self._write(f"[bench] {text}\n")

    @contextlib.asynccontextmanager
    async def phase(
        self, label: str, status: str | Callable[[], Awaitable[str] | str], every: float = 0.5
    ) -> AsyncIterator[None]:
        """Show `status()` every `every` seconds while the block runs, then once more as the phase's last line."""
        started = time.monotonic()

        async def text() -> str:
            got = status if isinstance(status, str) else status()
            return got if isinstance(got, str) else str(await got)

        async def tick() -> None:
            while True:
                with contextlib.suppress(Exception):  # a status that fails once must not stop the benchmark
                    self.show(label, started, await text())
                await asyncio.sleep(every)

        ticker = asyncio.create_task(tick())
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            final = "interrupted"
            with contextlib.suppress(Exception):
                final = await text()
            self.show(label, started, final, final=True)


PROGRESS = Progress()


# --- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            # Its own session: Ctrl-C reaches the benchmark, which stops the service in order.
            self.process = subprocess.Popen(
                [PYTHON, "-m", self.name, "serve"], env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    async def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        conn = Connection("127.0.0.1", self.port)
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log}")
                with contextlib.suppress(OSError, HttpError):
                    if (await conn.request("GET", "/ready")).status == 200:
                        return
                    conn.close()
                await asyncio.sleep(0.2)
        finally:
            conn.close()
        raise TimeoutError(f"{self.name} was not ready within {timeout:.0f} s; see {self.log}")

    async def stop(self, grace: float = 25.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait, 10)


@dataclass
class Stack:
    """One scenario's databases, topics and services; `async with Stack(...)` builds and removes it all."""

    run: Run
    scenario: str
    services: tuple[str, ...]
    databases: tuple[str, ...] = ()
    """Services whose database is needed without running the service (defaults to `services`)."""
    env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Extra environment per service, e.g. {"points": {"EXPIRY_INTERVAL_SECONDS": "86400"}}."""
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"bench-{self.run.run_id}-{self.scenario}."

    def database(self, service: str) -> str:
        return f"bench_{service}_{self.run.run_id}_{self.scenario}"

    def dsn(self, service: str) -> str:
        return self.run.dsn(self.database(service))

    def url(self, service: str) -> str:
        return self.processes[service].url

    async def __aenter__(self) -> Stack:
        try:
            await self.create()
        except BaseException:
            await self.remove()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.remove()

    async def create(self) -> None:
        for service in dict.fromkeys((*self.services, *self.databases)):
            await db.ensure_database(self.run.admin_dsn, self.database(service))
            await db.migrate(self.dsn(service), MIGRATIONS[service])
        cluster = stack.kafka_cluster()
        await ensure_topics(
            self.run.kafka,
            ALL_TOPICS,
            self.prefix,
            replication_factor=cluster.replication_factor,
            min_insync_replicas=cluster.min_insync_replicas,
        )

    def process(self, service: str, replica: int = 1) -> ServiceProcess:
        """The service's process (or its n-th replica, same database and consumer group), configured but not
        started: scenarios seed data first."""
        key = service if replica == 1 else f"{service}-{replica}"
        if key not in self.processes:
            port = free_port()
            env = {
                **os.environ,
                "DATABASE_URL": self.dsn(service),
                "KAFKA_BOOTSTRAP_SERVERS": self.run.kafka,
                "KAFKA_TOPIC_PREFIX": self.prefix,
                "HTTP_PORT": str(port),
                "CONSUMER_GROUP": f"bench-{self.run.run_id}-{self.scenario}-{service}",
                "PYTHONUNBUFFERED": "1",
                **self.env.get(service, {}),
            }
            log = self.run.directory / "logs" / f"{self.scenario}-{key}.log"
            self.processes[key] = ServiceProcess(service, port, env, log)
        return self.processes[key]

    async def start(self, *services: str, replicas: int = 1) -> None:
        """Start the services (all of this stack's by default) and wait until each answers /ready.

        A service runs as many processes as `make up` runs of it (deploy/local/stack.py PROCESSES_OF),
        sharing its port."""
        wanted = [self.process(s, n) for s in (services or self.services) for n in range(1, replicas + 1)]
        wanted += [sibling for first in wanted for sibling in self._siblings(first)]
        for service in wanted:
            if service.process is None:
                service.start()
        await asyncio.gather(*(s.wait_ready() for s in wanted))

    def _siblings(self, first: ServiceProcess) -> list[ServiceProcess]:
        """The other processes of `first`'s service on its port (SO_REUSEPORT), as `make up` runs them."""
        count = stack.PROCESSES_OF.get(first.name, 1)
        if count == 1 or first.process is not None:
            return []
        first.env["HTTP_REUSE_PORT"] = "true"
        siblings = []
        for n in range(2, count + 1):
            key = next(k for k, p in self.processes.items() if p is first) + f"#{n}"
            log = first.log.with_name(f"{first.log.stem}#{n}.log")
            siblings.append(self.processes.setdefault(key, ServiceProcess(first.name, first.port, first.env, log)))
        return siblings

    def pids(self, service: str) -> list[int]:
        """Every running process of the service, its siblings on the same port included."""
        return [p.pid for p in self.processes.values() if p.name == service and p.process is not None]

    def components(self) -> dict[str, list[int]]:
        """For measuring_cpu: the infrastructure's processes and each service's, by service."""
        return {**infrastructure_pids(), **{name: self.pids(name) for name in dict.fromkeys(self.services)}}

    async def remove(self) -> None:
        # Shielded: a second Ctrl-C must not leave databases and topics behind.
        await asyncio.shield(self._remove())

    async def _remove(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.processes.values()), return_exceptions=True)
        for service in dict.fromkeys((*self.services, *self.databases)):
            with contextlib.suppress(Exception):
                await db.drop_database(self.run.admin_dsn, self.database(service))
        with contextlib.suppress(Exception):
            await delete_topics(self.run.kafka, self.prefix)


async def delete_topics(kafka: str, prefix: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka, client_id="bench-admin")
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
        return doomed
    finally:
        await admin.close()


async def remove_leftovers(run: Run) -> tuple[list[str], list[str]]:
    """Databases and topics an interrupted earlier run left behind (`python -m bench --clean`)."""
    import asyncpg

    conn = await asyncpg.connect(run.admin_dsn)
    try:
        names = [
            r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_%'")
        ]
    finally:
        await conn.close()
    for name in names:
        await db.drop_database(run.admin_dsn, name)
    topics = await delete_topics(run.kafka, "bench-")
    return names, topics


# --- CPU accounting ------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _process_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def infrastructure_pids() -> dict[str, list[int]]:
    """Kafka's JVM and every PostgreSQL process of the local stack (empty when not ours to see)."""
    found: dict[str, list[int]] = {}
    kafka = stack.kafka_pids()
    if kafka:
        found["kafka"] = kafka
    postmaster = stack.PG_DATA / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(postmaster.read_text().splitlines()[0])
        found["postgres"] = [pid, *_children(pid)]
    return found


class CpuMeter:
    """CPU used per component over an interval, in cores (1.0 = one core busy all the time)."""

    def __init__(self, components: Mapping[str, list[int]]) -> None:
        self.components = {**components, "bench": [os.getpid()]}
        self._start: dict[str, dict[int, int]] = {}
        self._machine: tuple[int, int] = (0, 0)
        self._t0 = 0.0

    def _sample(self) -> dict[str, dict[int, int]]:
        ticks = {}
        for name, pids in self.components.items():
            if name == "postgres" and pids:  # backends come and go: count the current ones
                pids = [pids[0], *_children(pids[0])]
            ticks[name] = {pid: _process_ticks(pid) for pid in pids}
        return ticks

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._start = self._sample()
        self._machine = _machine_ticks()

    def stop(self) -> dict[str, float]:
        seconds = max(1e-9, time.monotonic() - self._t0)
        end = self._sample()
        busy, total = _machine_ticks()
        used: dict[str, float] = {}
        for name, pids in end.items():
            before = self._start.get(name, {})
            # A process that started meanwhile counts whole; one that ended meanwhile is lost (rare: pools stay).
            used[name] = sum(ticks - before.get(pid, 0) for pid, ticks in pids.items()) / CLOCK_TICKS / seconds
        machine = (busy - self._machine[0]) / max(1, total - self._machine[1]) * (os.cpu_count() or 1)
        used["other processes"] = max(0.0, machine - sum(used.values()))
        used["machine (all processes)"] = machine
        return {k: round(v, 2) for k, v in used.items()}


@contextlib.contextmanager
def measuring_cpu(components: Mapping[str, list[int]], into: dict[str, float]) -> Iterator[None]:
    meter = CpuMeter(components)
    meter.start()
    try:
        yield
    finally:
        into.update(meter.stop())
