"""Small builders for escalations and deliveries, shared by the escalation tests.

The same ones the store contract uses, from ``handrail.testing``.
"""

from handrail.testing._escalation_data import (
    HOUR,
    NOW,
    ROUTE,
    approve,
    fire,
    make_delivery,
    make_escalation,
)

__all__ = ["HOUR", "NOW", "ROUTE", "approve", "fire", "make_delivery", "make_escalation"]
