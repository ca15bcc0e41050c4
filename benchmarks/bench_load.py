"""Loading a 10,000-rule YAML policy, against PyYAML's C loader on the same file.

The target: ``Policy.from_yaml`` (read with lines, validate every rule,
compile) takes at most 3x the time ``yaml.load(text, Loader=yaml.CSafeLoader)``
takes only to read the same text into dicts and lists.  Both run in the
same process, interleaved, so the ratio holds on a loaded machine.  For
information: building the same policy from the already-parsed data
(``Policy.from_dict``), the TOML loader, and how long a 'billion laughs'
document takes to be refused.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

RULES = 10_000
TARGET_RATIO = 3.0


def policy_yaml(rules: int, seed: int = 1) -> str:
    """A policy of ``rules`` rules of every effect, with principals and conditions on a third."""
    rnd = random.Random(seed)
    effects = ("allow", "deny", "audit", "escalate")
    lines = ["version: 1", "name: big", "rules:"]
    for n in range(rules):
        effect = effects[n % 4]
        family, thing = f"svc{rnd.randrange(50)}", f"thing{rnd.randrange(7)}"
        lines += [
            f"  - id: rule-{n}",
            f"    effect: {effect}",
            f"    actions: [{family}.{thing}.read, {family}.{thing}.update]",
            f"    principals: {{roles: [role-{n % 13}], agents: [bot-{n % 5}]}}",
        ]
        if n % 3 == 0 or effect == "escalate":
            lines += [
                "    when:",
                "      all:",
                f"        - args.amount: {{gt: {n}}}",
                "        - context.environment: {in: [production, staging]}",
            ]
        if effect == "escalate":
            lines.append(f"    escalate_to: route-{n % 9}")
        lines.append(f"    description: Rule number {n} of the benchmark.")
    return "\n".join(lines) + "\n"


def laughs(levels: int = 9) -> str:
    """A 'billion laughs' policy: nine anchors, each repeating the one before nine times."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]" for n in range(1, levels)]
    return "\n".join(lines) + f"\nrules: *a{levels - 1}\n"


def _timed(fn: Callable[[], object]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def run(
    *, quick: bool = False, rules: int | None = None, rounds: int | None = None
) -> dict[str, Any]:
    """Time the C loader and handrail's on the same policy, interleaved; judge the ratio."""
    import yaml

    from handrail import Policy, PolicyError

    rules = rules or (200 if quick else RULES)
    rounds = rounds or (1 if quick else 3)
    text = policy_yaml(rules)
    c_loader = getattr(yaml, "CSafeLoader", None)
    data = yaml.safe_load(text) if c_loader is None else yaml.load(text, Loader=c_loader)
    policy = Policy.from_yaml(text)
    toml = policy.to_toml()
    agreed = (
        Policy.from_dict(data).to_dict() == policy.to_dict() == Policy.from_toml(toml).to_dict()
    )
    contenders: dict[str, Callable[[], object]] = {
        "handrail Policy.from_yaml": lambda: Policy.from_yaml(text),
        "handrail Policy.from_dict (parsed data)": lambda: Policy.from_dict(data),
        "handrail Policy.from_toml": lambda: Policy.from_toml(toml),
    }
    if c_loader is not None:
        contenders["yaml.load, CSafeLoader"] = lambda: yaml.load(text, Loader=c_loader)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders)
    shuffle = random.Random(7)
    for _ in range(rounds):
        shuffle.shuffle(order)
        for name in order:
            samples[name].append(_timed(contenders[name]))
    medians = {name: statistics.median(times) for name, times in samples.items()}

    bomb = laughs()
    refused = False

    def load_bomb() -> None:
        nonlocal refused
        try:
            Policy.from_yaml(bomb)
        except PolicyError as exc:
            refused = "aliases repeat" in str(exc)

    bomb_s = min(_timed(load_bomb) for _ in range(3))
    agreed = agreed and refused

    baseline = medians.get("yaml.load, CSafeLoader")
    ratio = None if baseline is None else medians["handrail Policy.from_yaml"] / baseline
    passed = None if quick or ratio is None else ratio <= TARGET_RATIO
    rows = [
        {
            "contender": name,
            "median_s": medians[name],
            "vs_c_loader": None if baseline is None else medians[name] / baseline,
        }
        for name in sorted(medians, key=medians.__getitem__)
    ]
    return {
        "benchmark": "load",
        "quick": quick,
        "python": platform.python_version(),
        "libyaml": c_loader is not None,
        "sizes": {"rules": rules, "bytes": len(text.encode()), "rounds": rounds},
        "rows": rows,
        "target": f"from_yaml <= {TARGET_RATIO:g}x yaml.load with CSafeLoader",
        "ratio": ratio,
        "figures": {
            "samples_s": samples,
            "billion_laughs_bytes": len(bomb),
            "billion_laughs_refused_s": bomb_s,
        },
        "agreed": agreed,
        "passed": passed,
    }


def render(result: Mapping[str, Any]) -> str:
    """The result as a table."""
    sizes = result["sizes"]
    lines = [
        f"load: a {sizes['rules']:,}-rule YAML policy ({sizes['bytes']:,} bytes), "
        f"median of {sizes['rounds']} interleaved rounds",
        f"{'contender':<42} {'median':>10} {'x C loader':>11}",
    ]
    for row in result["rows"]:
        ratio = "" if row["vs_c_loader"] is None else f"{row['vs_c_loader']:.2f}x"
        lines.append(f"{row['contender']:<42} {row['median_s']:>9.3f}s {ratio:>11}")
    ratio = result["ratio"]
    verdict = {True: "PASS", False: "FAIL", None: "not judged"}[result["passed"]]
    shown = "n/a (no libyaml)" if ratio is None else f"{ratio:.2f}x"
    lines.append(f"target: {result['target']}; measured {shown}: {verdict}")
    figures = result["figures"]
    lines.append(
        f"billion laughs ({figures['billion_laughs_bytes']} bytes, 9 levels): refused in "
        f"{figures['billion_laughs_refused_s'] * 1000:.1f} ms"
    )
    if not result["agreed"]:
        lines.append(
            "DISAGREEMENT: the loaders built different policies, or the bomb was not refused"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table (or JSON); 1 if a check or the target fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quick", action="store_true", help="a smoke run; judges no target")
    parser.add_argument("--rules", type=int, help=f"rules in the policy (default {RULES:,})")
    parser.add_argument("--rounds", type=int, help="interleaved timing rounds (default 3)")
    args = parser.parse_args(argv)
    result = run(quick=args.quick, rules=args.rules, rounds=args.rounds)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0 if result["agreed"] and result["passed"] is not False else 1


if __name__ == "__main__":
    sys.exit(main())
