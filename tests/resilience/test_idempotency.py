"""idempotency_key: the same request always gets the same key; a different one, another."""

from __future__ import annotations

import dataclasses
import enum
import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

from handrail import ActionRequest, Principal, Resource
from handrail.resilience import idempotency_key

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=6,
)
ARGS = st.dictionaries(st.text(max_size=8), JSON, max_size=5)


def request(**changes: Any) -> ActionRequest:
    base: dict[str, Any] = {
        "principal": Principal(agent="sales-bot", on_behalf_of="alice"),
        "action": "crm.contact.update",
        "resource": Resource(type="contact", id="c-1", attributes={"status": "active"}),
        "args": {"contact_id": "c-1", "email": "a@example.com"},
        "context": {"now": "2025-01-01T00:00:00Z", "trace_id": "abc"},
    }
    return ActionRequest(**{**base, **changes})


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Line:
    sku: str
    quantity: int


class Order(BaseModel):
    id: str
    lines: list[Line]
    token: SecretStr


class TestStability:
    def test_the_same_request_gets_the_same_key(self) -> None:
        """Two equal requests, built separately, share one key: 64 hex digits."""
        key = idempotency_key(request())
        assert key == idempotency_key(request())
        assert len(key) == 64
        assert int(key, 16) >= 0

    def test_the_key_is_pinned(self) -> None:
        """The canonical form never changes silently: old keys must keep matching."""
        assert idempotency_key({"action": "erp.order.create", "order": "o-1", "amount": 10}) == (
            PINNED
        )

    def test_stable_across_processes(self) -> None:
        """Another interpreter, with another hash seed, computes the same key."""
        parts = "{'tags': {'b', 'a', 'c'}, 'n': 1, 'when': __import__('datetime').date(2025, 1, 2)}"
        code = f"from handrail.resilience import idempotency_key; print(idempotency_key({parts}))"
        keys = set()
        for seed in ("1", "2"):
            env = {**os.environ, "PYTHONHASHSEED": seed}
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
            ).stdout
            keys.add(out.strip())
        here = idempotency_key({"tags": {"a", "b", "c"}, "n": 1, "when": date(2025, 1, 2)})
        assert keys == {here}

    @given(ARGS, st.randoms())
    def test_mapping_order_never_matters(self, args: dict[str, Any], random: Any) -> None:
        """Shuffling a mapping's keys leaves the key unchanged."""
        items = list(args.items())
        random.shuffle(items)
        assert idempotency_key(dict(items)) == idempotency_key(args)

    def test_context_and_resource_attributes_do_not_count(self) -> None:
        """Timestamps, trace ids and the resource's attributes may change between attempts."""
        other = request(
            context={"now": "2025-01-01T00:00:05Z"},
            resource=Resource(type="contact", id="c-1", attributes={"status": "updated"}),
        )
        assert idempotency_key(other) == idempotency_key(request())

    def test_equal_instants_in_different_zones_are_one(self) -> None:
        """An aware datetime is keyed by its instant, whatever its zone."""
        utc = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
        paris = utc.astimezone(timezone(timedelta(hours=1)))
        assert idempotency_key({"at": utc}) == idempotency_key({"at": paris})


class TestDistinctness:
    @pytest.mark.parametrize(
        "change",
        [
            {"action": "crm.contact.delete"},
            {"principal": Principal(agent="other-bot", on_behalf_of="alice")},
            {"principal": Principal(agent="sales-bot", on_behalf_of="bob")},
            {"principal": Principal(agent="sales-bot")},
            {"resource": Resource(type="contact", id="c-2")},
            {"resource": None},
            {"args": {"contact_id": "c-1", "email": "b@example.com"}},
        ],
        ids=["action", "agent", "user", "no-user", "resource", "no-resource", "args"],
    )
    def test_each_identifying_part_counts(self, change: dict[str, Any]) -> None:
        """Changing the action, agent, user, resource or arguments changes the key."""
        assert idempotency_key(request(**change)) != idempotency_key(request())

    @given(ARGS, st.text(max_size=8), JSON)
    def test_different_arguments_get_different_keys(
        self, args: dict[str, Any], name: str, value: Any
    ) -> None:
        """Requests whose arguments differ, even in one value, never share a key."""
        assume(name not in args or args[name] != value)
        other = {**args, name: value}
        assert idempotency_key(request(args=args)) != idempotency_key(request(args=other))

    def test_types_are_told_apart(self) -> None:
        """1, 1.0, True, "1" and [1] are different values, so different keys."""
        keys = {idempotency_key({"v": v}) for v in (1, 1.0, True, "1", [1], None, "None")}
        assert len(keys) == 7


class TestValues:
    def test_rich_values_have_a_stable_form(self) -> None:
        """Dates, decimals, UUIDs, enums, bytes, sets, dataclasses and models are all keyable."""
        parts = {
            "when": datetime(2025, 1, 1, tzinfo=UTC),
            "day": date(2025, 1, 1),
            "amount": Decimal("10.50"),
            "id": uuid.UUID(int=1),
            "colour": Colour.RED,
            "blob": b"\x00\xff",
            "tags": frozenset({"b", "a"}),
            "order": Order(id="o-1", lines=[Line("sku-1", 2)], token=SecretStr("s3cret-1")),
            "inf": float("inf"),
        }
        assert idempotency_key(parts) == idempotency_key(dict(parts))

    def test_secrets_do_not_enter_the_key(self) -> None:
        """A secret's value never shapes the key, which may be logged."""
        one = Order(id="o-1", lines=[], token=SecretStr("first-secret"))
        other = Order(id="o-1", lines=[], token=SecretStr("second-secret"))
        assert idempotency_key({"order": one}) == idempotency_key({"order": other})

    def test_values_without_a_stable_form_are_refused(self) -> None:
        """An arbitrary object would be keyed by its repr, which changes between processes."""
        with pytest.raises(TypeError, match=r"request\.args\.client is a object"):
            idempotency_key({"args": {"client": object()}})
        with pytest.raises(TypeError, match="only str keys"):
            idempotency_key({"args": {1: "one"}})
        with pytest.raises(TypeError, match="ActionRequest or a mapping"):
            idempotency_key(["not", "a", "mapping"])  # type: ignore[arg-type]


# sha256 of b"handrail.idempotency.v1\x00" followed by the canonical JSON
# b'{"action":"erp.order.create","amount":10,"order":"o-1"}'.
PINNED = "e57eb2a3e43f0623a0cfd2435d601d98afee342d7e5135f8f834af156779913c"
