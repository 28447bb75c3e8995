"""Counts per invariant of the reliability tests, printed at the end of a pytest run.

Tests call record() (or check(), which also asserts) for each invariant they verify; the
pytest_terminal_summary hook of a suite's conftest.py calls write_summary(), which prints the table
once per run however many suites (conftest files) are in it, and only when anything was recorded.
The counts live in this process: under pytest-xdist each worker keeps its own.
"""

from __future__ import annotations

# invariant -> [checked, violations], in the order invariants were first recorded.
RESULTS: dict[str, list[int]] = {}
_WRITTEN = []


def record(invariant: str, checked: int, violations: int) -> None:
    """Add `checked` checks of `invariant`, `violations` of which failed."""
    counts = RESULTS.setdefault(invariant, [0, 0])
    counts[0] += checked
    counts[1] += violations


def check(invariant: str, holds: bool, message: str = "") -> None:
    """Record one check of `invariant`, then fail with `message` when it does not hold."""
    record(invariant, 1, 0 if holds else 1)
    if not holds:
        raise AssertionError("%s: %s" % (invariant, message) if message else invariant)


def table() -> list[str]:
    """The report's lines: a header, then one line per invariant (empty when nothing was recorded)."""
    if not RESULTS:
        return []
    width = max(len("invariant"), *(len(name) for name in RESULTS))
    lines = ["%-*s  %8s  %10s" % (width, "invariant", "checked", "violations")]
    for name, (checked, violations) in RESULTS.items():
        lines.append("%-*s  %8d  %10d" % (width, name, checked, violations))
    return lines


def write_summary(terminalreporter) -> None:
    """Print the report as a section of pytest's summary; once per run, and not at all when nothing was recorded."""
    lines = table()
    if not lines or _WRITTEN:
        return
    _WRITTEN.append(True)
    terminalreporter.section("reliability report")
    for line in lines:
        terminalreporter.write_line(line)
