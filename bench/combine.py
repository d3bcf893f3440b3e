"""`python -m bench.combine OUT IN.json...`: one run of record from several invocations of `python -m bench`.

A full-size run is long on a shared machine; run it benchmark by benchmark (`--only NAME`, each writing
its own bench/results/<time>.json) so that a part that fails or runs out of time costs only itself,
then combine the parts: OUT.json keeps every part (its argv, start and end: load average, cores,
memory) and all figures, with the peer's lead recomputed across parts; OUT.md is the table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.__main__ import lead_over_peer, markdown


def combine(paths: list[Path]) -> dict[str, Any]:
    parts = [json.loads(p.read_text()) for p in paths]
    figures = [f for part in parts for f in part["figures"] if f["figure"] != "embedded ingest over the peer"]
    figures += lead_over_peer(figures)
    return {
        "parts": [
            {k: v for k, v in part.items() if k != "figures"} | {"file": p.name}
            for p, part in zip(paths, parts, strict=True)
        ],
        "figures": figures,
    }


def parts_markdown(parts: list[dict[str, Any]]) -> str:
    """Each part's command, when it ran and the machine's load average (1, 5, 15 min) at its start and end."""
    lines = ["| part | command | started | load at start | load at end | failed |", "|---|---|---|---|---|---|"]
    for part in parts:
        start, end = part.get("start", {}), part.get("end", {})
        load = lambda m: " / ".join(str(x) for x in m.get("load_average", [])) or "-"  # noqa: E731
        lines.append(
            f"| {part['file']} | `python -m bench {' '.join(part.get('argv', []))}` | {start.get('at', '-')} "
            f"| {load(start)} | {load(end)} | {', '.join(part.get('failed', [])) or '-'} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, paths = Path(argv[0]), [Path(a) for a in argv[1:]]
    doc = combine(paths)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    out.with_suffix(".md").write_text(markdown(doc["figures"]) + "\n\n" + parts_markdown(doc["parts"]) + "\n")
    print(markdown(doc["figures"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
