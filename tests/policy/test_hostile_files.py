"""Hostile policy, case and routes files: bounded work, typed errors with lines, escaped text."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handrail import Policy, PolicyError, _files, _yaml
from handrail.cli import main
from handrail.escalation import load_routes, parse_duration, routes_from_yaml
from handrail.escalation._routes_file import routes_from_toml
from handrail.policy import PolicyCases
from handrail.policy._cases import _from_data, _LineMap
from handrail.testing import hostile_json, hostile_toml, hostile_yaml

COMPOSERS = {"python": _yaml._PythonLoader}
if _yaml._c_loader() is not None:
    COMPOSERS["libyaml"] = yaml.CSafeLoader

LOADERS = {
    "policy": Policy.from_yaml,
    "cases": PolicyCases.from_yaml,
    "routes": routes_from_yaml,
}


@pytest.fixture(params=sorted(COMPOSERS))
def composer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with each YAML composer the machine has (libyaml's, PyYAML's own)."""
    monkeypatch.setattr(_yaml, "_COMPOSER", COMPOSERS[request.param])
    return str(request.param)


def laughs(levels: int, width: int = 9) -> str:
    """A "billion laughs" document: each anchor repeats the one before ``width`` times."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def nested_condition(kind: str, depth: int) -> dict[str, Any]:
    condition: dict[str, Any] = {"args.x": {"gt": 1}}
    for _ in range(depth):
        condition = {"not": condition} if kind == "not" else {kind: [condition, {"args.y": 2}]}
    return condition


def error_of(load: Any, text: str) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        load(text)
    return caught.value


# -- aliases -------------------------------------------------------------------------


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_billion_laughs_is_refused_at_the_line_of_the_alias(composer: str, loader: str) -> None:
    """An alias bomb is a PolicyError at the line where the expansion runs over the budget."""
    text = laughs(9)
    error = error_of(LOADERS[loader], text)
    assert len(error.problems) == 1
    assert "aliases repeat more than" in str(error)
    assert error.line == 4  # a3: the first anchor whose expansion passes the budget


def test_alias_expansion_stops_at_the_budget(composer: str) -> None:
    """However many levels of aliases, the reader builds at most the budget in repeated nodes."""
    for levels in range(3, 13):
        text = laughs(levels)
        builder = _yaml._YamlBuilder(_yaml.alias_budget(text))
        root = _yaml._compose(text)
        assert root is not None
        with contextlib.suppress(_yaml._TooManyAliases):
            builder.build(root, ())
        assert builder.repeated <= builder.budget + 1
        own_nodes = 1 + 2 * levels + 9 * levels  # the mapping, keys, anchors, their items
        assert builder.built <= own_nodes + builder.budget + 1


def test_templates_within_the_budget_still_load(composer: str) -> None:
    """Merge-key templates reused by many rules load; merged fields point at the anchor."""
    rules = "\n".join(
        f"  - <<: *base\n    id: read-{n}\n    actions: [crm.thing{n}.read]" for n in range(1, 500)
    )
    text = (
        "rules:\n"
        "  - &base\n"
        "    id: read-0\n"
        "    effect: allow\n"
        "    actions: [crm.thing0.read]\n"
        "    principals: {roles: [sales_rep], agents: [bot]}\n"
        "    when: {args.amount: {gt: 0, le: 100}, context.env: {in: [prod, test]}}\n"
        f"{rules}\n"
    )
    policy = Policy.from_yaml(text)
    assert len(policy.rules) == 500
    assert policy.rule("read-499").principals.roles == frozenset({"sales_rep"})
    error = error_of(Policy.from_yaml, text.replace("effect: allow", "effect: alow"))
    assert {p.line for p in error.problems} == {4}  # every rule's effect is the anchor's


# -- depth ---------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "depth"), [("all", 300), ("any", 300), ("not", 600)])
def test_deep_conditions_are_refused_before_recursing(composer: str, kind: str, depth: int) -> None:
    """Conditions nested past the reader's depth limit are a PolicyError at their line."""
    leaf = "{args.x: 1}"
    if kind == "not":
        condition = "{not: " * depth + leaf + "}" * depth
    else:
        condition = f"{{{kind}: [" * depth + leaf + "]}" * depth
    text = f"rules:\n  - id: deep\n    effect: allow\n    actions: [a.b]\n    when: {condition}"
    error = error_of(Policy.from_yaml, text)
    assert f"nested deeper than {_files.MAX_DEPTH} levels" in str(error)
    assert error.line == 5


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_every_yaml_loader_refuses_deep_documents(composer: str, loader: str) -> None:
    """Policy, case and routes files nested 100,000 deep are a PolicyError, not a crash."""
    for text in ("[" * 100_000 + "]" * 100_000, "".join("  " * i + "-\n" for i in range(3_000))):
        error = error_of(LOADERS[loader], text)
        assert error.line is not None


def test_depth_limit_is_the_same_for_both_composers(composer: str) -> None:
    """A document exactly MAX_DEPTH deep reads; one level more is refused."""
    limit = _files.MAX_DEPTH
    data, _, issues = _yaml.read_yaml("[" * limit + "]" * limit, None)
    assert issues == []
    for _ in range(limit - 1):
        (data,) = data
    assert data == []
    with pytest.raises(PolicyError, match="nested deeper"):
        _yaml.read_yaml("[" * (limit + 1) + "]" * (limit + 1), None)


def test_aliases_cannot_nest_past_the_depth_limit(composer: str) -> None:
    """An alias that puts a deep anchor inside another deep list is refused like written depth."""
    half = _files.MAX_DEPTH // 2 + 10
    text = f"a: &a {'[' * half}{']' * half}\nb: {'[' * half}*a{']' * half}\n"
    with pytest.raises(PolicyError, match="nested deeper") as caught:
        _yaml.read_yaml(text, None)
    assert caught.value.line == 2


def test_toml_nesting_is_refused_before_parsing() -> None:
    """TOML nested past the limit, inline or through dotted keys, is a PolicyError at its line."""
    inline = "version = 1\nrules = " + "[" * 2_000 + "]" * 2_000 + "\n"
    error = error_of(Policy.from_toml, inline)
    assert "nested deeper" in str(error)
    assert error.line == 2
    dotted = "rules = []\n[deep]\n" + ".".join(["a"] * 300) + " = 1\n"
    error = error_of(Policy.from_toml, dotted)
    assert "nested deeper" in str(error)
    assert error.line == 2
    brackets_in_strings = 'name = "' + "[" * 500 + '" # ' + "{" * 500 + "\nrules = []\n"
    assert Policy.from_toml(brackets_in_strings).name == "[" * 500


@pytest.mark.parametrize("kind", ["all", "any", "not"])
def test_policies_that_load_are_written_back_at_depth_64(kind: str) -> None:
    """A policy with conditions 64 deep loads, and to_yaml / to_toml read back to the same."""
    data = {"rules": [{"id": "a", "effect": "allow", "actions": ["a.b"], "when": {}}]}
    data["rules"][0]["when"] = nested_condition(kind, 64)
    policy = Policy.from_dict(data)
    from_yaml = Policy.from_yaml(policy.to_yaml())
    assert from_yaml.to_dict() == policy.to_dict()
    assert Policy.from_toml(policy.to_toml()).to_dict() == policy.to_dict()


# -- numbers -------------------------------------------------------------------------


def test_toml_integers_past_the_digit_limit_are_problems_with_a_line() -> None:
    """A 5,000-digit integer in a TOML policy or routes file is a PolicyError at its line."""
    error = error_of(Policy.from_toml, "rules = []\nversion = " + "9" * 5_000 + "\n")
    assert "too long" in str(error)
    assert error.line == 2
    routes = '[[routes]]\nname = "r"\nrepeat_last = ' + "1" * 5_000 + "\n"
    error = error_of(routes_from_toml, routes)
    assert (error.line, "too long" in str(error)) == (3, True)
    error = error_of(Policy.from_toml, "rules = []\nversion = 0x" + "f" * 5_000 + "\n")
    assert (error.line, "too long" in str(error)) == (2, True)


@pytest.mark.parametrize("number", ["9" * 5_000, "0x" + "f" * 5_000, "1" + ":59" * 3_000])
def test_yaml_integers_past_the_digit_limit_are_problems(composer: str, number: str) -> None:
    """Integers too long to read or to write back are a problem on their line that says so."""
    text = (
        f"rules:\n  - id: a\n    effect: allow\n    actions: [a.b]\n    when: {{args.x: {number}}}"
    )
    error = error_of(Policy.from_yaml, text)
    assert error.line == 5
    assert "a number too long to read" in str(error)
    assert "set_int_max_str_digits" not in str(error)


@pytest.mark.parametrize("duration", ["99999999999w", "999999999999999d", 1e40, 10**30])
def test_durations_too_long_for_timedelta_are_value_errors(duration: object) -> None:
    """parse_duration refuses a duration past timedelta's range with a ValueError saying so."""
    with pytest.raises(ValueError, match="too long: a duration is at most"):
        parse_duration(duration)


def test_huge_route_durations_are_problems_at_their_line() -> None:
    """Overflowing durations in YAML and TOML routes files are PolicyErrors at their lines."""
    text = (
        "routes:\n  - name: r\n    levels:\n      - deciders: [a]\n"
        "        resolve_within: 99999999999w\n"
    )
    error = error_of(routes_from_yaml, text)
    assert (error.line, error.field) == (5, "routes[0].levels[0].resolve_within")
    toml = '[[routes]]\nname = "r"\n[[routes.levels]]\ndeciders = ["a"]\nresolve_within = 1e40\n'
    error = error_of(routes_from_toml, toml)
    assert (error.line, error.field) == (5, "routes[0].levels[0].resolve_within")


# -- case files: linear error reporting ------------------------------------------------


class CountingLines(Mapping[tuple[str | int, ...], int]):
    """A line map that counts how often it is read."""

    def __init__(self, lines: dict[tuple[str | int, ...], int]) -> None:
        self.lines = lines
        self.reads = 0

    def __getitem__(self, key: tuple[str | int, ...]) -> int:
        self.reads += 1
        return self.lines[key]

    def __iter__(self) -> Iterator[tuple[str | int, ...]]:
        self.reads += len(self.lines)
        return iter(self.lines)

    def __len__(self) -> int:
        return len(self.lines)


def test_case_errors_cost_a_few_lookups_each() -> None:
    """Placing each problem of a case file reads a handful of lines, never the whole map."""
    count = 4_000
    cases = [{"name": f"c{n}", "expect": "maybe"} for n in range(count)]
    lines = {("cases", n, key): n + 1 for n in range(count) for key in ("name", "expect")}
    counting = CountingLines(lines)
    with pytest.raises(PolicyError) as caught:
        _from_data({"cases": cases}, None, _LineMap(counting))
    problems = len(caught.value.problems)
    assert problems >= count
    assert counting.reads <= 10 * problems


# -- text ------------------------------------------------------------------------------


def test_control_characters_in_keys_and_values_are_escaped_in_messages(composer: str) -> None:
    """ANSI escapes and bidi overrides from keys and values reach messages escaped, never raw."""
    text = (
        "rules:\n"
        "  - id: a\n"
        "    effect: allow\n"
        "    actions: [a.b]\n"
        '    "\\e[2Jx": 1\n'
        "  - id: b\n"
        '    effect: "deny\\u202e"\n'
        "    actions: [a.b]\n"
    )
    error = error_of(Policy.from_yaml, text)
    message = str(error)
    for raw in ("\x1b", "\u202e"):
        assert raw not in message
    assert error.problems[0].field == "\\x1b[2Jx"
    assert "\\u202e" in message


def test_cli_prints_file_problems_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`handrail policy check` never writes a control character from the file to the terminal."""
    path = tmp_path / "policy.yaml"
    path.write_text('rules:\n  - {id: a, effect: allow, actions: [a.b], "\\e[2Jx": 1}\n')
    assert main(["policy", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert f"{path}:2: rule 'a': \\x1b[2Jx: unknown field" in err


# -- the readers agree -----------------------------------------------------------------

yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(yaml_values, st.booleans())
def test_every_composer_gives_the_same_data_and_lines(value: Any, flow: bool) -> None:
    """libyaml's composer and PyYAML's give the same data, lines and issues as safe_load's data."""
    text = yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True)
    results = []
    for loader in COMPOSERS.values():
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_yaml, "_COMPOSER", loader)
            results.append(_yaml.read_yaml(text, None))
    assert all(result == results[0] for result in results)
    assert results[0][0] == yaml.safe_load(text)


# -- property: any hostile document ends in a result or a typed error ------------------

HOSTILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Counted(_yaml._YamlBuilder):
    """The reader's builder, remembering itself so a test can read its counts."""

    last: Counted | None = None

    def __init__(self, budget: int) -> None:
        super().__init__(budget)
        Counted.last = self


@HOSTILE
@given(hostile_yaml())
def test_any_hostile_yaml_loads_or_is_a_policy_error_in_linear_work(text: str) -> None:
    """Every YAML loader ends in a result or a PolicyError, building O(len(text)) nodes."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_yaml, "_YamlBuilder", Counted)
        for load in LOADERS.values():
            Counted.last = None
            with contextlib.suppress(PolicyError):
                load(text)
            if Counted.last is not None:
                own_nodes_at_most = len(text) + 1
                assert Counted.last.built <= own_nodes_at_most + _yaml.alias_budget(text) + 1


@HOSTILE
@given(hostile_toml())
def test_any_hostile_toml_loads_or_is_a_policy_error(text: str) -> None:
    """The TOML policy and routes loaders end in a result or a PolicyError, whatever the text."""
    for load in (Policy.from_toml, routes_from_toml):
        with contextlib.suppress(PolicyError):
            load(text)


def run_cli(argv: list[str]) -> tuple[int, str]:
    """Run the CLI in this process; return its exit code and everything it wrote."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue() + err.getvalue()


def assert_clean(code: int, output: str) -> None:
    assert code in (0, 1, 2)
    assert "Traceback" not in output
    assert "\x1b" not in output


@HOSTILE
@given(hostile_yaml(), hostile_toml(), hostile_json())
def test_policy_commands_end_cleanly_on_hostile_input(yaml_text: str, toml: str, args: str) -> None:
    """policy check | test | explain exit 0, 1 or 2 with a message: no traceback, no raw escapes."""
    good = Path(__file__).resolve().parents[2] / "examples" / "policies" / "crm-agent.yaml"
    with tempfile.TemporaryDirectory() as directory:
        hostile = Path(directory) / "hostile.yaml"
        hostile.write_text(yaml_text, encoding="utf-8", errors="surrogatepass")
        hostile_toml_file = Path(directory) / "hostile.toml"
        hostile_toml_file.write_text(toml, encoding="utf-8", errors="surrogatepass")
        for argv in (
            ["policy", "check", str(hostile)],
            ["policy", "check", str(hostile_toml_file)],
            ["policy", "check", str(good), "--routes", str(hostile)],
            ["policy", "check", str(good), "--routes", str(hostile_toml_file)],
            ["policy", "test", str(good), str(hostile)],
            ["policy", "test", str(hostile), str(hostile)],
            [
                "policy",
                "explain",
                str(good),
                "--agent",
                "a",
                "--action",
                "crm.x.read",
                "--args",
                args,
            ],
            ["policy", "explain", str(hostile), "--agent", "a", "--action", "a.b"],
        ):
            assert_clean(*run_cli(argv))


@pytest.mark.parametrize(("version", "used"), [((0, 2, 5), False), ((0, 2, 6), True)])
def test_libyaml_without_a_nesting_limit_is_not_used(
    monkeypatch: pytest.MonkeyPatch, version: tuple[int, int, int], used: bool
) -> None:
    """libyaml 0.2.5 recurses without a limit (a deep file crashed it): PyYAML's composer reads."""
    yaml_c = pytest.importorskip("yaml._yaml", reason="this PyYAML has no libyaml")
    monkeypatch.setattr(yaml, "__with_libyaml__", True)
    monkeypatch.setattr(yaml_c, "get_version", lambda: version)
    assert (_yaml._c_loader() is not None) is used


FILE_LOADERS = {
    "policy": Policy.from_file,
    "cases": PolicyCases.from_file,
    "routes": load_routes,
}


def _feed(fifo: Path) -> None:
    """Write a valid policy into ``fifo`` once a reader opens it; a reader gone first is fine."""
    with contextlib.suppress(BrokenPipeError):
        fifo.write_text("rules: []\n")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
@pytest.mark.parametrize("loader", sorted(FILE_LOADERS))
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path, loader: str) -> None:
    """A FIFO named like a policy, case or routes file is a PolicyError, not a reader blocked."""
    fifo = tmp_path / "policy.yaml"
    os.mkfifo(fifo)
    # The old reader blocked in open() until a writer came (forever, from the CLI); this
    # writer lets it go on, so the test fails (the FIFO loads) instead of hanging.
    writer = threading.Thread(target=_feed, args=(fifo,), daemon=True)
    writer.start()
    try:
        with pytest.raises(PolicyError, match="not a regular file"):
            FILE_LOADERS[loader](fifo)
    finally:
        # Release the writer if no reader opened the FIFO: hold a reader open, without
        # blocking, until the writer is done (closed at once, it could come before the
        # writer's open() on a loaded machine, leaving the writer blocked forever).
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            writer.join()
        finally:
            os.close(reader)


@pytest.mark.parametrize("loader", sorted(FILE_LOADERS))
def test_a_directory_or_device_is_refused_as_a_file(tmp_path: Path, loader: str) -> None:
    """A directory, or a device that never ends (/dev/zero), is a PolicyError naming it."""
    directory = tmp_path / "policies.yaml"
    directory.mkdir()
    with pytest.raises(PolicyError, match="not a regular file"):
        FILE_LOADERS[loader](directory)
    if Path("/dev/zero").exists():
        endless = tmp_path / "zero.yaml"
        endless.symlink_to("/dev/zero")
        with pytest.raises(PolicyError, match="not a regular file"):
            FILE_LOADERS[loader](endless)
