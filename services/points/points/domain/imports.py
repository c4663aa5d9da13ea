"""Batch import of the old programme: its members, their balances as lots, and its purchase history.

The rules, in plain words:

- **Files.** CSV with a header row, or JSON lines (one object a line); told apart by the extension (`.csv`,
  `.jsonl`, `.ndjson`, `.json`), else by the content (a first character `{` is JSON lines). Columns are named
  as below; others are ignored. Line numbers in a report are the file's (the header is line 1).
- **members**: `legacy_id`, `display_name`, `identifiers` (`card:<token>` or `partner:<partner>:<ref>`, several
  joined by `;` in CSV, a list in JSON), `created_at` (optional). A member's id derives from its legacy id, so a
  rerun finds the same member. Identifiers are linked as ops link them, which claims what waits unclaimed for
  them; an identifier linked to another member refuses the whole row.
- **balances**: `member` (a legacy id, or an identifier linked to the member), `points`, `expires_at`, and
  optional `earned_at` and `lot_id`. Each row becomes one lot of the member with the row's own expiry, credited
  from the `migration` account. A row's key is its `lot_id`, else its member, expiry and earned_at: two rows of a
  file with one key are a duplicate. An expiry already past is refused (not booked as breakage: those points
  expired under the old programme, whose breakage is its own). A date without a time expires at the end of that
  day in the programme's time zone (settings.programme_zone); a time must carry its offset.
- **purchases**: `partner_id`, `customer_ref`, `purchase_id`, `amount_minor`, `currency`, `occurred_at`. History
  only: what they earned is in the migrated balances, so posting them through the earn path would count the
  points twice.
- **Idempotent per row.** Every row has an id derived from its kind and key (`row_cause`); the ledger's transfer
  ids and the import tables' keys make a rerun, or an overlapping file, change nothing. A row whose key was
  imported before with other values is refused as a conflict: the first import stands.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any

import orjson

# Fixed forever: imported members' ids and imported rows' causes derive from them.
_MEMBERS = uuid.UUID("6d1e3a57-9b2c-4f80-a4c1-2e7b5d9f0c13")
_ROWS = uuid.UUID("a3c95e21-7f04-4b6d-8e2a-91d0c4b7f658")

MAX_POINTS = 1_000_000_000
"""The most points one row may carry: anything above is a typo in an export, not a balance."""

_LEGACY_ID = re.compile(r"^[\x21-\x7e]{1,100}$")
_PARTNER = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_REF = re.compile(r"^[\x21-\x7e]{1,128}$")
_CARD = re.compile(r"^card:tok_[A-Za-z0-9]{8,64}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class Kind(StrEnum):
    MEMBERS = "members"
    BALANCES = "balances"
    PURCHASES = "purchases"


class Format(StrEnum):
    CSV = "csv"
    JSON_LINES = "jsonl"


class Refusal(StrEnum):
    """Why a row is not imported; each is a count in the report."""

    MALFORMED = "malformed"
    MISSING = "missing_field"
    BAD_VALUE = "bad_value"
    NEGATIVE_POINTS = "not_positive_points"
    EXPIRED = "already_expired"
    DUPLICATE = "duplicate_in_file"
    UNKNOWN_MEMBER = "unknown_member"
    IDENTIFIER_TAKEN = "identifier_taken"
    CONFLICT = "conflicts_with_earlier_import"


class FileFormatError(ValueError):
    """The file cannot be read as rows at all (no header, not CSV or JSON lines)."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    refusal: Refusal
    detail: str


@dataclass(frozen=True, slots=True)
class MemberRow:
    line: int
    legacy_id: str
    display_name: str
    identifiers: tuple[str, ...]
    created_at: datetime | None

    @property
    def member_id(self) -> uuid.UUID:
        return legacy_member_id(self.legacy_id)


@dataclass(frozen=True, slots=True)
class BalanceRow:
    line: int
    key: str
    member: str
    """A legacy id, or an identifier (`card:`/`partner:`)."""
    points: int
    expires_at: datetime
    earned_at: datetime | None

    @property
    def cause(self) -> uuid.UUID:
        return row_cause(Kind.BALANCES, self.key)


@dataclass(frozen=True, slots=True)
class PurchaseRow:
    line: int
    partner_id: str
    customer_ref: str
    purchase_id: str
    amount_minor: int
    currency: str
    occurred_at: datetime

    @property
    def identifier(self) -> str:
        return f"partner:{self.partner_id}:{self.customer_ref}"


Row = MemberRow | BalanceRow | PurchaseRow


def legacy_member_id(legacy_id: str) -> uuid.UUID:
    """The member id of the old programme's member `legacy_id`: the same on every run."""
    return uuid.uuid5(_MEMBERS, legacy_id)


def row_cause(kind: Kind, key: str) -> uuid.UUID:
    """The cause of what row `key` of `kind` does in the ledger (its transfer id derives from it)."""
    return uuid.uuid5(_ROWS, f"{kind.value}\x1f{key}")


def is_identifier(value: str) -> bool:
    if value.startswith("card:"):
        return _CARD.match(value) is not None
    if value.startswith("partner:"):
        _, partner, ref = [*value.split(":", 2), "", ""][:3]
        return _PARTNER.match(partner) is not None and _REF.match(ref) is not None
    return False


# --- reading -------------------------------------------------------------------------------


def detect_format(name: str, head: str) -> Format:
    """By the file name's extension, else by its first non-blank character."""
    lowered = name.lower()
    if lowered.endswith(".csv"):
        return Format.CSV
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return Format.JSON_LINES
    return Format.JSON_LINES if head.lstrip().startswith("{") else Format.CSV


Record = tuple[int, Mapping[str, Any] | None]
"""A line number and the row's fields; None when the line could not be read as a row."""


def records(lines: Iterable[str], fmt: Format) -> Iterator[Record]:
    """Every data row of the file with its line number, in file order."""
    if fmt is Format.CSV:
        yield from _csv_records(lines)
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield number, None
            continue
        yield number, value if isinstance(value, dict) else None


def _csv_records(lines: Iterable[str]) -> Iterator[Record]:
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise FileFormatError("the CSV file is empty: it needs a header row") from None
    if len(set(header)) != len(header) or not all(header):
        raise FileFormatError(f"the CSV header {header!r} has an empty or repeated column name")
    width = len(header)
    for values in reader:
        if not values:
            continue
        if len(values) != width:
            yield reader.line_num, None
            continue
        yield reader.line_num, dict(zip(header, values, strict=True))


# --- validating ----------------------------------------------------------------------------


class Invalid(Exception):
    def __init__(self, refusal: Refusal, detail: str) -> None:
        super().__init__(detail)
        self.refusal = refusal
        self.detail = detail


def _text(raw: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = raw.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Invalid(Refusal.MISSING, f"`{name}` is missing")
        return ""
    if not isinstance(value, str | int):
        raise Invalid(Refusal.BAD_VALUE, f"`{name}` must be text, not {type(value).__name__}")
    return str(value).strip()


def _integer(raw: Mapping[str, Any], name: str) -> int:
    value = raw.get(name)
    if isinstance(value, bool) or value is None or value == "":
        raise Invalid(Refusal.MISSING if value in (None, "") else Refusal.BAD_VALUE, f"`{name}` is missing")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
        return int(value)
    raise Invalid(Refusal.BAD_VALUE, f"`{name}` must be a whole number, not {value!r}")


def _moment(
    raw: Mapping[str, Any], name: str, zone: tzinfo, *, required: bool = True, end_of_day: bool = False
) -> datetime | None:
    """A timestamp with its offset, or a date: its start, or with `end_of_day` the next midnight, in `zone`."""
    text = _text(raw, name, required=required)
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if end_of_day else 0)
            return datetime.combine(day, time(), zone).astimezone(UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(Refusal.BAD_VALUE, f"`{name}` must be a date (2027-06-30) or a timestamp, not {text!r}") from None
    if moment.tzinfo is None:
        raise Invalid(Refusal.BAD_VALUE, f"`{name}` {text!r} has no UTC offset (write it as ...Z or ...+08:00)")
    return moment.astimezone(UTC)


@dataclass
class Validator:
    """Turns records into rows or refusals, remembering keys so that a second row with one key is refused."""

    kind: Kind
    now: datetime
    zone: tzinfo = UTC
    """Where a date's day begins and ends: the programme's time zone."""
    seen: set[str] = field(default_factory=set)
    identifiers: set[str] = field(default_factory=set)

    def check(self, line: int, raw: Mapping[str, Any] | None) -> Row | RowError:
        if raw is None:
            return RowError(line, Refusal.MALFORMED, "not a row: wrong number of fields, or not a JSON object")
        try:
            if self.kind is Kind.BALANCES:
                return self._balance(line, raw)
            if self.kind is Kind.MEMBERS:
                return self._member(line, raw)
            return self._purchase(line, raw)
        except Invalid as invalid:
            return RowError(line, invalid.refusal, invalid.detail)

    def _once(self, key: str, what: str) -> None:
        if key in self.seen:
            raise Invalid(Refusal.DUPLICATE, f"{what} appears on an earlier line of this file")
        self.seen.add(key)

    def _balance(self, line: int, raw: Mapping[str, Any]) -> BalanceRow:
        member = _text(raw, "member")
        if not (is_identifier(member) or (_LEGACY_ID.match(member) and not member.startswith(("card:", "partner:")))):
            raise Invalid(Refusal.BAD_VALUE, f"`member` {member[:60]!r} is neither a legacy id nor an identifier")
        points = _integer(raw, "points")
        if points <= 0:
            raise Invalid(Refusal.NEGATIVE_POINTS, f"`points` must be positive, not {points}")
        if points > MAX_POINTS:
            raise Invalid(Refusal.BAD_VALUE, f"`points` {points:,} is above the most one row may carry")
        expires_at = _moment(raw, "expires_at", self.zone, end_of_day=True)
        earned_at = _moment(raw, "earned_at", self.zone, required=False)
        assert expires_at is not None
        if expires_at <= self.now:
            raise Invalid(Refusal.EXPIRED, f"expired on {expires_at:%Y-%m-%d %H:%M} UTC, before the import")
        if earned_at is not None and (earned_at > self.now or earned_at >= expires_at):
            raise Invalid(Refusal.BAD_VALUE, "`earned_at` must be in the past and before `expires_at`")
        lot_id = _text(raw, "lot_id", required=False)
        if lot_id and not _LEGACY_ID.match(lot_id):
            raise Invalid(Refusal.BAD_VALUE, "`lot_id` must be 1 to 100 printable characters without spaces")
        key = lot_id or f"{member}|{expires_at.isoformat()}|{earned_at.isoformat() if earned_at else ''}"
        self._once(key, f"lot {lot_id!r}" if lot_id else "the same member, expiry and earned_at")
        return BalanceRow(line, key, member, points, expires_at, earned_at)

    def _member(self, line: int, raw: Mapping[str, Any]) -> MemberRow:
        legacy_id = _text(raw, "legacy_id")
        if not _LEGACY_ID.match(legacy_id) or legacy_id.startswith(("card:", "partner:")):
            raise Invalid(Refusal.BAD_VALUE, "`legacy_id` must be 1 to 100 printable characters without spaces")
        name = _text(raw, "display_name", required=False)
        if len(name) > 200:
            raise Invalid(Refusal.BAD_VALUE, "`display_name` is longer than 200 characters")
        identifiers = _identifiers(raw.get("identifiers"))
        created_at = _moment(raw, "created_at", self.zone, required=False)
        if created_at is not None and created_at > self.now:
            raise Invalid(Refusal.BAD_VALUE, "`created_at` is in the future")
        self._once(legacy_id, f"legacy id {legacy_id!r}")
        twice = sorted(set(identifiers) & self.identifiers)
        if twice:
            raise Invalid(Refusal.DUPLICATE, f"{twice[0]} belongs to a member of an earlier line of this file")
        self.identifiers.update(identifiers)
        return MemberRow(line, legacy_id, name, identifiers, created_at)

    def _purchase(self, line: int, raw: Mapping[str, Any]) -> PurchaseRow:
        partner, ref, purchase = _text(raw, "partner_id"), _text(raw, "customer_ref"), _text(raw, "purchase_id")
        if not _PARTNER.match(partner):
            raise Invalid(Refusal.BAD_VALUE, f"`partner_id` {partner[:60]!r} is not a partner slug")
        if not _REF.match(ref) or not _REF.match(purchase):
            raise Invalid(Refusal.BAD_VALUE, "`customer_ref` and `purchase_id` are 1 to 128 printable characters")
        amount = _integer(raw, "amount_minor")
        if amount <= 0:
            raise Invalid(Refusal.BAD_VALUE, f"`amount_minor` must be positive, not {amount}")
        currency = _text(raw, "currency")
        if not _CURRENCY.match(currency):
            raise Invalid(Refusal.BAD_VALUE, f"`currency` {currency[:10]!r} is not an ISO 4217 code")
        occurred_at = _moment(raw, "occurred_at", self.zone)
        assert occurred_at is not None
        if occurred_at > self.now:
            raise Invalid(Refusal.BAD_VALUE, "`occurred_at` is in the future")
        self._once(f"{partner}\x1f{purchase}", f"purchase {purchase!r} of {partner}")
        return PurchaseRow(line, partner, ref, purchase, amount, currency, occurred_at)


def _identifiers(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    items = value.split(";") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise Invalid(Refusal.BAD_VALUE, "`identifiers` must be a list of identifiers (joined by ; in CSV)")
    found = tuple(dict.fromkeys(i.strip() for i in items if i.strip()))
    bad = [i for i in found if not is_identifier(i)]
    if bad:
        raise Invalid(Refusal.BAD_VALUE, f"{bad[0][:60]!r} is not an identifier (card:tok_... or partner:<id>:<ref>)")
    if len(found) > 20:
        raise Invalid(Refusal.BAD_VALUE, "more than 20 identifiers for one member")
    return found


# --- the report ----------------------------------------------------------------------------


@dataclass
class Report:
    """What a run did (or, dry, would do): counts by outcome, the first errors, the points."""

    kind: Kind
    rows: int = 0
    imported: int = 0
    existing: int = 0
    """Rows imported by an earlier run (or an earlier part of this one): nothing to do."""
    refused: dict[Refusal, int] = field(default_factory=dict)
    points: int = 0
    """Points of the rows imported (or, dry, that would be)."""
    errors: list[RowError] = field(default_factory=list)
    keep_errors: int = 20

    def refuse(self, error: RowError) -> None:
        self.refused[error.refusal] = self.refused.get(error.refusal, 0) + 1
        if len(self.errors) < self.keep_errors:
            self.errors.append(error)

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    def lines(self) -> list[str]:
        out = [
            f"{self.kind.value}: {self.rows:,} rows: {self.imported:,} imported, {self.existing:,} already there, "
            f"{self.refused_total:,} refused",
        ]
        if self.kind is Kind.BALANCES:
            out.append(f"points: {self.points:,}")
        for refusal, count in sorted(self.refused.items()):
            out.append(f"  refused {refusal.value}: {count:,}")
        if self.errors:
            out.append(f"first {len(self.errors)} refusals:")
            out += [f"  line {e.line}: {e.refusal.value}: {e.detail}" for e in sorted(self.errors, key=_by_line)]
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value, "rows": self.rows, "imported": self.imported, "existing": self.existing,
            "refused": {k.value: v for k, v in sorted(self.refused.items())}, "points": self.points,
            "errors": [{"line": e.line, "refusal": e.refusal.value, "detail": e.detail} for e in self.errors],
        }  # fmt: skip


def _by_line(error: RowError) -> int:
    return error.line
