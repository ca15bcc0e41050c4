"""Same-run ratio targets, shared by the benchmarks: one JSON shape, one table form.

A target compares two contenders measured side by side in the same run
(interleaved, medians), so machine load falls on both alike.  It is judged
as ``measured <= at_most`` or ``measured >= at_least``; a ``--quick`` run
judges nothing (``"passed": None``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def ratio_target(
    name: str,
    measured: float,
    *,
    at_most: float | None = None,
    at_least: float | None = None,
    quick: bool,
    detail: str = "",
) -> dict[str, Any]:
    """One judged ratio: ``{"name", "target", "measured", "unit": "x", "passed", "detail"}``."""
    if (at_most is None) == (at_least is None):
        raise ValueError("a target has exactly one of at_most and at_least")
    if at_most is not None:
        target, met = f"<= {at_most:g}x", measured <= at_most
    else:
        assert at_least is not None
        target, met = f">= {at_least:g}x", measured >= at_least
    return {
        "name": name,
        "target": target,
        "measured": round(measured, 3),
        "unit": "x",
        "passed": None if quick else met,
        "detail": detail,
    }


def render_targets(targets: Sequence[Mapping[str, Any]]) -> list[str]:
    """The targets as table lines: name, measured ratio, target, PASS/FAIL."""
    if not targets:
        return []
    width = max(len(t["name"]) for t in targets)
    lines = [f"{'target'.ljust(width)}  {'measured':>8}  {'wanted':<8}  result"]
    lines.append(f"{'-' * width}  {'-' * 8}  {'-' * 8}  ------")
    for t in targets:
        verdict = {True: "PASS", False: "FAIL", None: "-"}[t["passed"]]
        lines.append(
            f"{t['name'].ljust(width)}  {t['measured']:>7.2f}x  {t['target']:<8}  {verdict}"
        )
        if t.get("detail"):
            lines.append(f"{''.ljust(width)}  ({t['detail']})")
    return lines


def all_met(targets: Sequence[Mapping[str, Any]]) -> bool:
    """No target failed (unjudged ones count as met)."""
    return all(t["passed"] is not False for t in targets)
