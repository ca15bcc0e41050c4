"""The one rule for names: identifiers a policy matches on, and action names.

Every name a policy matches a request by (agent ids, user ids, roles, groups,
escalation deciders) goes through :func:`canonical_name`, in policy files, in
code and on requests alike, so two spellings that look the same are either
the same name or refused::

    canonical = casefold(NFKC(name))      then it must match NAME_CHARACTERS, 1..256 long

So ``Intern`` is ``intern`` and a full-width ``bot`` (U+FF42 U+FF4F U+FF54)
is ``bot``, while ``b\\u043et`` (with a Cyrillic o), a zero-width space, a
control or bidi character, a space, Greek or any other character outside the
ASCII set is refused with a ``ConfigurationError`` that names the field and
shows the character as a ``\\u`` escape, never raw.

Action names keep their own, stricter rule (dotted segments of ASCII letters,
digits, ``_`` and ``-``; case is kept), checked in one place with one message
by :func:`check_action` wherever a name comes in (``requires_permission``,
``Guard``, ``@audited``, ``@operation``, ``ActionRequest``, the policy's
evaluator); rules' patterns, where a whole segment may be ``*``, by
:func:`check_action_pattern`.
"""

from __future__ import annotations

import re

from ._errors import ConfigurationError

__all__ = [
    "ACTION_PATTERN_RE",
    "ACTION_RE",
    "NAME_CHARACTERS",
    "NAME_MAX_LENGTH",
    "canonical_name",
    "canonical_names",
    "check_action",
    "check_action_pattern",
    "describe_character",
]

NAME_MAX_LENGTH = 256
"""The longest name accepted, in characters, after normalisation."""

NAME_CHARACTERS = "a-z 0-9 . _ - @ + : /"
"""The characters a canonical name is made of (after NFKC and case folding)."""

_NAME_RE = re.compile(r"[a-z0-9._@+:/-]+")
_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-@+:/")

_SEGMENT = r"[A-Za-z0-9_-]+"
ACTION_RE = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
"""An action name: dotted segments of ASCII letters, digits, ``_`` and ``-``."""
ACTION_PATTERN_RE = re.compile(rf"(?:{_SEGMENT}|\*)(?:\.(?:{_SEGMENT}|\*))*")
"""An action pattern: an action name where a whole segment may be ``*``."""


def check_action(value: object, where: str = "") -> str:
    """``value`` if it is an action name, else a ``ConfigurationError`` (a ``ValueError``).

    The message is the same wherever the name came in; ``where`` (such as
    ``"requires_permission"``) only prefixes it: ``requires_permission:
    action 'crm..read' is not a dotted name such as 'crm.contact.update'
    (letters, digits, '_' and '-' between single dots)``.
    """
    if isinstance(value, str) and ACTION_RE.fullmatch(value):
        return value
    raise ConfigurationError(
        f"{_prefix(where)}action {_shown(value)} is not a dotted name such as "
        "'crm.contact.update' (letters, digits, '_' and '-' between single dots)"
    )


def check_action_pattern(value: object, where: str = "") -> str:
    """``value`` if it is an action name or pattern (``crm.*.read``), else a ``ConfigurationError``.

    One message wherever patterns come in (rules, test strategies), prefixed
    by ``where`` as for ``check_action``.
    """
    if isinstance(value, str) and ACTION_PATTERN_RE.fullmatch(value):
        return value
    raise ConfigurationError(
        f"{_prefix(where)}malformed action pattern {_shown(value)}: use dotted names where "
        "a whole segment may be '*', such as 'crm.*.read', 'crm.contact.*' or '*'"
    )


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def _shown(value: object) -> str:
    if isinstance(value, str):
        return _quote(str.__str__(value))
    return f"of type {type(value).__name__}"


def describe_character(char: str) -> str:
    """A character as ``\\u043e (CYRILLIC SMALL LETTER O)``: safe to print, whatever it is."""
    import unicodedata  # loaded when first needed: see canonical_name

    name = unicodedata.name(char, "")
    code = f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"
    return f"{code} ({name})" if name else code


def canonical_name(value: object, field: str = "name") -> str:
    """The canonical form of an identifier, or a ``ConfigurationError`` naming ``field``.

    NFKC-normalise, case-fold, then require 1 to ``NAME_MAX_LENGTH`` characters
    from ``NAME_CHARACTERS``.  The error message escapes every character it
    quotes (``ascii()``), so a hostile name cannot reach a terminal or a log raw.
    """
    if not isinstance(value, str):
        raise ConfigurationError(f"{field} must be a string, got {type(value).__name__}")
    text = str.__str__(value)  # a plain str, whatever subclass came in
    if len(text) > NAME_MAX_LENGTH * 4:  # NFKC can expand; refuse absurd input before it
        raise ConfigurationError(
            f"{field} is {len(text)} characters long; names are at most {NAME_MAX_LENGTH}"
        )
    # NFKC leaves ASCII alone, and ASCII case-folds to lower case: skip the tables.
    if text.isascii():
        canonical = text.lower()
    else:
        # The Unicode tables load with the first non-ASCII name, not at import.
        import unicodedata

        canonical = unicodedata.normalize("NFKC", text).casefold()
    if not canonical:
        raise ConfigurationError(f"{field} is empty: a name needs at least one character")
    if len(canonical) > NAME_MAX_LENGTH:
        raise ConfigurationError(
            f"{field} {_quote(text)} is {len(canonical)} characters long; "
            f"names are at most {NAME_MAX_LENGTH}"
        )
    if not _NAME_RE.fullmatch(canonical):
        bad = next(c for c in canonical if c not in _ALLOWED)
        position = canonical.index(bad)
        raise ConfigurationError(
            f"{field} {_quote(text)}: character {describe_character(bad)} at position "
            f"{position} is not allowed; names use only {NAME_CHARACTERS} once NFKC-normalised "
            "and lower-cased (look-alike letters from other scripts, spaces, zero-width, "
            "control and bidi characters are refused)"
        )
    return canonical


def canonical_names(values: object, field: str = "names") -> frozenset[str]:
    """Each name of a collection in canonical form (see ``canonical_name``)."""
    if isinstance(values, str):
        raise ConfigurationError(
            f"{field} must be a list of names, got the string {_quote(values)}: write [{values}]"
            if len(values) <= NAME_MAX_LENGTH
            else f"{field} must be a list of names, got a string"
        )
    if not isinstance(values, list | tuple | set | frozenset):
        raise ConfigurationError(f"{field} must be a list of names, got {type(values).__name__}")
    return frozenset(canonical_name(v, field) for v in values)


def _quote(text: str) -> str:
    shown = text if len(text) <= 80 else text[:80] + "..."
    return ascii(shown)
