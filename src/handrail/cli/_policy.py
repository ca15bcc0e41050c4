"""``handrail policy check | explain | test``: policies from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

from ..identity import Principal
from ..policy import ActionRequest, Policy, PolicyCases, PolicyError, PolicyProblem, Resource

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
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"invalid JSON ({exc.msg} at column {exc.colno}): {text!r}"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f'expected a JSON object such as \'{{"key": "value"}}\', got {text!r}'
        )
    return value


def _print_json(data: Mapping[str, Any]) -> None:
    print(json.dumps(data, indent=2, default=str))


def _read(load: Callable[[Path], _T], path: Path) -> _T:
    """Load a file with ``load``; an unreadable file is a ``PolicyError`` like any other."""
    try:
        return load(path)
    except OSError as exc:
        problem = PolicyProblem(f"cannot read the file: {exc.strerror or exc}", path)
        raise PolicyError(problem) from exc


# -- check ---------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        policy = _read(Policy.from_file, path)
    except PolicyError as exc:
        if not args.json:
            print(exc, file=sys.stderr)
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
        _print_json({"path": str(path), "ok": True, "rules": count})
    else:
        print(f"{path}: ok, {count} rule{'' if count == 1 else 's'}")
    return 0


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
        _usage_error(args, argument, f"{'.'.join(loc)}: {message}" if loc else message)


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
        print(exc, file=sys.stderr)
        return 1
    explanation = policy.explain(request)
    if args.json:
        _print_json(explanation.to_dict())
    else:
        print(explanation)
    return 0


# -- test ----------------------------------------------------------------------


def _test(args: argparse.Namespace) -> int:
    try:
        policy = _read(Policy.from_file, args.policy)
        cases = _read(PolicyCases.from_file, args.cases)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1
    report = cases.run(policy)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report)
    return 0 if report.passed else 1
