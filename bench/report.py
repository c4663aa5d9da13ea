"""The results table (stdout) and bench/results/latest.json: one row per figure."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Result:
    """One figure. `limit` is a ceiling measured in the same run; `ratio` = value / limit."""

    name: str
    value: float
    unit: str
    limit: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.limit is None or not self.limit or math.isnan(self.value):
            return None
        return self.value / self.limit

    def as_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"name": self.name, "value": _finite(self.value), "unit": self.unit}
        if self.limit is not None:
            row["limit"] = _finite(self.limit)
            row["ratio"] = None if self.ratio is None else round(self.ratio, 4)
        if self.note:
            row["note"] = self.note
        return row


@dataclass(frozen=True)
class Verdict:
    """A target of the issue (or a goal of DESIGN.md) judged against this run."""

    target: str
    met: bool | None
    """None when the run did not measure it."""
    detail: str
    source: str = "issue 6"


@dataclass
class Report:
    machine: dict[str, Any] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    """Per scenario: what a row alone cannot say (CPU shares, counts, settings)."""
    notes: list[str] = field(default_factory=list)

    def add(self, results: Iterable[Result]) -> None:
        self.results.extend(results)

    def find(self, name: str) -> Result | None:
        return next((r for r in self.results if r.name == name), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "scenarios": [r.as_json() for r in self.results],
            "targets": [asdict(v) for v in self.verdicts],
            "details": self.details,
            "notes": self.notes,
        }

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        latest = directory / "latest.json"
        latest.write_text(json.dumps(self.as_json(), indent=2, default=str) + "\n")
        return latest


def _finite(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else round(value, 3)


def number(value: float | None) -> str:
    """Readable figures: thousands separators from 100 up, three significant digits below."""
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(results: Sequence[Result]) -> str:
    """A plain-text table: scenario, value, unit, limit, ratio, note."""
    header = ("scenario", "value", "unit", "limit", "ratio", "note")
    rows = [
        (
            r.name,
            number(r.value),
            r.unit,
            number(r.limit),
            "-" if r.ratio is None else f"{r.ratio:.0%}",
            r.note,
        )
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    right = {1, 3, 4}

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def verdict_lines(verdicts: Sequence[Verdict]) -> str:
    marks = {True: "met   ", False: "MISSED", None: "n/a   "}
    return "\n".join(f"  {marks[v.met]}  {v.target} ({v.source}): {v.detail}" for v in verdicts)
