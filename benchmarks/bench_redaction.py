"""Redaction's time per character from 1 KB to 1 MB, on ordinary and on hostile text.

``Redactor.scrub`` masks URL credentials in error messages, and
``Redactor.redact`` masks them in argument values.  Both scan the text for
URLs; the scan must be linear, or an agent that echoes a long argument into
an error holds the GIL for seconds (a regular expression that looked for the
scheme at every position took 5 s on 40,000 letters before a ``://``).

The target: for each input kind, the time per character at 1 MB is at most
twice the time per character at 1 KB (a flat line; a quadratic scanner
gives about 1,000x).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

SIZES = (1_000, 10_000, 100_000, 1_000_000)
RATIO_TARGET = 2.0
SECRET = "sk-live-0123456789"


def _benign(size: int) -> str:
    """An error message as httpx writes them, with a URL and its query, repeated to ``size``."""
    line = (
        "Client error '429 Too Many Requests' for url "
        "'https://api.example.com/v1/items?page=2&token=" + SECRET + "' while paging; "
    )
    return (line * (size // len(line) + 1))[:size]


def _letters_then_url(size: int) -> str:
    """The input that was quadratic: a long run of letters, then one URL."""
    tail = " https://user:" + SECRET + "@h/x?token=" + SECRET
    return "a" * (size - len(tail)) + tail


def _many_urls(size: int) -> str:
    """Many short URLs with no separators, each with a fragment: the most URLs per byte."""
    unit = "a://u:p@h/x?k=v#t="
    return (unit * (size // len(unit) + 1))[:size]


INPUTS: dict[str, Callable[[int], str]] = {
    "benign": _benign,
    "letters then a URL": _letters_then_url,
    "many URLs": _many_urls,
}


def _per_char_ns(fn: Callable[[], object], size: int, repetitions: int, batch_ns: int) -> float:
    """Best-of-``repetitions`` time per character; each repetition is a batch of ``batch_ns``+."""
    calls = 1
    while True:
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter_ns() - start
        if elapsed >= batch_ns:
            break
        calls *= 2
    best = elapsed / calls
    for _ in range(repetitions - 1):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / calls)
    return best / size


def _agrees(redactor: Any) -> bool:
    """Every input, at every size, comes out with no secret and no URL password left."""
    for make in INPUTS.values():
        for size in SIZES:
            text = make(size)
            scrubbed = redactor.scrub(text, {SECRET})
            redacted = redactor.redact({"argument": text})["argument"]
            for out in (scrubbed, redacted):
                if SECRET in out or ":p@" in out or len(out) > len(text):
                    return False
    return True


def run(*, quick: bool = False, repetitions: int | None = None) -> dict[str, Any]:
    """Time ``scrub`` and ``redact`` per character for each input kind and size."""
    from handrail.redaction import Redactor

    redactor = Redactor()
    reps = repetitions or (1 if quick else 7)
    batch_ns = 200_000 if quick else 20_000_000
    rows = []
    for kind, make in INPUTS.items():
        for operation in ("scrub", "redact"):
            per_char = {}
            for size in SIZES:
                text = make(size)
                if operation == "scrub":
                    call: Callable[[], object] = lambda t=text: redactor.scrub(t, (SECRET,))  # noqa: E731
                else:
                    call = lambda t=text: redactor.redact({"argument": t})  # noqa: E731
                per_char[size] = _per_char_ns(call, size, reps, batch_ns)
            ratio = per_char[SIZES[-1]] / per_char[SIZES[0]]
            rows.append(
                {
                    "input": kind,
                    "operation": operation,
                    "ns_per_char": {str(size): round(v, 3) for size, v in per_char.items()},
                    "ratio_1mb_over_1kb": round(ratio, 3),
                    "passed": None if quick else ratio <= RATIO_TARGET,
                }
            )
    passed = None if quick else all(row["passed"] for row in rows)
    return {
        "benchmark": "redaction",
        "quick": quick,
        "repetitions": reps,
        "python": platform.python_version(),
        "sizes": list(SIZES),
        "rows": rows,
        "target": f"ns per char at 1 MB <= {RATIO_TARGET:g}x ns per char at 1 KB",
        "agreed": _agrees(redactor),
        "passed": passed,
    }


def render(result: Mapping[str, Any]) -> str:
    """The result as a table for humans."""
    verdict = {True: "pass", False: "FAIL", None: "not judged (--quick)"}
    sizes = [str(size) for size in result["sizes"]]
    head = [f"{int(size) // 1000:>8,} KB" for size in sizes]
    width = max(len(f"{row['input']}, {row['operation']}") for row in result["rows"])
    lines = [
        f"redaction: ns per character, best of {result['repetitions']}, "
        f"Python {result['python']}"
        + ("  [--quick: the figures mean nothing]" if result["quick"] else ""),
        "",
        f"{'input, operation'.ljust(width)}  {'  '.join(head)}  {'1 MB / 1 KB':>11}  verdict",
        f"{'-' * width}  {'  '.join('-' * 11 for _ in head)}  {'-' * 11}  -------",
    ]
    for row in result["rows"]:
        cells = "  ".join(f"{row['ns_per_char'][size]:>11.2f}" for size in sizes)
        lines.append(
            f"{(row['input'] + ', ' + row['operation']).ljust(width)}  {cells}  "
            f"{row['ratio_1mb_over_1kb']:>10.2f}x  {verdict[row['passed']]}"
        )
    lines += [
        "",
        f"target: {result['target']}: {verdict[result['passed']]}; "
        f"every output free of the secret: {'yes' if result['agreed'] else 'NO'}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table, or ``--json``; exit 1 if the target is missed or a secret leaks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--quick", action="store_true", help="one short repetition; judges nothing")
    parser.add_argument("--repetitions", type=int, help="timed repetitions (default 7)")
    args = parser.parse_args(argv)
    result = run(quick=args.quick, repetitions=args.repetitions)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0 if result["agreed"] and result["passed"] is not False else 1


if __name__ == "__main__":
    sys.exit(main())
