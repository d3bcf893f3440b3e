from __future__ import annotations

from pathlib import Path

from qcity.event_catalog import catalog_markdown, entries

DOC = Path(__file__).parents[2] / "docs" / "event-catalog.md"


def test_the_committed_event_catalog_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == catalog_markdown(), "run: qcity catalog --format md --out " + str(DOC)


def test_catalog_lists_every_sampling_event_with_its_schema() -> None:
    by_type = {e["type"]: e for e in entries()}
    for verb in ("recorded", "corrected", "retracted", "reinspected", "finalised"):
        schema = by_type[f"sampling.result.{verb}.v1"]["data_schema"]
        assert "result" in schema["properties"]
