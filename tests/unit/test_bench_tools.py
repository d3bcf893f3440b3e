"""The benchmark's own pieces that decide what its figures mean: generated codes are valid, the
attainment readings never repeat (so no answer cache serves one), rows come in the promised chunks,
a run combined from parts keeps every figure and the peer's lead, peak memory is read from /proc."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from stdnum.cn import uscc

from bench import combine, common
from bench.gateway_read import _readings, event_batches


def test_generated_usccs_are_distinct_and_valid_by_python_stdnum() -> None:
    codes = common.usccs(20_000, seed=1)
    assert len(set(codes)) == 20_000
    assert all(uscc.is_valid(c) for c in codes)


def test_attainment_readings_are_all_different_and_within_the_plan() -> None:
    readings = _readings(1000)
    keys = {(r["as_of"], r.get("district")) for r in readings}
    assert len(keys) == 1000
    assert min(r["as_of"] for r in readings) >= "2011-01-01"
    assert max(r["as_of"] for r in readings) <= "2015-12-31"
    assert any("district" not in r for r in readings) and any("district" in r for r in readings)


def test_event_batches_give_every_enterprise_a_result_and_repeat_with_the_seed() -> None:
    ents = common.usccs(3000, seed=2)
    batches = list(event_batches(3000, ents))
    results = [e for b in batches for e in b if e.type.startswith("sampling")]
    assert {e.subject for e in results} == set(ents)
    assert len([e for b in batches for e in b]) == 3000 + 3000 // 50
    again = [e.data for b in event_batches(3000, ents) for e in b]
    assert again == [e.data for b in batches for e in b]


def test_rows_come_in_chunks_with_unique_report_numbers() -> None:
    sizes = [len(c) for c in common.chunks(common.iter_rows(2500, "T"), 1000)]
    assert sizes == [1000, 1000, 500]
    assert len({r["report_no"] for r in common.iter_rows(2500, "T")}) == 2500


def test_combined_parts_keep_every_figure_and_recompute_the_lead(tmp_path: Path) -> None:
    suite = common.figure("ingest_embedded", "ingest", 5000.0, "results/s")
    peer = common.figure("peer_orm", "peer", 250.0, "results/s")
    for name, figs in (("a", [suite]), ("b", [peer])):
        (tmp_path / f"{name}.json").write_text(json.dumps({"argv": [name], "figures": figs}))
    doc = combine.combine([tmp_path / "a.json", tmp_path / "b.json"])
    lead = doc["figures"][-1]
    assert lead["figure"] == "embedded ingest over the peer"
    assert lead["ratio"] == 20.0 and lead["met"] is True
    assert [p["argv"] for p in doc["parts"]] == [["a"], ["b"]]


def test_peak_rss_sees_memory_held_between_two_reads() -> None:
    before_kb = common._status_kb(os.getpid(), "VmRSS")
    with common.PeakRss(os.getpid(), every_s=0.01) as rss:
        ballast = b"x" * (80 * 1024 * 1024)  # written, so resident
        time.sleep(0.2)
        del ballast
    assert rss.sampled_kb >= before_kb + 70 * 1024
    assert rss.mb >= rss.sampled_kb / 1024
