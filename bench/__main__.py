"""python -m bench [--quick] [--only SCENARIO ...] [--clean]: run the benchmark, print the table."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sys
import time
import traceback
import uuid
from typing import Any

from bench import machine, profile, targets
from bench.harness import PROGRESS, RESULTS, Plan, Run, remove_leftovers
from bench.report import Report, table, verdict_lines
from bench.scenarios import earn, expiry, growth, imports, intake, latency, redemption

SCENARIOS = {module.NAME: module for module in (earn, latency, intake, redemption, growth, expiry, imports)}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short durations and small data, for trying it out")
    parser.add_argument(
        "--only", action="append", choices=sorted(SCENARIOS), metavar="SCENARIO",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )  # fmt: skip
    parser.add_argument("--earn-events", type=int, help="events to pre-produce for the earn scenario")
    parser.add_argument(
        "--earn-replicas", type=int, default=1, help="points processes sharing the earn topics (default 1, as make up)"
    )
    parser.add_argument("--clean", action="store_true", help="remove databases and topics an interrupted run left")
    return parser.parse_args(argv)


async def bench(options: argparse.Namespace) -> int:
    plan = Plan.quick_run() if options.quick else Plan.full()
    if options.earn_events:
        plan = dataclasses.replace(plan, earn_events=options.earn_events)
    plan = dataclasses.replace(plan, earn_replicas=max(1, options.earn_replicas))
    run = Run(plan, uuid.uuid4().hex[:8])
    if options.clean:
        databases, topics = await remove_leftovers(run)
        print(f"removed {len(databases)} databases and {len(topics)} topics left by earlier runs")
        return 0
    report = Report(machine=await machine.record(run.admin_dsn))
    report.machine.update(run_id=run.run_id, plan=dataclasses.asdict(plan))
    PROGRESS.note(machine.summary(report.machine))
    PROGRESS.note(f"run {run.run_id}: files in {run.directory.relative_to(RESULTS.parent.parent)}")
    chosen = options.only or list(SCENARIOS)
    failed = 0
    for name in chosen:
        started = time.monotonic()
        try:
            await SCENARIOS[name].run(run, report)
        except Exception as error:  # one scenario failing must not lose the others' figures
            failed += 1
            PROGRESS.note(f"{name} failed: {type(error).__name__}: {error}")
            report.notes.append(f"{name} failed: {type(error).__name__}: {error}")
            run.directory.mkdir(parents=True, exist_ok=True)
            (run.directory / f"{name}-error.txt").write_text(traceback.format_exc())
        report.details.setdefault(name, {})["scenario_seconds"] = round(time.monotonic() - started, 1)
    report.machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report.verdicts = targets.evaluate(report)
    written = report.write(RESULTS)
    (run.directory / "results.json").write_text(json.dumps(report.as_json(), indent=2, default=str) + "\n")
    print(closing(report))
    print(f"\nwritten to {written.relative_to(RESULTS.parent.parent)} (and {run.directory.name}/results.json)")
    return 1 if failed else 0


def closing(report: Report) -> str:
    parts = [f"\nmachine: {machine.summary(report.machine)}\n", table(report.results)]
    parts += ["\ntargets:", verdict_lines(report.verdicts)]
    earn_details: dict[str, Any] = report.details.get("earn", {})
    cpu = earn_details.get("cpu_cores_during_window")
    if cpu:
        parts.append("\nCPU during the earn window (cores): " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
    sessions = earn_details.get("database_sessions_during_window")
    if sessions:
        parts.append(
            "points' database sessions during the earn window (average count, not idle): "
            + ", ".join(f"{k} {v:.2f}" for k, v in sessions.items())
        )
    idle = report.details.get("latency", {}).get("idle_cpu_cores")
    if idle:
        parts.append("CPU of partners and points idle (cores): " + ", ".join(f"{k} {v:.2f}" for k, v in idle.items()))
    for scenario, what in (("earn", "points during earn ingestion"), ("intake", "partners during single purchases")):
        spots = report.details.get(scenario, {}).get("profile", {})
        if spots.get("top_own"):
            parts.append(f"\nprofile of {what} ({spots['file']}):")
            parts.append(
                profile.lines(
                    spots["samples"],
                    [profile.Hotspot(f, own, 0) for f, own in spots["top_own"]],
                    [profile.Hotspot(f, 0, total) for f, total in spots["top_total_project"]],
                )
            )
        elif spots.get("skipped"):
            parts.append(f"\nprofile of {what} skipped: {spots['skipped']}")
    if report.notes:
        parts += ["\nnotes:", *(f"  - {n}" for n in report.notes)]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)

    async def guarded() -> int:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await bench(options)

    try:
        return asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\n[bench] interrupted; its services, databases and topics were removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
