"""The gateway's forwarding table (services/gateway/data/forwards.json): read once, and a malformed
row refused at load with the file, the line and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.gateway.forwarding import (
    ARCHIVE,
    FORWARDS,
    FORWARDS_FILE,
    OFFICER,
    RECORD_READERS,
    load_forwards,
)
from services.gateway.plans import DataFileError


def _by_route() -> dict[tuple[str, str], Any]:
    return {(f.method, f.path): f for f in FORWARDS}


def test_rows_resolve_scope_groups_jobs_and_upstream_paths() -> None:
    routes = _by_route()
    assert routes["POST", "/v1/results:import"].scopes == ARCHIVE
    assert routes["GET", "/v1/blacklist-entries"].scopes == OFFICER
    assert routes["GET", "/v1/credit-records/{record_id}"].scopes == RECORD_READERS
    assert routes["GET", "/v1/regions"].scopes == () and routes["GET", "/v1/regions"].service == "sampling"
    assert routes["GET", "/v1/awards/regions"].target == "/v1/regions"
    # A {"jobs": summary} row stands for the service's schedule and runner, at its place in the file.
    runner = routes["POST", "/v1/credit/jobs/{name}:run"]
    assert (runner.service, runner.summary, runner.target) == ("credit", "Run a credit job now", "/v1/jobs/{name}:run")
    paths = [f.path for f in FORWARDS]
    assert paths.index("/v1/jobs/sampling") < paths.index("/v1/notices") < paths.index("/v1/rating-rules")
    # The rows every service has alike are made in code, after the file's.
    assert [f.path for f in FORWARDS[-3:]] == ["/v1/audit/sampling", "/v1/audit/credit", "/v1/audit/awards"]
    assert len(routes) == len(FORWARDS)


def _write(tmp_path: Path, change: Any) -> Path:
    raw = json.loads(FORWARDS_FILE.read_text(encoding="utf-8"))
    change(raw["forwards"])
    bad = tmp_path / "forwards.json"
    # One row a line, as in the real file, so the line named can be checked.
    bad.write_text(json.dumps(raw, indent=2, ensure_ascii=False), encoding="utf-8")
    return bad


@pytest.mark.parametrize(
    ("change", "field", "why"),
    [
        (
            lambda f: f["credit"][3].update(scope="credit:reviw"),
            "forwards.credit.3.scope",
            "unknown scope 'credit:reviw'",
        ),
        (lambda f: f["sampling"][0].update(method="FETCH"), "forwards.sampling.0.method", "Input should be"),
        (lambda f: f["awards"][1].pop("summary"), "forwards.awards.1.summary", "Field required"),
        (lambda f: f["sampling"][2].update(path="v1/results"), "forwards.sampling.2.path", "should match pattern"),
        (lambda f: f.update(ledger=[]), "forwards.ledger.[key]", "Input should be 'sampling'"),
    ],
)
def test_a_malformed_row_is_refused_at_load_naming_file_line_and_field(
    tmp_path: Path, change: Any, field: str, why: str
) -> None:
    bad = _write(tmp_path, change)
    with pytest.raises(DataFileError) as err:
        load_forwards(bad)
    assert str(err.value).startswith(f"{bad}:") and f"{field}: " in err.value.reason and why in err.value.reason
    assert err.value.line > 3  # the row's own line, not the file's first


def test_a_route_listed_twice_is_refused(tmp_path: Path) -> None:
    bad = _write(tmp_path, lambda f: f["awards"].append(f["sampling"][0]))
    with pytest.raises(DataFileError, match=r"POST /v1/results appears twice"):
        load_forwards(bad)
