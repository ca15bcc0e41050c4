"""Record ids: ULIDs, sortable by time and unique, monotonic within a process.

A ULID is 128 bits: a 48-bit millisecond timestamp, then 80 more bits,
written as 26 characters of Crockford's base32.  Here the 80 bits start at a
random value in each process and count up by one per id, as the ULID spec
does within a millisecond: ids from one process sort in the order they were
made (even if the clock steps back), and two processes collide only if their
random starting points land within as many ids of each other, out of 2**80.
"""

from __future__ import annotations

import random
import threading

__all__ = ["new_id"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's: no I, L, O, U
# Every pair of characters, indexed by the 10 bits they encode: one lookup
# writes two characters, which is what makes this cheap enough for each append.
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)
_RANDOM_BITS = 80
_RANDOM_MASK = (1 << _RANDOM_BITS) - 1
_MAX_MS = (1 << 48) - 1


def _text(value: int, pairs: int) -> str:
    """The low ``pairs * 10`` bits of ``value`` in base32, most significant first."""
    return "".join(_PAIRS[(value >> shift) & 1023] for shift in range(10 * (pairs - 1), -1, -10))


class _Last:
    """The previous id made in this process, and the text of its slower-changing part.

    One instance, not class attributes: writing a class attribute on every id
    would invalidate the type's attribute cache each time.
    """

    __slots__ = ("prefix_key", "prefix_text", "value")

    def __init__(self) -> None:
        self.value = random.SystemRandom().getrandbits(_RANDOM_BITS)
        self.prefix_key = -1
        self.prefix_text = ""


_last = _Last()
_lock = threading.Lock()


def new_id(milliseconds: int) -> str:
    """A new ULID for a record made at ``milliseconds`` since the Unix epoch.  Thread-safe."""
    if not 0 <= milliseconds <= _MAX_MS:
        milliseconds = min(max(milliseconds, 0), _MAX_MS)
    stamp = milliseconds << _RANDOM_BITS
    last = _last
    with _lock:
        following = last.value + 1
        value = stamp | (following & _RANDOM_MASK)
        if value < following:  # noqa: PLR1730 - max() is a call, on every id
            value = following  # the clock went back: keep sorting
        last.value = value
        # 26 characters: 10 for the time (the first holds 2 zero bits and 3
        # of time), 12 for the high 60 counting bits, 4 for the low 20.  The
        # first 22 change about once a millisecond: their text is kept, behind
        # one comparison (one key for both parts, as they change together).
        key = value >> 20
        if key != last.prefix_key:
            last.prefix_key = key
            last.prefix_text = _text(key >> 60, 5) + _text(key, 6)
        prefix = last.prefix_text
    return prefix + _PAIRS[(value >> 10) & 1023] + _PAIRS[value & 1023]
