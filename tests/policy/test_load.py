"""Policy files: loading YAML and TOML, errors naming file, line, rule and field, writing back."""

from __future__ import annotations

import datetime as dt
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from handrail import ActionRequest, Effect, Policy, PolicyError, Principal, Rule
from handrail._yaml import read_yaml as _read_yaml
from handrail.identity import User
from handrail.policy import Compare, Predicate

CRM_YAML = """\
version: 1
name: crm-agent
description: What the CRM agent may do.
rules:
  - id: read-anything
    effect: allow
    actions: crm.*.read
  - id: update-opportunities
    effect: allow
    actions: [crm.opportunity.update]
    principals: {roles: [sales_rep]}
  - id: big-discount
    effect: escalate
    actions: [crm.opportunity.update]
    principals: {roles: [sales_rep]}
    when: {args.discount_pct: {gt: 20}}
    escalate_to: sales-managers
    description: Discounts above 20 % need a sales manager.
    owner: revops@example.com
  - id: log-exports
    effect: audit
    actions: [crm.contact.export]
    when:
      any:
        - context.environment: production
        - args.to_domain: {not_in: [acme.com, acme.io]}
  - id: no-deletes
    effect: deny
    actions: ["crm.*.delete"]
"""

CRM_TOML = """\
version = 1
name = "crm-agent"
description = "What the CRM agent may do."

[[rules]]
id = "read-anything"
effect = "allow"
actions = "crm.*.read"

[[rules]]
id = "update-opportunities"
effect = "allow"
actions = ["crm.opportunity.update"]
principals = { roles = ["sales_rep"] }

[[rules]]
id = "big-discount"
effect = "escalate"
actions = ["crm.opportunity.update"]
principals = { roles = ["sales_rep"] }
when = { "args.discount_pct" = { gt = 20 } }
escalate_to = "sales-managers"
description = "Discounts above 20 % need a sales manager."
owner = "revops@example.com"

[[rules]]
id = "log-exports"
effect = "audit"
actions = ["crm.contact.export"]

[rules.when]
any = [
    { "context.environment" = "production" },
    { "args.to_domain" = { not_in = ["acme.com", "acme.io"] } },
]

[[rules]]
id = "no-deletes"
effect = "deny"
actions = ["crm.*.delete"]
"""

REP = Principal(agent="crm-bot", roles=frozenset({"sales_rep"}))
INTERN = Principal(agent="crm-bot", on_behalf_of=User(id="ann", roles=frozenset({"intern"})))

REQUESTS = [
    ActionRequest(principal=INTERN, action="crm.contact.read"),
    ActionRequest(principal=REP, action="crm.opportunity.update", args={"discount_pct": 10}),
    ActionRequest(principal=REP, action="crm.opportunity.update", args={"discount_pct": 30}),
    ActionRequest(principal=REP, action="crm.opportunity.update"),
    ActionRequest(principal=INTERN, action="crm.opportunity.update", args={"discount_pct": 5}),
    ActionRequest(
        principal=REP, action="crm.contact.export", context={"environment": "production"}
    ),
    ActionRequest(
        principal=REP,
        action="crm.contact.export",
        context={"environment": "staging"},
        args={"to_domain": "acme.com"},
    ),
    ActionRequest(principal=REP, action="crm.contact.delete"),
    ActionRequest(principal=REP, action="billing.invoice.read"),
]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(path: Path) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        Policy.from_file(path)
    return caught.value


def decisions(policy: Policy) -> list[tuple[Effect, str | None, str | None]]:
    return [(d.effect, d.rule_id, d.escalate_to) for d in (policy.evaluate(r) for r in REQUESTS)]


# -- loading --------------------------------------------------------------------


def test_yaml_file_loads_into_a_policy(tmp_path: Path) -> None:
    """A YAML file becomes a policy with its name, description, source and rules."""
    path = write(tmp_path, "policy.yaml", CRM_YAML)
    policy = Policy.from_file(path)
    assert policy.name == "crm-agent"
    assert policy.description == "What the CRM agent may do."
    assert policy.source == path
    assert [r.id for r in policy.rules] == [
        "read-anything",
        "update-opportunities",
        "big-discount",
        "log-exports",
        "no-deletes",
    ]
    big = policy.rule("big-discount")
    assert big.effect is Effect.ESCALATE
    assert big.escalate_to == "sales-managers"
    assert big.owner == "revops@example.com"
    assert big.when == Compare(path="args.discount_pct", op="gt", value=20)
    assert policy.rule("read-anything").actions == ("crm.*.read",)


def test_yaml_and_toml_files_decide_identically(tmp_path: Path) -> None:
    """The same policy written in YAML and in TOML makes the same decision on every request."""
    from_yaml = Policy.from_file(write(tmp_path, "policy.yaml", CRM_YAML))
    from_toml = Policy.from_file(write(tmp_path, "policy.toml", CRM_TOML))
    assert from_yaml.to_dict() == from_toml.to_dict()
    assert decisions(from_yaml) == decisions(from_toml)
    assert decisions(from_yaml) == [
        (Effect.ALLOW, "read-anything", None),
        (Effect.ALLOW, "update-opportunities", None),
        (Effect.ESCALATE, "big-discount", "sales-managers"),
        (Effect.ESCALATE, "big-discount", "sales-managers"),  # undetermined restricts
        (Effect.DENY, None, None),
        (Effect.AUDIT, "log-exports", None),
        (Effect.DENY, None, None),  # no grant covers an export outside production
        (Effect.DENY, "no-deletes", None),
        (Effect.DENY, None, None),
    ]


def test_yml_suffix_and_upper_case_suffixes_are_accepted(tmp_path: Path) -> None:
    """``.yml`` is YAML and suffixes are matched without regard to case."""
    assert len(Policy.from_file(write(tmp_path, "a.yml", CRM_YAML)).rules) == 5
    assert len(Policy.from_file(write(tmp_path, "b.YAML", CRM_YAML)).rules) == 5
    assert len(Policy.from_file(write(tmp_path, "c.TOML", CRM_TOML)).rules) == 5


def test_text_loaders_name_the_source_in_errors() -> None:
    """from_yaml and from_toml put ``source`` in front of every problem."""
    with pytest.raises(PolicyError) as caught:
        Policy.from_yaml("rules: 5\n", source="inline.yaml")
    assert str(caught.value).startswith("inline.yaml:1: rules: expected a list of rules")
    with pytest.raises(PolicyError) as caught:
        Policy.from_toml("rules = 5\n", source="inline.toml")
    assert str(caught.value).startswith("inline.toml:1: rules: expected a list of rules")


def test_empty_rules_list_is_a_policy_that_denies_everything() -> None:
    """``rules: []`` is valid: with no grant every request is denied."""
    policy = Policy.from_yaml("rules: []\n")
    assert policy.rules == ()
    assert policy.evaluate(REQUESTS[0]).effect is Effect.DENY


def test_yaml_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    """Anchors, aliases and ``<<`` merges read as they would with yaml.safe_load."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        rules:
          - &base
            id: read
            effect: allow
            actions: [crm.contact.read]
            principals: &reps {roles: [sales_rep]}
          - <<: *base
            id: read-deals
            actions: [crm.opportunity.read]
          - id: export
            effect: allow
            actions: [crm.contact.export]
            principals: *reps
        """,
    )
    policy = Policy.from_file(path)
    assert policy.rule("read-deals").effect is Effect.ALLOW
    assert policy.rule("read-deals").actions == ("crm.opportunity.read",)
    assert policy.rule("export").principals.roles == frozenset({"sales_rep"})


def test_merged_rules_point_at_their_own_keys_or_the_anchor(tmp_path: Path) -> None:
    """After a ``<<`` merge, explicit keys keep their lines and merged ones point at the anchor."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        rules:
          - &base
            id: read
            effect: alow
            actions: [crm.contact.read]
          - <<: *base
            id: read
        """,
    )
    error = load_error(path)
    assert [(p.line, p.rule_id, p.field) for p in error.problems] == [
        (4, "read", "effect"),
        (4, "read", "effect"),  # the second rule's effect is the anchor's
        (7, "read", "id"),
    ]
    assert "already used by the rule at line 3" in str(error)


yaml_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.dates(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(yaml_values)
def test_yaml_reader_builds_what_safe_load_builds(value: Any) -> None:
    """The line-tracking YAML reader yields exactly the data yaml.safe_load does."""
    for flow in (False, True):
        text = yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True)
        data, _, issues = _read_yaml(text, None)
        assert issues == []
        assert data == yaml.safe_load(text)


# -- errors: file level -----------------------------------------------------------


def test_unknown_suffix_names_the_path_and_the_accepted_suffixes(tmp_path: Path) -> None:
    """A file that is neither YAML nor TOML by name is refused, saying how to name it."""
    path = write(tmp_path, "policy.json", "{}")
    error = load_error(path)
    assert error.path == path
    assert error.line is None
    assert str(error) == (
        f"{path}: cannot tell the format from the suffix '.json': "
        "name a policy file *.yaml, *.yml or *.toml"
    )


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    """A file that cannot be read is a PolicyError naming it, caused by the OSError."""
    path = tmp_path / "nowhere.yaml"
    error = load_error(path)
    assert error.path == path
    assert str(error).startswith(f"{path}: cannot read the policy file: No such file")
    assert "check the path" in str(error)
    assert isinstance(error.__cause__, FileNotFoundError)


def test_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are a PolicyError that says to save the file as UTF-8."""
    path = tmp_path / "policy.yaml"
    path.write_bytes(b"name: caf\xe9\nrules: []\n")
    error = load_error(path)
    assert error.path == path
    assert "save the file as UTF-8" in str(error)
    assert isinstance(error.__cause__, UnicodeDecodeError)


def test_yaml_syntax_error_has_the_line_of_the_yaml_mark(tmp_path: Path) -> None:
    """Malformed YAML is reported at the line PyYAML points at, with a hint."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        rules:
          - id: a
            effect: allow
            actions: [crm.contact.read
          - id: b
        """,
    )
    error = load_error(path)
    assert (error.path, error.line) == (path, 5)
    assert "YAML syntax error" in str(error)
    assert "check the indentation" in str(error)
    assert isinstance(error.__cause__, yaml.YAMLError)


def test_toml_syntax_error_has_the_line_from_the_decoder(tmp_path: Path) -> None:
    """Malformed TOML is reported at the line tomllib names, without repeating it."""
    path = write(
        tmp_path,
        "policy.toml",
        """\
        [[rules]]
        id = "a"
        effect = allow
        """,
    )
    error = load_error(path)
    assert (error.path, error.line) == (path, 3)
    assert str(error).startswith(f"{path}:3: TOML syntax error: Invalid value;")
    assert "(at line" not in str(error)


def test_empty_yaml_file_says_what_a_policy_needs(tmp_path: Path) -> None:
    """A file with nothing but comments is refused: it must at least say ``rules:``."""
    for name in ("policy.yaml", "policy.toml"):
        error = load_error(write(tmp_path, name, "# nothing yet\n"))
        assert (error.line, error.field) == (1, "rules")
        assert "missing: a policy lists its rules under 'rules' (rules: [] for none)" in str(error)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    """A file whose top level is a list says a policy is a mapping with a 'rules' list."""
    error = load_error(write(tmp_path, "policy.yaml", "- id: a\n  effect: allow\n"))
    assert error.line == 1
    assert error.field is None
    assert "a policy is a mapping with a 'rules' list at the top level, got a list" in str(error)


def test_unknown_top_level_key_suggests_the_close_one(tmp_path: Path) -> None:
    """A misspelt top-level key is named at its line with a suggestion and the allowed keys."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        name: crm
        rule:
          - id: a
        """,
    )
    error = load_error(path)
    problems = {(p.field, p.line): p.message for p in error.problems}
    assert problems[("rule", 2)] == (
        "unknown field 'rule': did you mean 'rules'? "
        "(a policy takes version, name, description, rules)"
    )
    assert problems[("rules", 1)].startswith("missing: a policy lists its rules under 'rules'")


@pytest.mark.parametrize("version", ["2", "'1'", "true", "1.0"])
def test_version_must_be_one(tmp_path: Path, version: str) -> None:
    """Only ``version: 1`` (the number) is accepted, and the message says to write it."""
    error = load_error(write(tmp_path, "policy.yaml", f"rules: []\nversion: {version}\n"))
    assert (error.line, error.field) == (2, "version")
    assert "this handrail reads version 1 (write version: 1, or leave it out)" in str(error)


def test_rules_must_be_a_list(tmp_path: Path) -> None:
    """``rules`` given as a mapping is refused at its line, saying how to write a list."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        name: crm
        rules:
          id: a
        """,
    )
    error = load_error(path)
    assert (error.line, error.field, error.rule_id) == (2, "rules", None)
    assert "expected a list of rules (YAML '- id: ...' items, TOML [[rules]] tables)" in str(error)


def test_name_and_description_must_be_text(tmp_path: Path) -> None:
    """A number as the policy's name is refused and the message says to quote it."""
    error = load_error(write(tmp_path, "policy.yaml", "name: 42\nrules: []\n"))
    assert (error.line, error.field) == (1, "name")
    assert "expected text, got number 42: quote it ('42')" in str(error)


# -- errors: inside a rule -------------------------------------------------------


def test_rule_that_is_not_a_mapping_is_named_by_position(tmp_path: Path) -> None:
    """A rule written as a bare string is reported at its line as rules[i]."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        rules:
          - id: a
            effect: allow
            actions: x
          - read everything
        """,
    )
    error = load_error(path)
    assert (error.line, error.field, error.rule_id) == (5, "rules[1]", None)
    assert "expected a rule (a mapping with id, effect and actions), got text" in str(error)


def test_unknown_effect_names_file_line_rule_and_field(tmp_path: Path) -> None:
    """The house example: file:line: rule 'id': effect: unknown effect ... (expected ...)."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        rules:
          - id: big-discount
            effect: escalte
            actions: [crm.opportunity.update]
            escalate_to: sales-managers
        """,
    )
    error = load_error(path)
    assert len(error.problems) == 1
    problem = error.problems[0]
    assert (problem.path, problem.line, problem.rule_id, problem.field) == (
        path,
        3,
        "big-discount",
        "effect",
    )
    assert str(problem) == (
        f"{path}:3: rule 'big-discount': effect: "
        "unknown effect 'escalte' (expected allow, audit, escalate, deny)"
    )


def test_unknown_field_in_a_rule_suggests_and_lists_the_allowed_fields(tmp_path: Path) -> None:
    """A misspelt rule key is named at its own line with a suggestion and every allowed field."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        rules:
          - id: a
            efect: allow
            effect: allow
            actions: x
        """,
    )
    error = load_error(path)
    assert (error.line, error.rule_id, error.field) == (3, "a", "efect")
    assert error.problems[0].message == (
        "unknown field 'efect': did you mean 'effect'? (a rule takes id, effect, actions, "
        "principals, when, escalate_to, on_timeout, description, owner)"
    )


def test_unknown_principal_kind_lists_the_kinds(tmp_path: Path) -> None:
    """A misspelt key under principals suggests the kind and lists agents, users, groups, roles."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        rules:
          - id: a
            effect: allow
            actions: x
            principals:
              role: [sales_rep]
        """,
    )
    error = load_error(path)
    assert (error.line, error.field) == (6, "principals.role")
    assert "did you mean 'roles'? (principals takes agents, users, groups, roles)" in str(error)


@pytest.mark.parametrize(
    ("missing", "field", "rule_id", "hint"),
    [
        ("id", "rules[0].id", None, "every rule needs an id, unique in the policy"),
        ("effect", "effect", "a", "say what the rule does with one of allow, audit, escalate"),
        ("actions", "actions", "a", "list the actions the rule covers, for example actions: ["),
    ],
)
def test_missing_required_field_points_at_the_rule(
    tmp_path: Path, missing: str, field: str, rule_id: str | None, hint: str
) -> None:
    """A rule without id, effect or actions is reported at the rule's first line."""
    fields = {"id": "id: a", "effect": "effect: allow", "actions": "actions: x"}
    body = "\n    ".join(v for k, v in fields.items() if k != missing)
    error = load_error(write(tmp_path, "policy.yaml", f"rules:\n  - {body}\n"))
    assert (error.line, error.field, error.rule_id) == (2, field, rule_id)
    assert hint in str(error)


def test_escalate_without_route_points_at_the_effect(tmp_path: Path) -> None:
    """An escalate rule without escalate_to is reported at its effect, naming the missing key."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        rules:
          - id: ask
            actions: x
            effect: escalate
        """,
    )
    error = load_error(path)
    assert (error.line, error.rule_id, error.field) == (4, "ask", "effect")
    assert "an escalate rule needs 'escalate_to'" in str(error)
    assert "escalate_to: sales-managers" in str(error)


def test_route_on_a_non_escalate_rule_points_at_escalate_to(tmp_path: Path) -> None:
    """escalate_to on an allow rule is reported at the escalate_to line."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        rules:
          - id: ok
            effect: allow
            actions: x
            escalate_to: managers
        """,
    )
    error = load_error(path)
    assert (error.line, error.rule_id, error.field) == (5, "ok", "escalate_to")
    assert "'escalate_to' is only meaningful on an escalate rule, not on allow" in str(error)


def test_malformed_action_pattern_points_at_the_item(tmp_path: Path) -> None:
    """A bad pattern in a block list is reported at its own line, with examples of good ones."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        rules:
          - id: a
            effect: allow
            actions:
              - crm.contact.read
              - crm..update
        """,
    )
    error = load_error(path)
    assert (error.line, error.rule_id, error.field) == (6, "a", "actions[1]")
    assert "malformed action pattern 'crm..update'" in str(error)
    assert "such as 'crm.*.read'" in str(error)


def test_malformed_condition_points_at_the_nested_line(tmp_path: Path) -> None:
    """An unknown operator deep in a condition is reported at its line with its full path."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        rules:
          - id: a
            effect: allow
            actions: x
            when:
              all:
                - args.y: 1
                - args.x:
                    gte: 3
        """,
    )
    error = load_error(path)
    assert (error.line, error.rule_id, error.field) == (9, "a", "when.all[1].args.x.gte")
    assert error.problems[0].message == (
        "unknown operator 'gte' (expected eq, ne, lt, le, gt, ge, in, not_in, contains, "
        "startswith, matches or exists)"
    )


def test_invalid_regex_is_reported_at_the_matches_line(tmp_path: Path) -> None:
    """A ``matches`` pattern that is not a regular expression names the regex and the line."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        rules:
          - id: a
            effect: allow
            actions: x
            when:
              args.email:
                matches: "([a-z]+@"
        """,
    )
    error = load_error(path)
    assert (error.line, error.field) == (7, "when.args.email.matches")
    assert "invalid regular expression '([a-z]+@'" in str(error)


def test_condition_that_is_not_a_mapping_says_its_shape(tmp_path: Path) -> None:
    """``when`` written as a sentence is refused with the shape a condition has."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        rules:
          - id: a
            effect: allow
            actions: x
            when: args.amount > 3
        """,
    )
    error = load_error(path)
    assert (error.line, error.field) == (5, "when")
    assert "a condition is a mapping of paths to tests, or all / any / not" in str(error)


def test_numeric_id_is_refused_with_a_quoting_hint(tmp_path: Path) -> None:
    """An id YAML reads as a number is reported with the advice to quote it."""
    error = load_error(
        write(tmp_path, "policy.yaml", "rules:\n  - id: 42\n    effect: allow\n    actions: x\n")
    )
    assert (error.line, error.field) == (2, "rules[0].id")
    assert "expected text, got number 42: quote it ('42')" in str(error)


def test_duplicate_rule_id_is_reported_at_the_second_rule(tmp_path: Path) -> None:
    """The second use of an id is the problem, and the message says where the first is."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        rules:
          - id: read
            effect: allow
            actions: crm.contact.read
          - id: read
            effect: deny
            actions: crm.contact.read
        """,
    )
    error = load_error(path)
    assert len(error.problems) == 1
    assert (error.line, error.rule_id, error.field) == (5, "read", "id")
    assert error.problems[0].message == (
        "duplicate rule id: already used by the rule at line 2; give each rule its own id"
    )


def test_duplicate_yaml_keys_are_reported(tmp_path: Path) -> None:
    """A key given twice in one mapping is reported at the second, not silently overwritten."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        name: crm
        rules:
          - id: a
            effect: allow
            actions: x
            effect: deny
        name: crm2
        """,
    )
    error = load_error(path)
    found = [(p.line, p.rule_id, p.field) for p in error.problems]
    assert found == [(6, "a", "effect"), (7, None, "name")]
    assert error.problems[0].message.startswith("duplicate key 'effect' (first at line 4)")
    assert "remove or merge one of them" in error.problems[0].message


def test_unknown_yaml_tag_is_reported_at_its_line(tmp_path: Path) -> None:
    """A custom tag that safe loading refuses is a problem at its line, not a crash."""
    error = load_error(write(tmp_path, "policy.yaml", "name: !shout crm\nrules: []\n"))
    assert (error.line, error.field) == (1, "name")
    assert "cannot read this value" in str(error)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Problems across rules are all reported, in line order, and no policy is built."""
    path = write(
        tmp_path,
        "policy.yaml",
        """\
        version: 2
        rules:
          - id: a
            effect: allow
            actions: x
          - id: b
            effect: maybe
            actions: x
          - id: c
            effect: allow
            actions: [x, "y.*z"]
            owner: 7
          - id: a
            effect: deny
            actions: x
        """,
    )
    error = load_error(path)
    assert [(p.line, p.rule_id, p.field) for p in error.problems] == [
        (1, None, "version"),
        (7, "b", "effect"),
        (11, "c", "actions[1]"),
        (12, "c", "owner"),
        (13, "a", "id"),
    ]
    assert str(error).count(str(path)) == 5


# -- TOML lines ------------------------------------------------------------------


def test_toml_problems_point_at_the_key_or_the_rule_header(tmp_path: Path) -> None:
    """TOML errors name the ``key =`` line, or the rule's [[rules]] header for a missing key."""
    path = write(
        tmp_path,
        "policy.toml",
        """\
        name = "crm"

        [[rules]]
        id = "ok"
        effect = "allow"
        actions = "x"

        [[rules]]
        id = "ask"
        actions = "x"
        effect = "escalate"

        [[rules]]
        id = "typo"
        effect = "allow"
        actions = "x"
        description = \"\"\"
        owner = 5
        \"\"\"
        efect = "allow"

        [rules.when]
        "args.amount" = { gte = 3 }

        [[rules]]
        effect = "allow"
        """,
    )
    error = load_error(path)
    assert [(p.line, p.rule_id, p.field) for p in error.problems] == [
        (11, "ask", "effect"),  # escalate without a route: at the effect key
        (20, "typo", "efect"),  # the multi-line string above is not read as keys
        (23, "typo", "when.args.amount.gte"),
        (25, None, "rules[3].id"),  # missing keys: at the rule's [[rules]] header
        (25, None, "rules[3].actions"),
    ]


def test_toml_written_by_to_toml_still_gets_exact_lines(tmp_path: Path) -> None:
    """Conditions written as [[rules.when.all]] tables are located at their own keys."""
    policy = Policy.from_yaml(
        "rules:\n"
        "  - id: a\n"
        "    effect: allow\n"
        "    actions: x\n"
        "    when: {all: [{args.x: {in: [1, 2]}}, {args.y: {gt: 20}}]}\n"
    )
    text = policy.to_toml().replace("gt = 20", "gte = 20")
    path = write(tmp_path, "policy.toml", text)
    error = load_error(path)
    assert error.field == "when.all[1].args.y.gte"
    assert error.line == text.splitlines().index("gte = 20") + 1


# -- from_dict: no file, no lines ------------------------------------------------


def test_from_dict_names_rule_and_field_without_lines() -> None:
    """Data without a file still says which rule and field is wrong, and how to fix it."""
    with pytest.raises(PolicyError) as caught:
        Policy.from_dict({"rules": [{"id": "big-discount", "effect": "escalte", "actions": ["x"]}]})
    problem = caught.value.problems[0]
    assert (problem.path, problem.line, problem.rule_id, problem.field) == (
        None,
        None,
        "big-discount",
        "effect",
    )
    assert str(problem) == (
        "rule 'big-discount': effect: unknown effect 'escalte' "
        "(expected allow, audit, escalate, deny)"
    )


def test_from_dict_duplicate_id_names_the_first_by_position() -> None:
    """Without lines a duplicate id points at the first rule by its index."""
    rule = {"id": "a", "effect": "allow", "actions": "x"}
    with pytest.raises(PolicyError) as caught:
        Policy.from_dict({"rules": [rule, rule]})
    assert caught.value.problems[0].message == (
        "duplicate rule id: already used by rules[0]; give each rule its own id"
    )


# -- writing -----------------------------------------------------------------------


def test_to_dict_omits_defaults() -> None:
    """Empty principals, descriptions, owners and absent conditions or routes are left out."""
    policy = Policy.from_yaml("rules:\n  - {id: a, effect: allow, actions: x}\n")
    assert policy.to_dict() == {
        "version": 1,
        "rules": [{"id": "a", "effect": "allow", "actions": ["x"]}],
    }


def test_yaml_round_trip_keeps_the_policy(tmp_path: Path) -> None:
    """to_yaml then from_yaml gives the same data and the same decisions."""
    policy = Policy.from_file(write(tmp_path, "policy.yaml", CRM_YAML))
    again = Policy.from_yaml(policy.to_yaml())
    assert again.to_dict() == policy.to_dict()
    assert decisions(again) == decisions(policy)
    assert again.name == "crm-agent"
    assert again.description == "What the CRM agent may do."


def test_toml_round_trip_keeps_the_policy(tmp_path: Path) -> None:
    """to_toml then from_toml gives the same data and the same decisions."""
    policy = Policy.from_file(write(tmp_path, "policy.yaml", CRM_YAML))
    again = Policy.from_toml(policy.to_toml())
    assert again.to_dict() == policy.to_dict()
    assert decisions(again) == decisions(policy)


def test_round_trip_keeps_dates_negations_and_unicode() -> None:
    """Dates, ``not`` / ``exists`` and non-ASCII text survive both formats."""
    policy = Policy.from_yaml(
        textwrap.dedent(
            """\
            description: Règles de l'agent ✓
            rules:
              - id: after-launch
                effect: allow
                actions: x
                when:
                  args.day: {ge: 2024-06-01}
                  not: {args.draft: {exists: true}}
                owner: zoë@example.com
            """
        )
    )
    for text, load in ((policy.to_yaml(), Policy.from_yaml), (policy.to_toml(), Policy.from_toml)):
        again = load(text)
        assert again.to_dict() == policy.to_dict()
        assert again.rule("after-launch").when == policy.rule("after-launch").when
        for day, effect in (
            (dt.date(2024, 6, 2), Effect.ALLOW),
            (dt.date(2024, 5, 1), Effect.DENY),
        ):
            request = ActionRequest(principal=REP, action="x", args={"day": day})
            assert again.evaluate(request).effect is effect
    assert "✓" in policy.to_yaml()


def test_predicate_rules_refuse_to_serialize() -> None:
    """A rule with a Python predicate cannot be written: every such rule is named."""
    rules = [
        Rule(id="code", effect=Effect.ALLOW, actions=("x",), when=Predicate(fn=lambda r: True)),
        Rule(id="plain", effect=Effect.ALLOW, actions=("y",)),
    ]
    policy = Policy(rules)
    for write_out in (policy.to_dict, policy.to_yaml, policy.to_toml):
        with pytest.raises(PolicyError) as caught:
            write_out()
        assert [(p.rule_id, p.field) for p in caught.value.problems] == [("code", "when")]
        assert "cannot be written to a policy file" in str(caught.value)


def test_toml_refuses_null_condition_values() -> None:
    """TOML has no null, so ``eq: null`` cannot be written as TOML (YAML is fine)."""
    policy = Policy.from_yaml(
        "rules:\n  - {id: a, effect: allow, actions: x, when: {args.owner: null}}\n"
    )
    assert Policy.from_yaml(policy.to_yaml()).to_dict() == policy.to_dict()
    with pytest.raises(PolicyError) as caught:
        policy.to_toml()
    assert (caught.value.rule_id, caught.value.field) == ("a", "when.args.owner.eq")
    assert "TOML cannot hold null" in str(caught.value)


def test_writing_toml_without_the_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without tomli-w, to_toml names the extra to install."""
    monkeypatch.setitem(sys.modules, "tomli_w", None)
    policy = Policy.from_yaml(CRM_YAML)
    with pytest.raises(PolicyError) as caught:
        policy.to_toml()
    assert str(caught.value) == (
        "writing TOML needs the 'toml' extra: pip install 'handrail[toml]'"
    )
    assert isinstance(caught.value.__cause__, ImportError)


def test_a_loaded_policy_knows_the_line_of_each_rule_and_field() -> None:
    """line_of points at a rule's field (or the rule, for a field not written), in both formats."""
    yaml_text = textwrap.dedent(
        """\
        rules:
          - id: read
            effect: allow
            actions: crm.*.read
          - id: discount
            effect: escalate
            actions: crm.deal.discount
            escalate_to: sales-managers
        """
    )
    toml_text = textwrap.dedent(
        """\
        [[rules]]
        id = "read"
        effect = "allow"
        actions = "crm.*.read"

        [[rules]]
        id = "discount"
        effect = "escalate"
        actions = "crm.deal.discount"
        escalate_to = "sales-managers"
        """
    )
    from_yaml, from_toml = Policy.from_yaml(yaml_text), Policy.from_toml(toml_text)
    assert from_yaml.line_of("discount", "escalate_to") == 8
    assert from_toml.line_of("discount", "escalate_to") == 10
    assert from_yaml.line_of("discount") == 5
    assert from_toml.line_of("discount") == 6
    assert from_yaml.line_of("read", "escalate_to") == from_yaml.line_of("read") == 2
    with pytest.raises(KeyError, match="no rule 'nope'"):
        from_yaml.line_of("nope")


def test_a_policy_not_read_from_text_has_no_lines() -> None:
    """Built in code or from a mapping, a policy has no file to point into."""
    rule = Rule(id="a", effect=Effect.ALLOW, actions="x")
    assert Policy([rule]).line_of("a", "effect") is None
    assert (
        Policy.from_dict({"rules": [{"id": "a", "effect": "allow", "actions": "x"}]}).line_of("a")
        is None
    )
