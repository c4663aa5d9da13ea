"""One chaos run, phase by phase: start a platform of its own, set up, load it under the nemesis, heal,
drain, wait for quiet, prove, report; and stop the platform whatever happens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from deploy.local.cluster import ROOT, Postgres, Processes
from deploy.local.fleet import Fleet
from tools.chaos.api import CardSystem, Platform, SetupError
from tools.chaos.load import RATES, Kind, Ledger, Load, Workload
from tools.chaos.nemesis import DEFAULT_GAP, Fault, Nemesis, Window, schedule
from tools.chaos.prove import prove, wait_quiet
from tools.chaos.report import result, write
from tools.chaos.setup import MEMBERS, PARTNERS, Cast, set_up
from tools.chaos.targets import FleetTargets
from tools.chaos.watch import StallWatch, log_progress, report_progress

log = logging.getLogger("chaos")

SERVICES = ("partners", "points", "redemption")
DRAIN_SECONDS = 120.0


@dataclass(frozen=True)
class Options:
    seed: int
    seconds: float
    brokers: int = 3
    home: Path | None = None
    keep: bool = False
    gap: tuple[float, float] = DEFAULT_GAP
    rate: float = 1.0
    at_least: int = 0
    """Faults the run injects however long heals take (the load window stretches for them)."""
    quiet_timeout: float = 180.0

    @property
    def directory(self) -> Path:
        return self.home or ROOT / ".local" / "chaos" / str(self.seed)

    def faults(self, fleet: Fleet) -> list[Fault]:
        nodes = [node.name for node in fleet.kafka.nodes]
        return schedule(self.seed, self.seconds, nodes, list(fleet.services), self.gap)

    def stock(self) -> int:
        """Units per voucher: a little less than the orders expected, so that some sell out."""
        expected = RATES[Kind.ORDER] * self.rate * self.seconds / len(PARTNERS)
        return max(10, int(0.7 * expected))

    def claim_cap(self) -> int:
        expected = RATES[Kind.CLAIM] * self.rate * self.seconds
        return max(5, min(MEMBERS - 10, int(0.6 * expected)))


class Phases:
    """Logs the start and end of each phase, and keeps how long each took."""

    def __init__(self) -> None:
        self.durations: dict[str, float] = {}

    @contextlib.asynccontextmanager
    async def __call__(self, name: str, **details: Any) -> AsyncIterator[None]:
        log.info("phase", extra={"phase": name, "step": "begin", **details})
        started = time.monotonic()
        try:
            yield
        finally:
            self.durations[name] = round(time.monotonic() - started, 1)
            log.info("phase", extra={"phase": name, "step": "end", "took_s": self.durations[name]})


async def chaos(options: Options) -> dict[str, Any]:
    """The whole run; returns the result document (also written to <home>/result.json)."""
    home = fresh_home(options.directory)
    secret = secrets.token_urlsafe(32)
    fleet = Fleet(home, kafka_nodes=options.brokers, services=SERVICES, env={"JWT_SECRET": secret})
    faults = options.faults(fleet)
    write({"seed": options.seed, "faults": [f.as_json() for f in faults]}, home / "schedule.json")
    log.info("schedule", extra={"seed": options.seed, "faults": [f.describe() for f in faults]})
    phases = Phases()
    stop_on_sigterm()
    try:
        async with phases("start", home=str(home), brokers=options.brokers):
            await fleet.start()
        document = await exercise(options, fleet, faults, phases, secret)
    finally:
        async with phases("stop"):
            await fleet.stop()
        if not options.keep:
            remove_data(home)
    document["durations_s"] = phases.durations
    write(document, home / "result.json")
    return document


async def exercise(options: Options, fleet: Fleet, faults: list[Fault], phases: Phases, secret: str) -> dict[str, Any]:
    platform = Platform({name: fleet.url(name) for name in fleet.services}, secret)
    cards = CardSystem(fleet.kafka.bootstrap)
    since = datetime.now(UTC)
    load: Load | None = None
    try:
        async with phases("setup"):
            cast = await set_up(platform, options.seed, options.stock(), options.claim_cap())
            load = Load(platform, cards, Workload(options.seed, cast, Ledger()), rate=options.rate)
            await grant_starting_points(load, fleet.dsn("points"), cast)
        targets = FleetTargets(fleet)
        nemesis = Nemesis(targets, faults, at_least=options.at_least)
        watch = await under_fire(options, fleet, load, nemesis, phases)
        async with phases("heal"):
            await targets.heal_everything()
        async with phases("drain", in_flight=load.in_flight):
            await load.drain(DRAIN_SECONDS)
        return await conclude(options, fleet, platform, cast, load, nemesis, watch, phases, since)
    finally:
        if load is not None:
            await load.stop()
        await cards.close()
        await platform.close()


async def under_fire(options: Options, fleet: Fleet, load: Load, nemesis: Nemesis, phases: Phases) -> StallWatch:
    """The load window: requests at a steady rate, the nemesis' faults, the earn-stall sampler, progress lines."""
    watch = StallWatch(fleet.dsn("points"), load.ledger, nemesis)
    async with phases("load", seconds=options.seconds, rate=options.rate):
        origin = time.monotonic()
        window = Window(origin + options.seconds)
        await asyncio.gather(
            load.run(window), nemesis.run(window), watch.run(origin, window),
            report_progress(load, nemesis, watch, origin, window),
        )  # fmt: skip
        log_progress(load, nemesis, watch, origin)
    return watch


async def conclude(
    options: Options, fleet: Fleet, platform: Platform, cast: Cast, load: Load, nemesis: Nemesis, watch: StallWatch,
    phases: Phases, since: datetime,
) -> dict[str, Any]:  # fmt: skip
    dsns = {name: fleet.dsn(name) for name in fleet.services}
    async with phases("quiet"):
        quiet = await wait_quiet(dsns, fleet.kafka.bootstrap, load.ledger, cast.activity_id, options.quiet_timeout)
    async with phases("check"):
        proof = await prove(quiet, load.ledger, dsns, platform, cast.claim_cap, since)
        proof.unhealed = [f"{i.fault.describe()}: {i.error}" for i in nemesis.unhealed()]
    settings = {**asdict(options), "home": str(options.directory), "gap": list(options.gap)}
    stalls = {"earn": watch.earn.longest, "intake": watch.intake.longest}
    return result(settings, list(nemesis.faults), nemesis.injected, load.ledger, proof, stalls, {})


async def grant_starting_points(load: Load, points_dsn: str, cast: Cast, timeout: float = 120.0) -> None:
    """One purchase per member, then wait until the ledger has them all (before any fault)."""
    starting = load.workload.starting_points()
    try:
        async with asyncio.timeout(timeout):
            await load.send_all(starting)
    except TimeoutError:
        raise SetupError(f"starting purchases got no answer within {timeout:.0f} s; see the partners log") from None
    refused = [r.key for r in starting if r.status != 202]
    if refused:
        raise SetupError(f"starting purchases were refused: {refused[:3]}; see the partners log")
    keys = [f"partner:{r.fields['partner_id']}:{r.key}" for r in starting]
    deadline = time.monotonic() + timeout
    conn = await asyncpg.connect(points_dsn)
    try:
        while await conn.fetchval("SELECT count(*) FROM earnings WHERE source_key = ANY($1)", keys) < len(keys):
            if time.monotonic() > deadline:
                raise SetupError(f"the starting points were not all applied within {timeout:.0f} s; see the points log")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def fresh_home(home: Path) -> Path:
    """A clean directory for the run: what an earlier run left there (processes too) goes."""
    kill_leftovers(home)
    for part in ("kafka", "pg", "run", "logs", "result.json", "schedule.json"):
        path = home / part
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    return home


def kill_leftovers(home: Path) -> None:
    """Stop what an interrupted earlier run in this directory left running, through its own pid files."""
    processes = Processes(home / "run", home / "logs")
    for pid_file in sorted((home / "run").glob("*.pid")):
        processes.stop(pid_file.stem, timeout=10)
    if (home / "pg" / "postmaster.pid").exists():
        Postgres(home / "pg", port=0).stop()


def remove_data(home: Path) -> None:
    """Keep the logs, the schedule and the result; the brokers' and the database's data go."""
    for part in ("kafka", "pg", "run"):
        shutil.rmtree(home / part, ignore_errors=True)


def stop_on_sigterm() -> None:
    """SIGTERM stops the run like Ctrl-C: the platform is stopped on the way out."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
