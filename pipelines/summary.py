"""What one run did, in a form for people (the default) and for machines (`as_dict`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class QualityCheck:
    """One data-quality check after a load: how many rows or customers it found (0 is good)."""

    name: str
    """Stable key, for machines and the run history."""
    label: str
    """What was counted, for people."""
    count: int


@dataclass
class RunSummary:
    warehouse: str
    since: str
    """The `since` segment that was sent to the API."""
    cursor_before: datetime | None
    cursor_after: datetime | None
    customers_received: int = 0
    rows_per_table: dict[str, int] = field(default_factory=dict)
    duration_seconds: float = 0.0
    load_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Things the operator should know that did not fail the run."""
    warnings: list[str] = field(default_factory=list)
    """What went wrong without failing the run: its data and cursor are committed (the views not
    refreshed, records stamped in the future)."""
    full_backfill: bool = False
    """The run asked for every customer: no cursor (first run or --full-refresh), no
    `initial_since`, no `--since`."""
    quality_checks: list[QualityCheck] = field(default_factory=list)
    """Findings of the data-quality checks after the load: warnings, never failures."""
    pii: str = "keep"
    """How personal data was handled: keep, pseudonymize or drop."""
    maintenance: str | None = None
    """A DuckLake's maintenance after the load: what it left, for people."""
    late_arrivals: int | None = None
    """Records stamped before the cursor the run started from that the warehouse did not hold
    (see `trigg/arrivals.py`); None when not measured (a first run)."""
    max_lateness_minutes: float | None = None
    """How much older than that cursor the latest of them was."""

    def as_dict(self) -> dict[str, Any]:
        summary = asdict(self)
        for key in ("cursor_before", "cursor_after"):
            summary[key] = _iso(summary[key])
        return summary

    def headline(self) -> str:
        return (
            f"trigg run: {self.customers_received} customers received,"
            f" loaded into {self.warehouse} in {self.duration_seconds:.1f} s"
        )

    def render(self) -> str:
        cursor_moved = "" if self.cursor_after != self.cursor_before else " (unchanged)"
        backfill = " (a full backfill: every customer)" if self.full_backfill else ""
        lines = [
            self.headline(),
            f"  since asked   {self.since}{backfill}",
            f"  cursor        {_iso(self.cursor_before) or 'none'}"
            f" -> {_iso(self.cursor_after) or 'none'}{cursor_moved}",
            "  rows written  " + (_rows(self.rows_per_table) or "none"),
        ]
        if self.late_arrivals is not None:
            lines.append(
                f"  late arrivals {_lateness(self.late_arrivals, self.max_lateness_minutes)}"
            )
        lines.extend(_checks(self.quality_checks))
        if self.pii != "keep":
            lines.append(f"  personal data {self.pii}")
        lines.extend(f"  warning       {warning}" for warning in self.warnings)
        if self.maintenance:
            lines.append(f"  maintenance   {self.maintenance}")
        lines.extend(f"  note          {note}" for note in self.notes)
        return "\n".join(lines)


def _lateness(count: int, max_minutes: float | None) -> str:
    if not count:
        return "none (no record older than the cursor was new)"
    return f"{count:,} record(s) older than the cursor, the latest {max_minutes:g} min"


def _checks(checks: list[QualityCheck]) -> list[str]:
    return [
        ("  checks        " if position == 0 else " " * 16)
        + f"{check.count:>8,}  {check.label}"
        + (" (warning)" if check.count else "")
        for position, check in enumerate(checks)
    ]


def _rows(rows_per_table: dict[str, int]) -> str:
    width = max((len(table) for table in rows_per_table), default=0)
    return "\n                ".join(
        f"{table:<{width}}  {count:>8,}" for table, count in rows_per_table.items()
    ).lstrip()


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
