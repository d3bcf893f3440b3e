"""uscc_check: the cost of checking one never-seen USCC, beside python-stdnum's `validate` (same run).

Generated valid codes (never the same twice, so no cache helps), checked by `shared.uscc.check_uscc`
(the precomputed table; the uncached body of `validate_uscc`) and by python-stdnum.
"""

from __future__ import annotations

import random
import time
from typing import Any

from stdnum.cn import uscc as stdnum_uscc

from bench import common

NAME = "uscc_check"
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def codes(n: int, seed: int = 3) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        body = f"91{rnd.randrange(10**6):06d}" + "".join(rnd.choice(ALPHABET) for _ in range(9))
        out.append(body + stdnum_uscc.calc_check_digit(body))
    return out


def run(args: Any) -> list[dict[str, Any]]:
    from shared.uscc import check_uscc

    n = 100_000 if args.quick else 1_000_000
    sample = codes(n)
    print(f"[{NAME}] {n:,} generated valid codes", flush=True)
    t = time.perf_counter()
    for c in sample:
        check_uscc(c)
    ours = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    for c in sample:
        stdnum_uscc.validate(c)
    theirs = (time.perf_counter() - t) / n * 1e6
    print(f"[{NAME}] precomputed {ours:.2f} µs, python-stdnum {theirs:.2f} µs per code", flush=True)
    return [
        common.figure(
            NAME,
            "check one never-seen USCC",
            ours,
            "µs",
            baseline=theirs,
            goal="<= 0.2x python-stdnum",
            met=ours <= 0.2 * theirs,
            baseline_what="python-stdnum stdnum.cn.uscc.validate",
            codes=n,
        )
    ]
