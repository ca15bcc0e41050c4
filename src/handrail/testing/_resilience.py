"""No-waits mode: retries skip their waits, so test suites that exercise them stay fast.

A paired switch, like stamina's ``set_testing``: ``set_no_waits(True)``
returns the previous setting, ``is_no_waits()`` reads it, and ``with
no_waits():`` turns it on for a block.  The state lives in
``handrail.resilience`` so that retrying never imports this package.
"""

from .._sleep import is_no_waits, no_waits, set_no_waits

__all__ = ["is_no_waits", "no_waits", "set_no_waits"]
