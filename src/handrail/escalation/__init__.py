"""Escalation: routing decisions to humans, under SLA clocks.

For now, the calendar those clocks run under: ``BusinessHours``.  See
``docs/escalation.md``.
"""

from ._calendar import BusinessHours

__all__ = ["BusinessHours"]
