"""Routes files: YAML and TOML to routes and groups, every problem with its file, line and field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handrail import PolicyError
from handrail.escalation import BusinessHours, OnTimeout
from handrail.escalation._routes_file import (
    RoutesFile,
    load_routes,
    parse_duration,
    routes_from_dict,
    routes_from_toml,
    routes_from_yaml,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "routes" / "sales.yaml"
MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)

VALID = """\
routes:
  - name: sales-managers
    hours: {timezone: Europe/Berlin, days: [1, 2, 3, 4, 5], start: "09:00", end: "17:00"}
    on_timeout: deny
    repeat_last: 1
    levels:
      - name: team-lead
        notify: ["#sales-approvals", maria@example.com]
        channels: [slack]
        deciders: [maria, group:sales-leads]
        ack_within: 30m
        resolve_within: 4h
        warn_at: 0.75
groups:
  sales-leads: [maria, li]
"""


def test_the_example_file_loads() -> None:
    """examples/routes/sales.yaml: discounts to the team lead, then the director; refunds wait."""
    loaded = load_routes(EXAMPLE)
    assert isinstance(loaded, RoutesFile)
    assert loaded.source == EXAMPLE
    sales = loaded.route("sales-managers")
    assert [level.name for level in sales.levels] == ["team-lead", "sales-director"]
    lead, director = sales.levels
    assert (lead.ack_within, lead.resolve_within) == (30 * MINUTE, 4 * HOUR)
    assert (director.ack_within, director.resolve_within) == (HOUR, 8 * HOUR)
    assert (sales.repeat_last, sales.on_timeout) == (1, OnTimeout.DENY)
    assert sales.hours is not None
    assert sales.hours.timezone == "Europe/Berlin"
    assert (sales.hours.start, sales.hours.end) == (dt.time(9), dt.time(17))
    assert dt.date(2026, 12, 24) in sales.hours.holidays
    assert loaded.route("finance").on_timeout is OnTimeout.KEEP_OPEN
    assert loaded.groups["sales-leads"] == frozenset({"maria", "li"})
    assert loaded.groups_of("li") == frozenset({"sales-leads"})
    assert loaded.groups_of("nobody") == frozenset()


def test_the_brief_shape_reads_every_field() -> None:
    """Every field of the documented shape lands on the Route and Level models."""
    loaded = routes_from_yaml(VALID)
    (route,) = loaded.routes
    (level,) = route.levels
    assert route.hours == BusinessHours(timezone="Europe/Berlin")
    assert level.notify == ("#sales-approvals", "maria@example.com")
    assert level.channels == ("slack",)
    assert level.deciders == ("maria", "group:sales-leads")
    assert level.warn_at == 0.75
    assert loaded.source is None


def test_toml_and_plain_data_read_the_same_routes(tmp_path: Path) -> None:
    """A ``.toml`` file and a mapping give the same routes as the YAML."""
    toml = tmp_path / "routes.toml"
    toml.write_text(
        """\
[[routes]]
name = "sales-managers"
on_timeout = "deny"
repeat_last = 1

[routes.hours]
timezone = "Europe/Berlin"
days = [1, 2, 3, 4, 5]
start = 09:00:00
end = "17:00"

[[routes.levels]]
name = "team-lead"
notify = ["#sales-approvals", "maria@example.com"]
channels = ["slack"]
deciders = ["maria", "group:sales-leads"]
ack_within = "PT30M"
resolve_within = 14400
warn_at = 0.75

[groups]
sales-leads = ["maria", "li"]
""",
        encoding="utf-8",
    )
    from_yaml = routes_from_yaml(VALID)
    assert load_routes(toml).routes == from_yaml.routes
    assert load_routes(toml).groups == from_yaml.groups
    data = {"routes": [r.model_dump() for r in from_yaml.routes], "groups": {"sales-leads": ["y"]}}
    assert routes_from_dict(data).routes == from_yaml.routes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", dt.timedelta(seconds=90)),
        ("30m", 30 * MINUTE),
        ("4h", 4 * HOUR),
        ("2d", dt.timedelta(days=2)),
        ("1w", dt.timedelta(weeks=1)),
        ("1h30m", 90 * MINUTE),
        ("1h 30m", 90 * MINUTE),
        ("1.5h", 90 * MINUTE),
        ("PT4H", 4 * HOUR),
        ("P1DT2H", dt.timedelta(days=1, hours=2)),
        (600, 10 * MINUTE),
        (1.5, dt.timedelta(seconds=1.5)),
    ],
)
def test_durations_read_compact_iso_and_seconds(text: str | float, expected: dt.timedelta) -> None:
    """Compact (1h30m), ISO 8601 (PT4H) and numbers of seconds all read."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("-30m", "longer than zero, got '-30m'"),
        ("0m", "longer than zero"),
        (0, "longer than zero, got 0"),
        (-5, "longer than zero, got -5"),
        ("-PT4H", "longer than zero"),
        ("PT0S", "longer than zero"),
        ("4 hours", "cannot read '4 hours' as a duration"),
        ("30m1h", "cannot read"),
        ("", "cannot read"),
        ("PTxH", "as an ISO 8601 duration"),
        (True, "got boolean true"),
        (None, "got null"),
        ([1], "got a list"),
        (float("inf"), "got inf"),
    ],
)
def test_bad_durations_say_why(value: object, says: str) -> None:
    """Negative, zero and unreadable durations raise ValueError naming the forms read."""
    with pytest.raises(ValueError, match="duration") as caught:
        parse_duration(value)
    assert says in str(caught.value)


@given(hours=st.integers(0, 500), minutes=st.integers(0, 59), seconds=st.integers(0, 59))
def test_compact_durations_add_up(hours: int, minutes: int, seconds: int) -> None:
    """``<h>h<m>m<s>s`` is exactly that many hours, minutes and seconds."""
    total = dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)
    text = f"{hours}h{minutes}m{seconds}s"
    if total:
        assert parse_duration(text) == total
    else:
        with pytest.raises(ValueError, match="longer than zero"):
            parse_duration(text)


# -- problems: file, line and field ----------------------------------------------------------


def problems(
    tmp_path: Path, text: str, name: str = "routes.yaml"
) -> list[tuple[int | None, str | None, str]]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_routes(path)
    assert all(p.path == path for p in caught.value.problems)
    assert str(caught.value).startswith(f"{path}:")
    return [(p.line, p.field, p.message) for p in caught.value.problems]


def only(tmp_path: Path, text: str) -> tuple[int | None, str | None, str]:
    (found,) = problems(tmp_path, text)
    return found


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "says"),
    [
        ("ack_within: 30m", "ack_within: -30m", 11, "routes[0].levels[0].ack_within",
         "longer than zero, got '-30m'"),
        ("resolve_within: 4h", "resolve_within: 0", 12, "routes[0].levels[0].resolve_within",
         "longer than zero, got 0"),
        ("ack_within: 30m", "ack_within: half an hour", 11, "routes[0].levels[0].ack_within",
         "cannot read 'half an hour' as a duration"),
        ("ack_within: 30m", "ack_within: 5h", 11, "routes[0].levels[0].ack_within",
         "longer than resolve_within"),
        ("        resolve_within: 4h\n", "", 7, "routes[0].levels[0].resolve_within",
         "missing: say how long"),
        ("deciders: [maria, group:sales-leads]", "deciders: []", 10,
         "routes[0].levels[0].deciders", "is empty: name at least one decider"),
        ("deciders: [maria, group:sales-leads]", "deciders: [maria, 'group:']", 10,
         "routes[0].levels[0].deciders", "is not a user id or 'group:NAME'"),
        ("warn_at: 0.75", "warn_at: 75", 13, "routes[0].levels[0].warn_at",
         "warn_at is a fraction"),
        ("        warn_at: 0.75", "        warn_after: 0.75", 13, "routes[0].levels[0].warn_after",
         "unknown field 'warn_after': did you mean 'warn_at'?"),
        ("on_timeout: deny", "on_timeout: approve", 4, "routes[0].on_timeout",
         "unknown on_timeout 'approve' (expected deny, allow, keep_open)"),
        ("on_timeout: deny", "on_timout: deny", 4, "routes[0].on_timout",
         "did you mean 'on_timeout'?"),
        ("repeat_last: 1", "repeat_last: -1", 5, "routes[0].repeat_last", "0 or more"),
        ('end: "17:00"', "end: 17:00", 3, "routes[0].hours.end",
         "expected a time such as '17:00' in quotes"),
        ("timezone: Europe/Berlin", "timezone: Europe/Berlim", 3, "routes[0].hours.timezone",
         "unknown time zone 'Europe/Berlim'"),
        ("days: [1, 2, 3, 4, 5]", "days: [0, 1]", 3, "routes[0].hours.days",
         "[0] not ISO weekdays"),
        ("days: [1, 2, 3, 4, 5]", "days: [mon]", 3, "routes[0].hours.days[0]",
         "expected ISO weekdays, 1=Monday"),
        ('start: "09:00"', 'start: "18:00"', 3, "routes[0].hours.end", "is not after start"),
        ('end: "17:00"}', 'end: "17:00", holiday: [2026-12-24]}', 3, "routes[0].hours.holiday",
         "unknown field 'holiday': did you mean 'holidays'?"),
        ("  - name: sales-managers", "  - name: sales managers", 2, "routes[0].name",
         "route name 'sales managers' must start"),
        ("  - name: sales-managers\n", "  -\n", 3, "routes[0].name",
         "missing: every route needs a name"),
        ("sales-leads: [maria, li]", "sales-leads: [maria, 7]", 15, "groups.sales-leads[1]",
         "expected a user id, got number 7"),
        ("sales-leads: [maria, li]", "sales-leads: {maria: 1}", 15, "groups.sales-leads",
         "expected a list of user ids"),
        ("groups:\n  sales-leads: [maria, li]\n", "groups: [maria]\n", 14, "groups",
         "expected a mapping of group names"),
        ("groups:", "grops:", 14, "grops", "did you mean 'groups'?"),
    ],
)  # fmt: skip
def test_each_problem_names_its_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str | None, says: str
) -> None:
    """One mistake in a valid file gives one problem at that mistake's line and field."""
    assert old in VALID
    found_line, found_field, message = only(tmp_path, VALID.replace(old, new, 1))
    assert (found_line, found_field) == (line, field)
    assert says in message


def test_every_problem_is_reported_at_once_in_line_order(tmp_path: Path) -> None:
    """Several mistakes are all reported, sorted by line, each with its own field."""
    text = (
        VALID.replace("ack_within: 30m", "ack_within: soon")
        .replace("on_timeout: deny", "on_timeout: never")
        .replace("sales-leads: [maria, li]", "sales-leads: 3")
    )
    found = problems(tmp_path, text)
    assert [(line, field) for line, field, _ in found] == [
        (4, "routes[0].on_timeout"),
        (11, "routes[0].levels[0].ack_within"),
        (15, "groups.sales-leads"),
    ]


def test_duplicate_keys_and_route_names_are_reported(tmp_path: Path) -> None:
    """A key given twice (which YAML would silently resolve) and two routes of one name."""
    text = VALID.replace("    repeat_last: 1\n", "    repeat_last: 1\n    repeat_last: 2\n")
    text += "  other: [x]\n"
    text = text.replace("groups:", "  - name: sales-managers\n    levels: [{deciders: [x], "
                        "resolve_within: 1h}]\ngroups:")  # fmt: skip
    found = problems(tmp_path, text)
    assert [(line, field) for line, field, _ in found] == [
        (6, "routes[0].repeat_last"),
        (15, "routes[1].name"),
    ]
    assert "duplicate key 'repeat_last' (first at line 5)" in found[0][2]
    assert "duplicate route name: already used by the route at line 2" in found[1][2]


@pytest.mark.parametrize(
    ("text", "line", "field", "says"),
    [
        ("- name: x\n", 1, None, "a routes file is a mapping with a 'routes' list"),
        ("groups: {}\n", 1, "routes", "missing: a routes file lists its routes"),
        ("routes: {name: x}\n", 1, "routes", "expected a list of routes"),
        ("routes:\n  - sales\n", 2, "routes[0]", "expected a route (a mapping"),
        ("routes:\n  - name: x\n    levels: []\n", 3, "routes[0].levels", "is empty"),
        ("routes:\n  - name: x\n    levels: [3]\n", 3, "routes[0].levels[0]", "expected a level"),
        ("routes:\n  - name: x\n    hours: always\n    levels: [{deciders: [a], "
         "resolve_within: 1h}]\n", 3, "routes[0].hours", "expected a mapping of timezone"),
        ("version: 2\nroutes: []\n", 1, "version", "unsupported version number 2"),
        ("routes: [\n", 2, None, "YAML syntax error"),
    ],
)  # fmt: skip
def test_malformed_shapes(
    tmp_path: Path, text: str, line: int, field: str | None, says: str
) -> None:
    """Wrong shapes at the top, in a route or a level are named with line and field."""
    found_line, found_field, message = only(tmp_path, text)
    assert (found_line, found_field) == (line, field)
    assert says in message


def test_toml_problems_name_their_line(tmp_path: Path) -> None:
    """TOML files report lines too: at the key, or the table header above it."""
    text = '[[routes]]\nname = "x"\n\n[[routes.levels]]\ndeciders = ["a"]\nresolve_within = "-1h"\n'
    path = tmp_path / "routes.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_routes(path)
    assert (caught.value.line, caught.value.field) == (6, "routes[0].levels[0].resolve_within")
    with pytest.raises(PolicyError, match="TOML syntax error"):
        routes_from_toml("routes = [", source=path)


def test_files_that_cannot_be_read(tmp_path: Path) -> None:
    """An unknown suffix, a missing file and plain data without lines each name the problem."""
    with pytest.raises(PolicyError, match=r"name a routes file \*\.yaml, \*\.yml or \*\.toml"):
        load_routes(tmp_path / "routes.json")
    with pytest.raises(PolicyError, match="cannot read the routes file"):
        load_routes(tmp_path / "missing.yaml")
    with pytest.raises(PolicyError) as caught:
        routes_from_dict({"routes": [{"name": "x", "levels": [{"deciders": ["a"]}]}]})
    assert (caught.value.line, caught.value.field) == (None, "routes[0].levels[0].resolve_within")


def test_route_lookup_names_the_known_routes() -> None:
    """``RoutesFile.route`` finds a route by name, or says which exist."""
    loaded = load_routes(EXAMPLE)
    with pytest.raises(KeyError, match="sales-managers, finance"):
        loaded.route("support")


# -- decider groups must exist -------------------------------------------------------

UNDEFINED_GROUP = VALID.replace("group:sales-leads]", "group:sales-leads, group:legal]")


def test_a_decider_group_the_file_does_not_define_is_refused_at_its_line(tmp_path: Path) -> None:
    """group:NAME with no groups: entry is a problem at its line: nobody could decide that level."""
    path = tmp_path / "routes.yaml"
    path.write_text(UNDEFINED_GROUP, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_routes(path)
    (problem,) = caught.value.problems
    assert (problem.path, problem.line) == (path, 10)
    assert problem.field == "routes[0].levels[0].deciders[2]"
    assert problem.message.startswith(
        "group 'legal' is not defined (the file's groups: sales-leads): "
        "add 'legal: [user, ...]' under groups:"
    )
    without_groups = VALID.split("groups:", maxsplit=1)[0]
    with pytest.raises(PolicyError, match="group 'sales-leads' is not defined"):
        routes_from_yaml(without_groups)


def test_external_groups_accept_groups_the_router_gets_elsewhere(tmp_path: Path) -> None:
    """external_groups=True accepts any group; a list of names accepts those and no others."""
    path = tmp_path / "routes.toml"
    path.write_text(
        '[[routes]]\nname = "r"\n[[routes.levels]]\ndeciders = ["group:legal"]\n'
        'resolve_within = "1h"\n',
        encoding="utf-8",
    )
    assert load_routes(path, external_groups=True).routes[0].name == "r"
    assert load_routes(path, external_groups=["legal"]).groups == {}
    with pytest.raises(PolicyError) as caught:
        load_routes(path, external_groups=["finance"])
    assert caught.value.line == 4
    assert routes_from_yaml(UNDEFINED_GROUP, external_groups=("legal",)).route("sales-managers")
    data = {"routes": [{"name": "r", "levels": [{"deciders": ["group:x"], "resolve_within": 60}]}]}
    with pytest.raises(PolicyError, match="group 'x' is not defined"):
        routes_from_dict(data)
    assert routes_from_dict(data, external_groups=True).routes[0].levels[0].deciders == ("group:x",)


def test_group_names_and_members_follow_the_name_rule() -> None:
    """Groups and their members are canonical, as deciders are: `Sales-Leads` is `sales-leads`."""
    routes = routes_from_yaml(
        """
routes:
  - name: r
    levels:
      - deciders: [group:sales-leads]
        resolve_within: 1h
groups:
  Sales-Leads: [Maria, \uff4c\uff49]  # full-width li
"""
    )
    assert routes.groups == {"sales-leads": frozenset({"maria", "li"})}
    assert routes.groups_of("li") == frozenset({"sales-leads"})
    with pytest.raises(PolicyError) as caught:
        routes_from_yaml(
            """
routes:
  - name: r
    levels:
      - deciders: [group:sales-leads]
        resolve_within: 1h
groups:
  sales-leads: [m\u0430ria]
"""
        )
    assert caught.value.problems[0].line == 8
