"""stable_key: the same business identifier always gets the same key; another, another key."""

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
from handrail.resilience import stable_key

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=6,
)
ARGS = st.dictionaries(st.text(max_size=8), JSON, max_size=5)


def parts(**changes: Any) -> dict[str, Any]:
    """What a caller names one intended write by: the action and a business id it vouches for."""
    return {"action": "billing.refund.create", "refund": "rf-1", "invoice": "inv-7", **changes}


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
    def test_the_same_parts_get_the_same_key(self) -> None:
        """Two equal mappings, built separately, share one key: 64 hex digits."""
        key = stable_key(parts())
        assert key == stable_key(parts())
        assert len(key) == 64
        assert int(key, 16) >= 0

    def test_the_key_is_pinned(self) -> None:
        """The canonical form never changes silently: old keys must keep matching."""
        assert stable_key({"action": "erp.order.create", "order": "o-1", "amount": 10}) == PINNED

    def test_stable_across_processes(self) -> None:
        """Another interpreter, with another hash seed, computes the same key."""
        parts = "{'tags': {'b', 'a', 'c'}, 'n': 1, 'when': __import__('datetime').date(2025, 1, 2)}"
        code = f"from handrail.resilience import stable_key; print(stable_key({parts}))"
        keys = set()
        for seed in ("1", "2"):
            env = {**os.environ, "PYTHONHASHSEED": seed}
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
            ).stdout
            keys.add(out.strip())
        here = stable_key({"tags": {"a", "b", "c"}, "n": 1, "when": date(2025, 1, 2)})
        assert keys == {here}

    @given(ARGS, st.randoms())
    def test_mapping_order_never_matters(self, args: dict[str, Any], random: Any) -> None:
        """Shuffling a mapping's keys leaves the key unchanged."""
        items = list(args.items())
        random.shuffle(items)
        assert stable_key(dict(items)) == stable_key(args)

    def test_equal_instants_in_different_zones_are_one(self) -> None:
        """An aware datetime is keyed by its instant, whatever its zone."""
        utc = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
        paris = utc.astimezone(timezone(timedelta(hours=1)))
        assert stable_key({"at": utc}) == stable_key({"at": paris})


class TestDistinctness:
    @pytest.mark.parametrize(
        "change",
        [
            {"action": "billing.refund.void"},
            {"refund": "rf-2"},
            {"invoice": "inv-8"},
            {"invoice": None},
            {"by": "alice"},
        ],
        ids=["action", "refund", "invoice", "no-invoice", "extra-part"],
    )
    def test_each_part_counts(self, change: dict[str, Any]) -> None:
        """Changing, clearing or adding any part changes the key."""
        assert stable_key(parts(**change)) != stable_key(parts())

    @given(ARGS, st.text(max_size=8), JSON)
    def test_different_parts_get_different_keys(
        self, base: dict[str, Any], name: str, value: Any
    ) -> None:
        """Mappings that differ, even in one value, never share a key."""
        assume(name not in base or base[name] != value)
        other = {**base, name: value}
        assert stable_key({"parts": base}) != stable_key({"parts": other})

    def test_types_are_told_apart(self) -> None:
        """1, 1.0, True, "1" and [1] are different values, so different keys."""
        keys = {stable_key({"v": v}) for v in (1, 1.0, True, "1", [1], None, "None")}
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
        assert stable_key(parts) == stable_key(dict(parts))

    def test_secrets_do_not_enter_the_key(self) -> None:
        """A secret's value never shapes the key, which may be logged."""
        one = Order(id="o-1", lines=[], token=SecretStr("first-secret"))
        other = Order(id="o-1", lines=[], token=SecretStr("second-secret"))
        assert stable_key({"order": one}) == stable_key({"order": other})

    def test_values_without_a_stable_form_are_refused(self) -> None:
        """An arbitrary object would be keyed by its repr, which changes between processes."""
        with pytest.raises(TypeError, match=r"stable_key: parts\.args\.client is a object"):
            stable_key({"args": {"client": object()}})
        with pytest.raises(TypeError, match="only str keys"):
            stable_key({"args": {1: "one"}})
        with pytest.raises(TypeError, match=r"expected a mapping .* got list"):
            stable_key(["not", "a", "mapping"])  # type: ignore[arg-type]


class TestNeverFromTheArguments:
    def test_an_action_request_is_refused(self) -> None:
        """A key from a whole request would merge two intended writes: a TypeError says so."""
        refund = ActionRequest(
            principal=Principal(agent="billing-bot", on_behalf_of="alice"),
            action="billing.refund.create",
            resource=Resource(type="invoice", id="inv-7"),
            args={"invoice": "inv-7", "amount": 40},
        )
        with pytest.raises(
            TypeError, match=r"refused ActionRequest.*two refunds of 40 would be one"
        ):
            stable_key(refund)  # type: ignore[arg-type]

    def test_a_model_of_the_arguments_is_refused(self) -> None:
        """A pydantic model or dataclass of the write's inputs is refused at the top level too."""
        with pytest.raises(TypeError, match="refused Line"):
            stable_key(Line("sku-1", 2))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="refused Order"):
            stable_key(Order(id="o-1", lines=[], token=SecretStr("s")))  # type: ignore[arg-type]


# sha256 of b"handrail.idempotency.v1\x00" followed by the canonical JSON
# b'{"action":"erp.order.create","amount":10,"order":"o-1"}'.
PINNED = "e57eb2a3e43f0623a0cfd2435d601d98afee342d7e5135f8f834af156779913c"
