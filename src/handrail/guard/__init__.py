"""``Guard``: policy → retry → call → audit, in one span, for sync and async functions."""

from ._guard import Guard

__all__ = ["Guard"]
