"""A Python client generated with openapi-python-client from the gateway's served document, used
for the integrator's everyday tasks with no hand-written HTTP.

The generator runs offline (its configuration and one template fix are beside this test: see
generator.yaml and templates/); the client is written to a temporary folder and imported.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import httpx
import pytest

from tests.contract.conftest import Served
from tests.e2e.credit_helpers import proposal
from tests.factories import USCC_A, USCC_B, result_body

HERE = Path(__file__).parent
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "qualitycity_client"
T = TypeVar("T")


@pytest.fixture(scope="module")
def generated(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModuleType, str]]:
    folder = tmp_path_factory.mktemp("client")
    doc = folder / "openapi.json"
    doc.write_text(json.dumps(httpx.get(served.url + "/openapi.json").json()), encoding="utf-8")
    done = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(doc), "--output-path", str(folder / PACKAGE), "--meta", "none"]
        + ["--config", str(HERE / "generator.yaml"), "--custom-template-path", str(HERE / "templates")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "warning" not in out.lower(), out  # every operation and schema generated
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE), out
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _m(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


def eventually(read: Callable[[], T], ok: Callable[[T], bool], timeout_s: float = 15.0) -> T:
    """The gateway's read models follow the services' events: read until `ok` (or fail)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _csv(rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    columns = [c for c in rows[0] if c != "nonconforming_items"]
    writer = csv.DictWriter(buf, columns + ["nonconforming_items"])
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "nonconforming_items": json.dumps(row.get("nonconforming_items", []))})
    return buf.getvalue().encode()


def test_the_generated_client_covers_the_integrators_tasks(generated: tuple[ModuleType, str], served: Served) -> None:
    qc, _ = generated
    models = _m(qc, "models")
    api = "api"
    File = _m(qc, "types").File
    client = qc.AuthenticatedClient(base_url=served.url, token=served.token())

    # One result: 201 with its model, and the same report again answers 200 with the stored one.
    create_result = _m(qc, f"{api}.sampling.create_result")
    body = models.ResultIn.from_dict(result_body("CT-0001"))
    first = create_result.sync_detailed(client=client, body=body)
    assert first.status_code == 201 and isinstance(first.parsed, models.ResultOut)
    again = create_result.sync_detailed(client=client, body=body)
    assert again.status_code == 200 and again.parsed.id == first.parsed.id

    # A JSON batch and a CSV batch: every row's outcome parsed into models.
    batch = _m(qc, f"{api}.sampling.create_results_batch")
    rows = [result_body("CT-B1"), result_body("CT-B2", uscc=USCC_B), result_body("CT-B3", uscc=USCC_A[:-1] + "0")]
    answer = batch.sync(client=client, body=[models.ResultIn.from_dict(r) for r in rows])
    assert isinstance(answer, models.SamplingBatchOut), answer
    assert (answer.received, answer.created, answer.rejected) == (3, 2, 1)
    outcomes = {o.row: o for o in answer.rows}
    assert outcomes[1].outcome == "created" and outcomes[3].outcome == "rejected"
    assert isinstance(outcomes[3].problems[0], models.SamplingRowProblem)
    assert outcomes[3].problems[0].field == "uscc"
    csv_rows = [result_body("CT-C1"), result_body("CT-B1")]  # the second: the JSON batch's first again
    answer = batch.sync(client=client, body=File(payload=io.BytesIO(_csv(csv_rows)), mime_type="text/csv"))
    assert isinstance(answer, models.SamplingBatchOut), answer
    assert [o.outcome for o in answer.rows] == ["created", "duplicate"], [o.to_dict() for o in answer.rows]

    # A correction with If-Match from the previous answer, then a re-inspection with the next ETag.
    get_result = _m(qc, f"{api}.sampling.get_result")
    correct = _m(qc, f"{api}.sampling.correct_result")
    reinspect = _m(qc, f"{api}.sampling.reinspect_result")
    dates = {"production_date": "2015-05-01", "sampling_date": "2015-05-10", "report_date": "2015-05-25"}
    failed = create_result.sync(
        client=client, body=models.ResultIn.from_dict(result_body("CT-F1", conclusion="fail", **dates))
    )
    read = get_result.sync_detailed(failed.id, client=client)
    changes = models.CorrectionChanges.from_dict({"product_name": "崂山矿泉水（含气）"})
    corrected = correct.sync_detailed(
        failed.id, client=client, body=models.Correction(reason="typo", changes=changes), if_match=read.headers["etag"]
    )
    assert corrected.status_code == 200 and corrected.parsed.product_name == "崂山矿泉水（含气）"
    stale = correct.sync_detailed(
        failed.id, client=client, body=models.Correction(reason="again", changes=changes), if_match=read.headers["etag"]
    )
    assert stale.status_code == 412 and isinstance(stale.parsed, models.Problem)
    reinspection = models.ReinspectionIn(
        outcome=models.ReinspectionInOutcome("overturned"),
        reinspection_report_no="CT-FJ-1",
        requested_on=date(2015, 5, 30),
        decided_on=date(2015, 6, 1),
    )
    done = reinspect.sync_detailed(failed.id, client=client, body=reinspection, if_match=corrected.headers["etag"])
    assert done.status_code == 200 and (done.parsed.conclusion, done.parsed.state) == ("pass", "final")

    # Attainment, a credit profile, a screening.
    attainment = _m(qc, f"{api}.attainment.get_attainment").sync(client=client)
    assert isinstance(attainment, models.AttainmentOut) and attainment.indicators
    profile = eventually(
        lambda: _m(qc, f"{api}.credit.get_credit_profile").sync(USCC_A, client=client),
        lambda p: isinstance(p, models.CreditProfile),
    )
    assert isinstance(profile, models.CreditProfile) and profile.identity.uscc == USCC_A
    screening = _m(qc, f"{api}.credit.create_screening").sync(
        client=client, body=models.ScreeningIn(usccs=[USCC_A, USCC_B])
    )
    assert isinstance(screening, models.ScreeningOut) and screening.count == 2

    # Four eyes: one officer proposes, another reviewer approves with the proposal's ETag; the
    # officers' listing shows it listed.
    officer = qc.AuthenticatedClient(base_url=served.url, token=served.token("credit:write", subject="officer-1"))
    reviewer = qc.AuthenticatedClient(base_url=served.url, token=served.token("credit:review", subject="reviewer-2"))
    proposed = _m(qc, f"{api}.blacklist.propose_blacklist_entry").sync_detailed(
        client=officer, body=models.Proposal.from_dict(proposal(USCC_B))
    )
    assert proposed.status_code == 201 and isinstance(proposed.parsed, models.EntryOut)
    self_approval = _m(qc, f"{api}.blacklist.approve_blacklist_entry").sync_detailed(
        proposed.parsed.entry_id, client=officer, body=models.Approval(), if_match=proposed.headers["etag"]
    )
    assert self_approval.status_code == 403
    approved = _m(qc, f"{api}.blacklist.approve_blacklist_entry").sync_detailed(
        proposed.parsed.entry_id, client=reviewer, body=models.Approval(), if_match=proposed.headers["etag"]
    )
    assert approved.status_code == 200 and approved.parsed.status == "listed", approved.content
    listing = _m(qc, f"{api}.blacklist.list_blacklist_entries").sync(client=reviewer, uscc=USCC_B)
    assert isinstance(listing, models.PageEntryOut) and [e.status for e in listing.items] == ["listed"]

    # An honour CSV import, every row's outcome parsed.
    honours_csv = (
        "type_code,holder_id,holder_name,granted_on,certificate_no,subject_kind,subject_name\n"
        f"B5,{USCC_A},青岛甲公司,2012-12-20,CT-SDMP-1,product,洗衣机\n"
        f"X9,{USCC_A},青岛甲公司,2012-12-20,CT-X-1,product,空调\n"
    ).encode()
    imported = _m(qc, f"{api}.awards.import_honours").sync(
        client=client, body=File(payload=io.BytesIO(honours_csv), mime_type="text/csv")
    )
    assert isinstance(imported, models.AwardsImportOut), imported
    assert [(r.row, r.outcome) for r in imported.rows] == [(1, "created"), (2, "rejected")]
    assert isinstance(imported.rows[1].problems[0], models.AwardsRowProblem)

    # The change feed, page by page, until it has caught up.
    changes_feed = _m(qc, f"{api}.change_feed.list_changes")
    seen: list[Any] = []
    after = None
    for _ in range(100):
        page = changes_feed.sync(client=client, after=after, limit=3)
        assert isinstance(page, models.ChangesOut) and len(page.items) <= 3
        seen += page.items
        if not page.items:
            break
        after = page.next_cursor
    ids = [c.cursor for c in seen]
    assert len(seen) >= 5 and len(set(ids)) == len(ids)
