"""`python -m bench.topframes FILE [N]`: the top frames of a py-spy raw (collapsed) profile.

Prints, for the N functions seen most often, their share of samples as the leaf (self) and
anywhere on the stack (total), so a profile fits in a report.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path


def top_frames(path: Path, n: int = 15) -> str:
    self_c: Counter[str] = Counter()
    total_c: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        k = int(count)
        samples += k
        frames = stack.split(";")
        self_c[frames[-1]] += k
        for f in set(frames):
            total_c[f] += k
    out = [f"{samples} samples", "self%  total%  frame"]
    for f, c in total_c.most_common(n):
        out.append(f"{100 * self_c[f] / samples:5.1f}  {100 * c / samples:6.1f}  {f}")
    out.append("-- by self --")
    for f, c in self_c.most_common(n):
        out.append(f"{100 * c / samples:5.1f}  {100 * total_c[f] / samples:6.1f}  {f}")
    return "\n".join(out)


if __name__ == "__main__":
    print(top_frames(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 15))
