"""Where the time goes: py-spy samples a running service; its collapsed stacks give own and total time."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.harness import ROOT

_LINE = re.compile(r":\d+\)$")


@dataclass(frozen=True)
class Hotspot:
    function: str
    """'name (file)', the line number dropped so that one function is one row."""
    own: float
    """Share of the samples in which it was the running frame."""
    total: float
    """Share of the samples in which it was on the stack."""


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


async def record(pid: int, seconds: float, output: Path, rate: int = 100) -> str | None:
    """Sample `pid` for `seconds` into `output` (collapsed stacks); returns why not, or None when done."""
    binary = py_spy()
    if binary is None:
        return "py-spy is not installed (it is pinned in requirements/dev.txt: run `make venv`)"
    output.parent.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        binary, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate),
        "--format", "raw", "--output", str(output), "--nonblocking",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await process.communicate()
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0 or not await asyncio.to_thread(output.exists):
        return f"py-spy failed ({process.returncode}): {out.decode(errors='replace')[-300:].strip()}"
    return None


def _frame(frame: str) -> str:
    return _LINE.sub(")", frame.strip())


def hotspots(collapsed: str, count: int = 10) -> tuple[int, list[Hotspot], list[Hotspot]]:
    """(samples, top `count` by own time, top `count` of the project's own code by total time)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, weight = line.rpartition(" ")
        if not stack or not weight.isdigit():
            continue
        n = int(weight)
        frames = [_frame(f) for f in stack.split(";")]
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    if not samples:
        return 0, [], []

    def spot(name: str) -> Hotspot:
        return Hotspot(name, own[name] / samples, total[name] / samples)

    ours = ("points/", "loyalty_runtime/", "contracts/", "partners/", "redemption/")
    project = [name for name, _ in total.most_common() if any(part in name for part in ours)]
    return samples, [spot(name) for name, _ in own.most_common(count)], [spot(name) for name in project[:count]]


STAGES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("outbox relay", (("run", "loyalty_runtime/outbox.py"), ("relay_once", "loyalty_runtime/outbox.py"))),
    ("decode", (("__call__", "loyalty_runtime/consumer.py"), ("decode", "contracts/"))),
    ("outbox rows", (("", "loyalty_runtime/outbox.py"), ("", "ledger_events.py"))),
    ("SQL", (("", "asyncpg/"), ("", "/adapters/"), ("", "loyalty_runtime/db.py"), ("", "loyalty_runtime/inbox.py"))),
    ("plan", (("", "/domain/"), ("", "/handlers/"), ("", "points/consumers.py"), ("", "loyalty_runtime/consumer.py"))),
    ("Kafka client", (("", "aiokafka/"),)),
    ("FastStream", (("", "faststream/"),)),
)
"""Where an earn batch's Python time goes: the first stage (in this order) with a marker, (function, file part),
that a sampled stack holds: the relay's own loop, decoding records into events, the ledger events and outbox
rows a batch writes, building and running its SQL (asyncpg's client side), the domain and handler logic that
plans it, the Kafka client's fetching, FastStream's own code; `event loop` for uvloop's own work, `idle` when
a pure-Python loop waits in its selector."""


def _has(frames: list[tuple[str, str]], function: str, file_part: str) -> bool:
    """Whether a frame runs `function` (py-spy names it Class.function) in a file whose path holds `file_part`."""
    return any(file_part in where and (not function or name.rpartition(".")[2] == function) for name, where in frames)


def stage_of(stack: list[str]) -> str:
    frames = [(name.strip(), where) for name, _, where in (frame.partition(" (") for frame in stack)]
    if frames and "selectors.py" in frames[-1][1]:
        return "idle"
    if frames and frames[-1][0] == "Runner.run":
        return "event loop"  # uvloop's own C code (its callbacks and socket work) under asyncio.run
    for stage, markers in STAGES:
        if any(_has(frames, function, file_part) for function, file_part in markers):
            return stage
    return "other"


def stages(collapsed: str) -> dict[str, float]:
    """Each stage's share of the samples (see STAGES), largest first."""
    counts: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, weight = line.rpartition(" ")
        if stack and weight.isdigit():
            counts[stage_of(stack.split(";"))] += int(weight)
    total = sum(counts.values())
    return {stage: n / total for stage, n in counts.most_common()} if total else {}


def summary(output: Path, failed: str | None) -> dict[str, object]:
    """What a results file keeps of a profile: the file, the sample count and the top functions."""
    if failed:
        return {"skipped": failed}
    samples, top_own, top_total = hotspots(output.read_text())
    return {
        "file": str(output.relative_to(ROOT)) if output.is_relative_to(ROOT) else str(output),
        "samples": samples,
        "top_own": [(h.function, round(h.own, 4)) for h in top_own],
        "top_total_project": [(h.function, round(h.total, 4)) for h in top_total],
        "stages": {stage: round(share, 4) for stage, share in stages(output.read_text()).items()},
    }


def lines(samples: int, top_own: list[Hotspot], top_total: list[Hotspot]) -> str:
    out = [f"  {samples:,} samples; top functions by own time (share of samples where the function itself ran):"]
    out += [f"    {h.own:6.1%}  {h.function}" for h in top_own]
    out.append("  the project's own functions by total time (share of samples with the function on the stack):")
    out += [f"    {h.total:6.1%}  {h.function}" for h in top_total]
    return "\n".join(out)
