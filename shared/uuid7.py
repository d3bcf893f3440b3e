"""Time-ordered identifiers (UUID version 7, RFC 9562): ids sort by creation, so cursors and
B-tree inserts follow time. Python 3.11's uuid module has no uuid7; this is the RFC's layout
(48-bit milliseconds, version 7, 12 + 62 bits of randomness, variant 10)."""

from __future__ import annotations

import os
import time


def _fmt(value: int) -> str:
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_ids(n: int) -> list[str]:
    """n ids for one batch: one clock read and one random draw, then a counter in the random
    bits (the RFC's monotonic method 1), so the batch's ids keep its row order."""
    ms = time.time_ns() // 1_000_000
    start = int.from_bytes(os.urandom(8), "big") >> 10  # 54 random bits leave room to count up
    head = (ms & 0xFFFFFFFFFFFF) << 80 | 0x7 << 76
    out = []
    for i in range(n):
        r = start + i
        out.append(_fmt(head | (r >> 62 & 0xFFF) << 64 | 0b10 << 62 | (r & ((1 << 62) - 1))))
    return out


def new_id() -> str:
    return new_ids(1)[0]
