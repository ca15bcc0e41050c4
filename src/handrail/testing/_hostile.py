"""Hypothesis strategies for hostile files: what an attacker puts in YAML, TOML and JSON.

Each strategy draws the text of a whole document: a policy, a policy test
file or a routes file (YAML and TOML), or a JSON object for the command
line's ``--args``, with one hostile payload planted where a value goes:

* **aliases** - "billion laughs": anchors that repeat anchors, level upon level;
* **depth** - ``all``/``any``/``not`` conditions, lists and mappings nested
  hundreds or thousands deep;
* **size** - long flat lists and many rules;
* **numbers** - integers past Python's 4,300-digit limit (also in hex),
  ``1e400``, infinities, NaN, long sexagesimal numbers;
* **text** - ANSI escapes, bidi overrides, NUL and other control characters
  in keys and values, unsupported and unsafe tags, and plain junk.

Use them to check that your own loaders and tools, like handrail's, end in a
result or a typed error, never a crash or a hang::

    from hypothesis import given
    from handrail.testing import hostile_yaml

    @given(hostile_yaml())
    def test_my_tool_survives(text): ...

Requires Hypothesis (``pip install handrail[testing]``).
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

__all__ = ["hostile_json", "hostile_toml", "hostile_yaml"]

_ESCAPES = ("\\e[2J", "\\e]0;pwned\\a", "\\u202e", "\\u200b", "\\0", "\\x85", "\\r\\n", "\\t")
_JSON_ESCAPES = ("\\u001b[2J", "\\u202e", "\\u0000", "\\u200b", "\\n", "\\u0085")


# -- YAML ----------------------------------------------------------------------------------


@st.composite
def _yaml_laughs(draw: st.DrawFn) -> str:
    levels = draw(st.integers(2, 10))
    width = draw(st.integers(2, 9))
    parts = [f"&a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        parts.append(f"&a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    if draw(st.booleans()):
        return f"[{', '.join(parts)}]"
    # As merge keys: each mapping merges the one before, several times over.
    merges = [f"&m0 {{k0: {', '.join(['lol'] * width)}}}"]
    for level in range(1, levels):
        sources = ", ".join([f"*m{level - 1}"] * width)
        merges.append(f"&m{level} {{<<: [{sources}], k{level}: x}}")
    return f"[{', '.join(merges)}]"


@st.composite
def _yaml_deep(draw: st.DrawFn) -> str:
    depth = draw(st.sampled_from([150, 199, 200, 201, 250, 600, 1_001, 5_000]))
    kind = draw(st.sampled_from(["all", "any", "not", "list", "map"]))
    leaf = "{args.x: 1}"
    if kind == "not":
        return "{not: " * depth + leaf + "}" * depth
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "map":
        return "{a: " * depth + "1" + "}" * depth
    return f"{{{kind}: [" * depth + leaf + "]}" * depth


def _yaml_numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(4_000, 6_000).map(lambda n: "9" * n),
        st.integers(3_000, 5_000).map(lambda n: "0x" + "f" * n),
        st.integers(100, 3_000).map(lambda n: "1" + ":59" * n),
        st.sampled_from(["1e400", "-1e400", ".inf", "-.inf", ".nan", "0b" + "1" * 20_000]),
    )


@st.composite
def _yaml_text(draw: st.DrawFn) -> str:
    escape = draw(st.sampled_from(_ESCAPES))
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return f'"x{escape}y"'
    if choice == 1:
        return f'{{"k{escape}": 1}}'
    if choice == 2:
        return f'{{"args.{escape}": {{gt: 1}}}}'
    return draw(
        st.sampled_from(
            [
                "!!python/object/apply:os.system [echo pwned]",
                "!!set {a, b}",
                "!!omap [{a: 1}, {b: 2}]",
                "!!binary aGVsbG8=",
                "!foo bar",
                "{[a]: 1}",
                "{a: 1, a: 2}",
                "*undefined",
                "&a [*a]",
            ]
        )
    )


def _yaml_size() -> st.SearchStrategy[str]:
    return st.integers(100, 3_000).map(lambda n: "[" + ", ".join(["x"] * n) + "]")


_YAML_PAYLOADS = st.one_of(
    _yaml_laughs(), _yaml_deep(), _yaml_numbers(), _yaml_text(), _yaml_size()
)

_YAML_SKELETONS = (
    # policies
    "rules:\n  - id: r\n    effect: allow\n    actions: [crm.contact.read]\n    when: {p}\n",
    "rules:\n  - id: r\n    effect: deny\n    actions: [a.b]\n    when: {{args.x: {{in: {p}}}}}\n",
    "rules:\n  - id: r\n    effect: allow\n    actions: {p}\n",
    "rules:\n  - id: r\n    effect: allow\n    actions: [a.b]\n    principals: {{roles: {p}}}\n",
    "version: {p}\nrules: []\n",
    "name: {p}\nrules: []\n",
    "rules: {p}\n",
    "{p}\n",
    # policy test cases
    "cases:\n  - name: c\n    request: {{principal: {{agent: a}}, action: a.b, args: {{x: {p}}}}}\n"
    "    expect: deny\n",
    "cases:\n  - name: {p}\n    request: {{principal: {{agent: a}}, action: a.b}}\n"
    "    expect: allow\n",
    "cases: {p}\n",
    # routes
    "routes:\n  - name: r\n    levels:\n      - deciders: [a]\n        resolve_within: {p}\n",
    "routes:\n  - name: r\n    levels:\n      - deciders: {p}\n        resolve_within: 4h\n",
    "routes:\n  - name: r\n    levels: [{{deciders: [group:g], resolve_within: 1h}}]\n"
    "groups: {p}\n",
    "routes:\n  - name: r\n    hours: {p}\n    levels: [{{deciders: [a], resolve_within: 1h}}]\n",
)


def hostile_yaml() -> st.SearchStrategy[str]:
    """YAML text: a policy, test-case or routes file with a hostile payload, or junk.

    Payloads: alias bombs (anchors and merge keys), nesting up to 5,000 deep,
    huge and odd numbers, escaped control characters in keys and values,
    unsafe or unsupported tags, long lists.
    """
    planted = st.builds(
        lambda skeleton, payload: skeleton.format(p=payload),
        st.sampled_from(_YAML_SKELETONS),
        _YAML_PAYLOADS,
    )
    return st.one_of(planted, st.text(max_size=200))


# -- TOML ----------------------------------------------------------------------------------


@st.composite
def _toml_deep(draw: st.DrawFn) -> tuple[str, str]:
    depth = draw(st.sampled_from([150, 200, 201, 400, 2_000]))
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return "[" * depth + "1" + "]" * depth, ""
    if kind == 1:
        return "{ a = " * depth + "1" + " }" * depth, ""
    # Dotted keys: nesting without brackets, on a line of its own.
    return "1", "\n[deep]\n" + ".".join(["a"] * depth) + " = 1\n"


def _toml_payloads() -> st.SearchStrategy[tuple[str, str]]:
    values = st.one_of(
        st.integers(4_000, 6_000).map(lambda n: "9" * n),
        st.integers(3_000, 5_000).map(lambda n: "0x" + "f" * n),
        st.sampled_from(["1e40", "1e400", "-inf", "nan", "99999999999", "1979-05-27T07:32:00Z"]),
        st.sampled_from(_JSON_ESCAPES).map(lambda e: f'"x{e}y"'),
        st.sampled_from(_JSON_ESCAPES).map(lambda e: f'{{ "k{e}" = 1 }}'),
        st.integers(100, 3_000).map(lambda n: "[" + ", ".join(['"x"'] * n) + "]"),
    )
    return st.one_of(values.map(lambda v: (v, "")), _toml_deep())


_TOML_SKELETONS = (
    '[[rules]]\nid = "r"\neffect = "allow"\nactions = ["a.b"]\nwhen = {p}\n',
    '[[rules]]\nid = "r"\neffect = "deny"\nactions = ["a.b"]\n[rules.when]\n"args.x" = {p}\n',
    '[[rules]]\nid = "r"\neffect = "allow"\nactions = {p}\n',
    "version = {p}\nrules = []\n",
    '[[routes]]\nname = "r"\n[[routes.levels]]\ndeciders = ["a"]\nresolve_within = {p}\n',
    '[[routes]]\nname = "r"\n[[routes.levels]]\ndeciders = {p}\nresolve_within = "1h"\n',
)


def hostile_toml() -> st.SearchStrategy[str]:
    """TOML text: a policy or routes file with a hostile payload, or junk.

    Payloads: inline arrays and tables nested up to 2,000 deep, dotted keys
    as deep, integers past the digit limit, ``1e40`` and infinities,
    escaped control characters, long arrays.
    """
    planted = st.builds(
        lambda skeleton, payload: skeleton.format(p=payload[0]) + payload[1],
        st.sampled_from(_TOML_SKELETONS),
        _toml_payloads(),
    )
    return st.one_of(planted, st.text(max_size=200))


# -- JSON ----------------------------------------------------------------------------------


def hostile_json() -> st.SearchStrategy[str]:
    """JSON text for a command line's ``--args``: deep, huge, odd numbers, control characters.

    Mostly a JSON object (``{"x": PAYLOAD}``); sometimes junk or another kind.
    """
    deep = st.sampled_from([150, 1_000, 100_000]).flatmap(
        lambda depth: st.sampled_from(
            ["[" * depth + "]" * depth, '{"a": ' * depth + "1" + "}" * depth]
        )
    )
    payload = st.one_of(
        deep,
        st.integers(4_000, 6_000).map(lambda n: "9" * n),
        st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "1.5", "true", "null"]),
        st.sampled_from(_JSON_ESCAPES).map(lambda e: f'"x{e}y"'),
        st.sampled_from(_JSON_ESCAPES).map(lambda e: f'{{"k{e}": 1}}'),
        st.integers(100, 3_000).map(lambda n: json.dumps(["x"] * n)),
    )
    planted = payload.map(lambda p: f'{{"x": {p}}}')
    return st.one_of(planted, payload, st.text(max_size=50))
