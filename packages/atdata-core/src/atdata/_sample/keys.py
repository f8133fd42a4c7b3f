"""Sample keys: unique, time-sortable UUIDv7s, safe across processes and forks."""

from __future__ import annotations

import os
import random
import threading
import time

__all__ = ["new_key"]

_key_lock = threading.Lock()
_key_state = [0, 0]  # last millisecond, sequence within it
_key_random = random.Random()  # seeded from os.urandom; reseeded in forked children below
os.register_at_fork(after_in_child=_key_random.seed)


def new_key() -> str:
    """A unique, time-sortable sample key: a UUIDv7 as 32 lowercase hex digits.

    48 bits of Unix milliseconds, a 12-bit sequence that keeps keys made by one process
    strictly increasing, and 62 random bits from a generator seeded by ``os.urandom`` and
    reseeded after ``fork``, so DataLoader workers never share a stream.
    """
    now = time.time_ns() // 1_000_000
    with _key_lock:
        last, seq = _key_state
        if now > last:
            last, seq = now, 0
        else:
            seq += 1
            if seq > 0xFFF:
                last, seq = last + 1, 0
        _key_state[0], _key_state[1] = last, seq
    rand = _key_random.getrandbits(62)
    return f"{(last << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand:032x}"
