"""Partner intake: signed purchase requests per second, one purchase per request and 1,000 per batch.

Closed loop: each client sends its next signed request as soon as the last one is answered, for a fixed
time; a request counts when answered 202 (the partners service answers once Kafka confirmed every event).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import orjson

from bench import profile
from bench.clients import Partner, purchase, register_partner
from bench.harness import PROGRESS, Run, Stack, measuring_cpu
from bench.httpclient import HttpError, Pool
from bench.report import Report, Result
from bench.stats import rate, summary

NAME = "intake"
SINGLE_CLIENTS = 32
BATCH_CLIENTS = 4
BATCH_SIZE = 1_000


async def run(run: Run, report: Report) -> None:
    details: dict[str, Any] = report.details.setdefault(NAME, {})
    async with Stack(run, NAME, services=("partners",)) as stack:
        await stack.start()
        pool = Pool(stack.url("partners"), SINGLE_CLIENTS)
        try:
            partner = await register_partner(pool, "benchmall")
            components = stack.components()
            single = await closed_loop(pool, partner, SINGLE_CLIENTS, 1, run.plan.intake_s, components)
            batch = await closed_loop(pool, partner, BATCH_CLIENTS, BATCH_SIZE, run.plan.intake_s, components)
            # Profiled apart from the measured runs, so the sampler's own cost stays out of the figures; the first
            # of partners' processes (they share the port and the load).
            output = run.directory / "profile-partners-intake.txt"
            profiling = asyncio.create_task(profile.record(stack.pids("partners")[0], run.plan.profile_s, output))
            await closed_loop(pool, partner, SINGLE_CLIENTS, 1, run.plan.profile_s + 1, components, "profiling")
            details["profile"] = profile.summary(output, await profiling)
        finally:
            pool.close()
    details.update(single=single, batch=batch)
    report.add(
        [
            Result("intake: single purchases", single["requests_per_s"], "requests/s",
                   note=f"{SINGLE_CLIENTS} clients; p99 {single['request_ms']['p99']:.0f} ms"),
            Result("intake: batches of 1,000", batch["purchases_per_s"], "purchases/s",
                   note=f"{batch['requests_per_s']:.1f} batches/s, {BATCH_CLIENTS} clients; "
                        f"p99 {batch['request_ms']['p99']:.0f} ms"),
        ]
    )  # fmt: skip


async def closed_loop(
    pool: Pool,
    partner: Partner,
    clients: int,
    size: int,
    seconds: float,
    components: dict[str, list[int]],
    purpose: str = "",
) -> dict[str, Any]:
    path = partner.purchases_path if size == 1 else partner.purchases_path + "/batch"
    accepted = [0]
    errors: dict[str, int] = defaultdict(int)
    latencies: list[float] = []
    counter = [0]
    deadline = time.monotonic() + seconds

    def body() -> bytes:
        counter[0] += size
        # Keys of their own per run (the profiling run too): a key sent again would be a 409, not an intake.
        items = [purchase(f"in-{size}{purpose}-{counter[0] + i}", f"c{(counter[0] + i) % 100_000:07d}", 12_300)
                 for i in range(size)]  # fmt: skip
        return orjson.dumps(items[0] if size == 1 else {"purchases": items})

    async def client() -> None:
        async with pool.connection() as conn:
            while time.monotonic() < deadline:
                payload = body()
                sent = time.perf_counter()
                try:
                    answer = await conn.request("POST", path, payload, partner.signed(path, payload))
                except (HttpError, OSError) as error:
                    errors[type(error).__name__] += 1
                    continue
                if answer.status == 202:
                    accepted[0] += 1
                    latencies.append((time.perf_counter() - sent) * 1000)
                else:
                    errors[str(answer.status)] += 1

    started = time.monotonic()
    label = "intake: single purchases" if size == 1 else f"intake: batches of {size:,}"
    label += f" ({purpose})" if purpose else ""
    cpu: dict[str, float] = {}
    async with PROGRESS.phase(
        label, lambda: f"{accepted[0]:,} requests accepted ({rate(accepted[0], time.monotonic() - started):,.1f}/s)"
    ):
        with measuring_cpu(components, cpu):
            await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.monotonic() - started
    return {
        "clients": clients, "seconds": round(elapsed, 1), "requests": accepted[0],
        "requests_per_s": rate(accepted[0], elapsed), "purchases_per_s": rate(accepted[0] * size, elapsed),
        "request_ms": summary(latencies), "errors": dict(errors), "cpu_cores": cpu,
    }  # fmt: skip
