"""Run every ``bench_*.py`` module here and print its table, or ``--json`` for one document.

Each benchmark module provides ``run(quick=...) -> dict`` (JSON-ready figures,
with ``"agreed"`` and ``"passed"`` verdicts) and ``render(dict) -> str`` (the
table).  ``make bench`` runs this file; see ``benchmarks/README.md``.

Exit status 1 when a benchmark's correctness check fails or, outside
``--quick``, when a target is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent


def discover(directory: Path = HERE) -> list[ModuleType]:
    """Import every ``bench_*.py`` in ``directory``, in name order."""
    modules = []
    for path in sorted(directory.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import benchmark {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
        modules.append(module)
    return modules


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; print tables (or one JSON document); 1 if any check fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run with tiny batches; judges no target"
    )
    args = parser.parse_args(argv)
    results: dict[str, dict[str, Any]] = {}
    for module in discover():
        name = module.__name__.removeprefix("bench_")
        result = module.run(quick=args.quick)
        results[name] = result
        if not args.json:
            print(module.render(result), end="\n\n", flush=True)
    if args.json:
        print(json.dumps({"benchmarks": results}, indent=2))
    failed = [name for name, r in results.items() if not r["agreed"] or r["passed"] is False]
    if failed and not args.json:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
