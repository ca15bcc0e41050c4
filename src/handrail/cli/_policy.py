"""``handrail policy check | explain | test``: policies from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

from .._errors import HandrailError
from .._text import printable, problem
from ..identity import Principal
from ..policy import ActionRequest, Policy, PolicyCases, PolicyError, Resource

if TYPE_CHECKING:
    from ..escalation import RoutesFile

__all__ = ["add_commands"]

_Model = TypeVar("_Model", bound=BaseModel)
_T = TypeVar("_T")


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register ``policy`` and its subcommands on the top-level parser."""
    policy = commands.add_parser(
        "policy", help="check, explain and test policy files", description="Work with policies."
    )
    sub = policy.add_subparsers(
        title="commands", dest="policy_command", metavar="COMMAND", required=True
    )

    check = sub.add_parser(
        "check",
        help="load a policy file and report every problem in it",
        description="Load a policy file; exit 0 if it is valid, 1 listing every problem if not.",
    )
    check.add_argument("file", metavar="FILE", type=Path, help="a YAML or TOML policy file")
    check.add_argument(
        "--routes",
        metavar="ROUTES",
        type=Path,
        help="a routes file: also check that every escalate_to names one of its routes",
    )
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(handler=_check)

    explain = sub.add_parser(
        "explain",
        help="decide one request and say why, rule by rule",
        description="Decide one request and account for every rule.",
    )
    explain.add_argument("file", metavar="FILE", type=Path, help="a YAML or TOML policy file")
    explain.add_argument("--agent", required=True, help="the acting agent's id")
    explain.add_argument(
        "--role", action="append", default=[], metavar="ROLE", help="a role of the agent"
    )
    explain.add_argument("--as", dest="as_user", metavar="USER", help="the user the agent acts for")
    explain.add_argument(
        "--as-role", action="append", default=[], metavar="ROLE", help="a role of that user"
    )
    explain.add_argument(
        "--as-group", action="append", default=[], metavar="GROUP", help="a group of that user"
    )
    explain.add_argument("--action", required=True, help="the action, such as crm.contact.read")
    explain.add_argument(
        "--resource",
        type=_json_object,
        metavar="JSON",
        help='the resource: {"type": ..., "id": ..., "attributes": {...}}',
    )
    explain.add_argument("--args", type=_json_object, metavar="JSON", help="the arguments")
    explain.add_argument("--context", type=_json_object, metavar="JSON", help="the context")
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain.set_defaults(handler=_explain, parser=explain)

    test = sub.add_parser(
        "test",
        help="run a policy's test cases and report rule coverage",
        description="Run test cases against a policy; exit 1 if any fails.",
    )
    test.add_argument("policy", metavar="POLICY", type=Path, help="a YAML or TOML policy file")
    test.add_argument("cases", metavar="CASES", type=Path, help="a YAML file of test cases")
    test.add_argument("--json", action="store_true", help="print the report as JSON")
    test.set_defaults(handler=_test)


def _json_object(text: str) -> dict[str, Any]:
    """Parse an argument as a JSON object (argparse names the argument in the error)."""
    shown = _excerpt(text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"invalid JSON ({exc.msg} at column {exc.colno}): {shown}"
        ) from None
    except ValueError:  # int()'s digit limit, which json lets through
        raise argparse.ArgumentTypeError(
            f"a number in the JSON is too long: integers may have at most "
            f"{sys.get_int_max_str_digits():,} digits; write it shorter, or quote it: {shown}"
        ) from None
    except RecursionError:  # the decoder refuses deep nesting this way
        raise argparse.ArgumentTypeError(
            f"the JSON is nested too deeply to read; flatten it: {shown}"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f'expected a JSON object such as \'{{"key": "value"}}\', got {shown}'
        )
    return value


def _excerpt(text: str, limit: int = 80) -> str:
    """``text`` quoted and escaped for a message, cut to ``limit`` characters."""
    cut = text if len(text) <= limit else f"{text[:limit]}..."
    return printable(repr(cut))


def _terminal(text: str) -> str:
    """Report text for a terminal: each line printable, line breaks kept."""
    return "\n".join(printable(line) for line in text.split("\n"))


def _print_problems(exc: PolicyError) -> None:
    print("\n".join(printable(str(p)) for p in exc.problems), file=sys.stderr)


def _print_json(data: Mapping[str, Any]) -> None:
    print(json.dumps(data, indent=2, default=str))


def _read(load: Callable[[Path], _T], path: Path) -> _T:
    """Load a file with ``load``; an unreadable file is a ``PolicyError`` like any other."""
    try:
        return load(path)
    except OSError as exc:
        raise PolicyError(problem(f"cannot read the file: {exc.strerror or exc}", path)) from exc


# -- check ---------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    from ..escalation import load_routes  # here: only --routes needs the escalation package

    path: Path = args.file
    try:
        policy = _read(Policy.from_file, path)
        if args.routes is not None:
            _check_routes(policy, path, _read(load_routes, args.routes))
    except PolicyError as exc:
        if not args.json:
            _print_problems(exc)
            return 1
        problems = [
            {
                "message": p.message,
                "path": None if p.path is None else str(p.path),
                "line": p.line,
                "rule_id": p.rule_id,
                "field": p.field,
            }
            for p in exc.problems
        ]
        _print_json({"path": str(path), "ok": False, "problems": problems})
        return 1
    count = len(policy.rules)
    if args.json:
        result: dict[str, Any] = {"path": str(path), "ok": True, "rules": count}
        if args.routes is not None:
            result["routes"] = str(args.routes)
        _print_json(result)
    else:
        routes = "" if args.routes is None else f", every escalate_to in {args.routes}"
        print(printable(f"{path}: ok, {count} rule{'' if count == 1 else 's'}{routes}"))
    return 0


def _check_routes(policy: Policy, path: Path, routes: RoutesFile) -> None:
    """PolicyError listing every escalating rule whose route the routes file lacks."""
    names = {route.name for route in routes.routes}
    known = ", ".join(sorted(names)) or "none"
    problems = [
        problem(
            f"no route {rule.escalate_to!r} in {routes.source} (its routes: {known}): "
            "add the route there, or name one of these",
            path,
            policy.line_of(rule.id, "escalate_to"),
            rule.id,
            "escalate_to",
        )
        for rule in policy.rules
        if rule.escalate_to is not None and rule.escalate_to not in names
    ]
    if problems:
        raise PolicyError(problems)


# -- explain -------------------------------------------------------------------


def _usage_error(args: argparse.Namespace, argument: str, message: str) -> NoReturn:
    parser: argparse.ArgumentParser = args.parser
    parser.error(f"argument {argument}: {message}")


def _validated(
    args: argparse.Namespace,
    model: type[_Model],
    data: object,
    arguments: Mapping[str, str],
    default: str,
) -> _Model:
    """Validate ``data`` as ``model``; a failure is a usage error naming the argument at fault.

    ``arguments`` maps the model's top-level fields to the options that set
    them; errors anywhere else are blamed on ``default``.
    """
    try:
        return model.model_validate(data)
    except HandrailError as exc:  # a typed refusal from the model's own checks
        _usage_error(args, default, printable(str(exc)))
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(str(part) for part in error["loc"])
        if loc and loc[0] in arguments:
            argument, loc = arguments[loc[0]], loc[1:]
        else:
            argument = default
        if error["type"] == "extra_forbidden":
            fields = ", ".join(model.model_fields)
            message = f"unknown field (expected {fields})"
        elif error["type"] == "missing":
            message = "missing, and required"
        else:
            message = error["msg"].removeprefix("Value error, ")
        text = f"{'.'.join(loc)}: {message}" if loc else message
        _usage_error(args, argument, printable(text))


def _request(args: argparse.Namespace) -> ActionRequest:
    if (args.as_role or args.as_group) and args.as_user is None:
        given = "--as-role" if args.as_role else "--as-group"
        _usage_error(args, given, "needs --as USER: the user whose roles and groups these are")
    user = None
    if args.as_user is not None:
        user = {"id": args.as_user, "roles": args.as_role, "groups": args.as_group}
    principal = _validated(
        args,
        Principal,
        {"agent": args.agent, "roles": args.role, "on_behalf_of": user},
        {"agent": "--agent", "roles": "--role", "on_behalf_of": "--as"},
        "--agent",
    )
    resource = None
    if args.resource is not None:
        resource = _validated(args, Resource, args.resource, {}, "--resource")
    return _validated(
        args,
        ActionRequest,
        {
            "principal": principal,
            "action": args.action,
            "resource": resource,
            "args": args.args or {},
            "context": args.context or {},
        },
        {"action": "--action", "args": "--args", "context": "--context"},
        "--action",
    )


def _explain(args: argparse.Namespace) -> int:
    request = _request(args)
    try:
        policy = _read(Policy.from_file, args.file)
    except PolicyError as exc:
        _print_problems(exc)
        return 1
    explanation = policy.explain(request)
    if args.json:
        _print_json(explanation.to_dict())
    else:
        print(_terminal(str(explanation)))
    return 0


# -- test ----------------------------------------------------------------------


def _test(args: argparse.Namespace) -> int:
    try:
        policy = _read(Policy.from_file, args.policy)
        cases = _read(PolicyCases.from_file, args.cases)
    except PolicyError as exc:
        _print_problems(exc)
        return 1
    report = cases.run(policy)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(_terminal(str(report)))
    return 0 if report.passed else 1
