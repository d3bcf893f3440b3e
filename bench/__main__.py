"""`python -m bench [--only NAME] [--rows N] [--quick | --national]`: run the benchmarks, print a table,
write JSON and Markdown (bench/results/, git-ignored; a run of record is copied to bench/runs/).

Full size (the default) is issue 18's: 1M results embedded and distributed, 1M results and 1M
enterprises read, 1M enterprises screened. `--quick`: about 100,000 results. `--national`: a national
year, 7M results through the embedded suite (a documented run, not in CI)."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from importlib import import_module
from pathlib import Path
from typing import Any

from bench import common

BENCHMARKS = (
    "idle_embedded",
    "uscc_check",
    "ingest_embedded",
    "peer_orm",
    "ingest_distributed",
    "credit_screening",
    "credit_records",
    "gateway_read",
    "warning_eval",
    "webhook_fanout",
)
RESULTS = Path(__file__).resolve().parent / "results"


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def table(rows: list[dict[str, Any]]) -> str:
    head = ("benchmark", "figure", "value", "unit", "baseline", "ratio", "goal", "met?")
    body = [
        (
            r["benchmark"],
            r["figure"],
            _fmt(r["value"]),
            r["unit"],
            _fmt(r["baseline"]),
            _fmt(r["ratio"]),
            r["goal"] or "-",
            _fmt(r["met"]),
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([line(head), line("-" * w for w in widths), *(line(b) for b in body)])


def markdown(rows: list[dict[str, Any]]) -> str:
    """The same table in Markdown (written beside the JSON, for bench/runs/ and the README)."""
    head = ("benchmark", "figure", "value", "unit", "baseline (same run)", "ratio", "goal", "met?")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = (r["benchmark"], r["figure"], _fmt(r["value"]), r["unit"], _fmt(r["baseline"]), _fmt(r["ratio"]))
        cells += (r["goal"] or "-", _fmt(r["met"]))
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def lead_over_peer(figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The suite's embedded ingest beside the peer (one row per POST, plain ORM) of the same run."""
    suite = next((f for f in figures if f["benchmark"] == "ingest_embedded" and f["unit"] == "results/s"), None)
    peer = next((f for f in figures if f["benchmark"] == "peer_orm"), None)
    if suite is None or peer is None:
        return []
    return [
        common.figure(
            "peer_orm",
            "embedded ingest over the peer",
            suite["value"],
            "results/s",
            baseline=peer["value"],
            goal=">= 10x the peer",
            met=suite["value"] >= 10 * peer["value"],
        )
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--only", choices=BENCHMARKS, action="append", help="run only this benchmark (repeatable)")
    ap.add_argument("--rows", type=int, help="rows (results, enterprises) of every benchmark run (default 1,000,000)")
    ap.add_argument("--quick", action="store_true", help="about 100,000 rows (50,000 distributed, 20,000 read)")
    ap.add_argument(
        "--national", action="store_true", help="a national year: 7,000,000 results embedded (ingest_embedded only)"
    )
    ap.add_argument("--idle-window", type=float, help="idle_embedded: seconds measured (default 60, 15 with --quick)")
    ap.add_argument("--concurrency", type=int, default=3, help="requests in flight (default 3)")
    ap.add_argument(
        "--profile",
        choices=("none", "cprofile", "pyinstrument", "stages", "py-spy"),
        default="none",
        help="ingest_embedded: run the server under a profiler (see bench/serve_embedded.py); py-spy: "
        "sample the server of every benchmark from outside (raw stacks, read with python -m bench.topframes)",
    )
    ap.add_argument("--profile-out", default="bench/results/profile", help="profile output path (no suffix)")
    args = ap.parse_args(argv)
    if args.national:
        args.only = ["ingest_embedded"]
    common.install_signal_handlers()
    start = common.machine()
    print(f"[bench] {start}", flush=True)

    figures: list[dict[str, Any]] = []
    failed: list[str] = []
    for name in args.only or BENCHMARKS:
        try:
            figures += import_module(f"bench.{name}").run(args)
        except KeyboardInterrupt:
            print(f"\n[{name}] interrupted; servers stopped", file=sys.stderr)
            return 130
        except Exception:
            traceback.print_exc()
            failed.append(name)

    figures += lead_over_peer(figures)
    print()
    print(table(figures))
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    doc = {
        "time": stamp,
        "argv": sys.argv[1:],
        "python": sys.version.split()[0],
        "machine": platform.platform(),
        "start": start,
        "end": common.machine(),
        "failed": failed,
        "figures": figures,
    }
    text = json.dumps(doc, indent=1)
    (RESULTS / "latest.json").write_text(text)
    (RESULTS / "latest.md").write_text(markdown(figures) + "\n")
    (RESULTS / f"{stamp}.json").write_text(text)
    print(f"\nwritten: {RESULTS / 'latest.json'}" + (f"   FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
