"""What ``import handrail`` costs over importing the third-party modules it loads.

A probe interpreter imports handrail and lists the modules that the import
added to ``sys.modules`` and that belong to neither the standard library nor
handrail: pydantic, structlog, opentelemetry, tenacity and whatever they
pull in, in the order they were loaded.  Then, alternating, fresh
interpreters time (``time.perf_counter_ns`` around the statement, so the
interpreter's own start-up is left out):

* ``import handrail``;
* ``import`` of exactly those third-party modules, in the same order.

Target: ``import handrail`` takes at most 1.2x the dependencies' import,
medians of the same run.  The correctness check: both interpreters end up
with every one of those third-party modules loaded (the dependency import
is the same work handrail asks of them).  The footer names handrail's own
modules with the most import time (``-X importtime``, self time, one run),
where the difference goes.

Run ``python benchmarks/bench_import.py`` for a table, ``--json`` for one
JSON document, ``--quick`` for a smoke run whose figures mean nothing.
See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from _targets import all_met, ratio_target, render_targets

IMPORT_OVER_DEPENDENCIES = 1.2
TIMEOUT = 120.0  # seconds for one interpreter

_PROBE = """\
import json, sys
before = set(sys.modules)
import handrail
stdlib = sys.stdlib_module_names
print(json.dumps([
    name for name in sys.modules
    if name not in before
    and name.partition(".")[0] not in stdlib
    and not name.startswith(("handrail", "_sysconfigdata"))
]))
"""


def _environment(pycache: str) -> dict[str, str]:
    """The child's environment: this interpreter's handrail first on its path.

    Bytecode is cached for handrail and its dependencies alike, in ``pycache``
    (a directory of this run): an installed package has its ``.pyc`` files,
    and ``PYTHONDONTWRITEBYTECODE`` in the caller's environment would
    otherwise make handrail compile its source on every import while the
    dependencies load theirs from site-packages.
    """
    import handrail

    source = str(Path(handrail.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    env["PYTHONPATH"] = source if not path else f"{source}{os.pathsep}{path}"
    return env


def _python(code: str, env: Mapping[str, str], *options: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, *options, "-c", code],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the child interpreter failed:\n{completed.stderr[-4000:]}")
    return completed


def dependencies(env: Mapping[str, str]) -> list[str]:
    """The third-party modules ``import handrail`` loads, in load order."""
    return list(json.loads(_python(_PROBE, env).stdout))


def timed(statements: str, modules: Sequence[str]) -> str:
    """Code that times ``statements`` and prints the ns and which of ``modules`` got loaded."""
    return (
        "import time\n"
        "start = time.perf_counter_ns()\n"
        f"{statements}\n"
        "elapsed = time.perf_counter_ns() - start\n"
        "import json, sys\n"
        f"print(json.dumps([elapsed, [m for m in {list(modules)!r} if m in sys.modules]]))\n"
    )


def own_modules(env: Mapping[str, str], top: int = 8) -> list[tuple[str, int]]:
    """handrail's modules with the most self import time (µs), from one ``-X importtime``."""
    stderr = _python("import handrail", env, "-X", "importtime").stderr
    found = []
    for line in stderr.splitlines():
        # "import time:   self [us] |  cumulative | imported package"
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].strip()
        if name.startswith("handrail"):
            found.append((name, int(parts[0])))
    return sorted(found, key=lambda item: item[1], reverse=True)[:top]


def run(*, quick: bool = False, repetitions: int | None = None) -> dict[str, Any]:
    """Time both imports, alternating; return the figures as JSON-ready data."""
    reps = repetitions or (2 if quick else 15)
    with tempfile.TemporaryDirectory(prefix="handrail-pycache-") as pycache:
        return _run(reps, quick, _environment(pycache))


def _run(reps: int, quick: bool, env: Mapping[str, str]) -> dict[str, Any]:
    modules = dependencies(env)
    codes = {
        "import handrail": timed("import handrail", modules),
        "import its dependencies": timed("\n".join(f"import {m}" for m in modules), modules),
    }
    samples: dict[str, list[int]] = {name: [] for name in codes}
    loaded: dict[str, bool] = dict.fromkeys(codes, True)
    order = list(codes)
    shuffle = random.Random(0).shuffle
    for name in order:  # warm up: bytecode caches written, files in the page cache
        _python(codes[name], env)
    for _ in range(reps):
        shuffle(order)
        for name in order:
            elapsed, present = json.loads(_python(codes[name], env).stdout)
            samples[name].append(elapsed)
            loaded[name] = loaded[name] and len(present) == len(modules)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    handrail_ms = medians["import handrail"] / 1e6
    dependencies_ms = medians["import its dependencies"] / 1e6
    targets = [
        ratio_target(
            "import handrail over importing its dependencies",
            handrail_ms / dependencies_ms,
            at_most=IMPORT_OVER_DEPENDENCIES,
            quick=quick,
            detail=f"{handrail_ms:,.1f} vs {dependencies_ms:,.1f} ms",
        )
    ]
    agreed = all(loaded.values()) and bool(modules)
    return {
        "benchmark": "import",
        "quick": quick,
        "repetitions": reps,
        "python": platform.python_version(),
        "rows": [
            {"contender": name, "median_ms": round(value / 1e6, 2)}
            for name, value in medians.items()
        ],
        "targets": targets,
        "figures": {
            "dependencies": modules,
            "top_level_dependencies": sorted({m.partition(".")[0] for m in modules}),
            "samples_ms": {n: [round(v / 1e6, 2) for v in values] for n, values in samples.items()},
            "handrail_modules_self_us": [] if quick else own_modules(env),
        },
        "agreed": agreed,
        "passed": None if quick else agreed and all_met(targets),
    }


def render(result: Mapping[str, Any]) -> str:
    """The result as a table for humans."""
    figures = result["figures"]
    width = max(len(row["contender"]) for row in result["rows"])
    verdict = {True: "pass", False: "FAIL", None: "not judged (--quick)"}[result["passed"]]
    lines = [
        f"import time: median of {result['repetitions']} fresh interpreters each, alternating, "
        f"Python {result['python']}"
        + ("  [--quick: the figures mean nothing]" if result["quick"] else ""),
        "",
        f"{'contender'.ljust(width)}  {'median ms':>9}",
        f"{'-' * width}  {'-' * 9}",
        *(f"{row['contender'].ljust(width)}  {row['median_ms']:>9,.2f}" for row in result["rows"]),
        "",
        *render_targets(result["targets"]),
        "",
        f"dependencies: {len(figures['dependencies'])} modules of "
        + ", ".join(figures["top_level_dependencies"]),
    ]
    if figures["handrail_modules_self_us"]:
        lines.append(
            "handrail's own modules, most self time (µs, -X importtime, one run): "
            + ", ".join(f"{name} {us:,}" for name, us in figures["handrail_modules_self_us"])
        )
    lines.append(f"overall: {verdict}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table, or ``--json``; exit 1 if the check fails or the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--quick", action="store_true", help="two rounds; judges no target")
    parser.add_argument("--repetitions", type=int, help="interpreters per contender (default 15)")
    args = parser.parse_args(argv)
    result = run(quick=args.quick, repetitions=args.repetitions)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0 if result["agreed"] and result["passed"] is not False else 1


if __name__ == "__main__":
    sys.exit(main())
