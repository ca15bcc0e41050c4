"""The guarded call: one flow (decide, escalate, shadow, attempt, record) and its front ends.

``Guard`` holds the parts and offers the step API (``check``, ``call``,
``acall``) and the ``protect`` decorator; ``requires_permission`` is a guard
with only a policy, ``audited`` one with only an audit log.
"""

from ._front import audited, requires_permission
from ._guard import Guard
from ._progress import CallProgress, current_call
from ._records import AsyncRecorded, Recorded
from ._request import build_request

__all__ = [
    "AsyncRecorded",
    "CallProgress",
    "Guard",
    "Recorded",
    "audited",
    "build_request",
    "current_call",
    "requires_permission",
]
