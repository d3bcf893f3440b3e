"""The contract documents: the committed docs/openapi.json and docs/asyncapi.json are what the
suite serves, every operation has a short unique operationId and a tag, every schema one name and
title, every error the one Problem schema; and the edge behaves as the document says."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from qcity.event_catalog import asyncapi_json
from services.gateway.openapi import document_text
from shared.contracts import registry
from tests.contract.conftest import Served
from tests.factories import result_body

DOCS = Path(__file__).parents[2] / "docs"
OPERATION_ID = re.compile(r"[a-z][a-zA-Z0-9]{2,31}")  # camelCase, at most 32 characters
PROBLEM = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture(scope="module")
def doc(served: Served) -> dict[str, Any]:
    return dict(httpx.get(served.url + "/openapi.json").json())


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, item in doc["paths"].items() for m, op in item.items()]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_the_committed_openapi_document_is_what_the_gateway_serves(doc: dict[str, Any]) -> None:
    committed = (DOCS / "openapi.json").read_text(encoding="utf-8")
    assert committed == document_text(doc), "run: qcity openapi (writes docs/openapi.json)"


@pytest.mark.parametrize("where", ["", "/services/sampling", "/services/credit", "/services/awards"])
def test_operation_ids_are_short_unique_camel_case_and_tagged(served: Served, where: str) -> None:
    doc = httpx.get(f"{served.url}{where}/openapi.json").json()
    ids = [op.get("operationId", "") for _, _, op in _operations(doc)]
    assert [i for i in ids if not OPERATION_ID.fullmatch(i)] == []
    assert len(set(ids)) == len(ids), sorted(i for i in ids if ids.count(i) > 1)
    assert all(op.get("tags") for _, _, op in _operations(doc))


def test_schemas_have_one_name_and_title_and_errors_one_problem(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert all(schema["title"] == name for name, schema in schemas.items())
    assert {"SamplingRowOutcome", "AwardsRowOutcome", "Problem", "FieldError"} <= schemas.keys()
    assert not {"HTTPValidationError", "ValidationError"} & schemas.keys()
    assert set(schemas["Problem"]["required"]) == {"type", "title", "status"}
    assert schemas["FieldError"]["properties"].keys() >= {"field", "in", "reason", "code"}
    assert all(ref.removeprefix("#/components/schemas/") in schemas for ref in _refs(doc))
    for method, path, op in _operations(doc):
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                assert response["content"] == {"application/problem+json": {"schema": PROBLEM}}, (method, path)


def test_the_document_states_the_rules(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    correct = paths["/v1/results/{result_id}"]["patch"]
    if_match = next(p for p in correct["parameters"] if p["name"] == "If-Match")
    assert if_match["required"] is True and "428" in correct["responses"]
    uscc = next(p for p in paths["/v1/credit/{uscc}"]["get"]["parameters"] if p["name"] == "uscc")
    assert re.fullmatch(uscc["schema"]["pattern"], "91370200163562681G")
    assert doc["components"]["schemas"]["ResultOut"]["properties"]["recorded_at"]["format"] == "date-time"
    cursor = next(p for p in paths["/v1/results"]["get"]["parameters"] if p["name"] == "cursor")
    assert "pattern" in json.dumps(cursor["schema"])
    batch = paths["/v1/results:batch"]["post"]
    assert batch["requestBody"]["content"].keys() == {"application/json", "application/x-ndjson", "text/csv"}
    assert batch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SamplingBatchOut")
    honours = paths["/v1/honours:import"]["post"]
    assert honours["requestBody"]["content"]["text/csv"]["schema"] == {"type": "string", "format": "binary"}
    assert paths["/v1/regions"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"


def test_the_committed_asyncapi_document_is_current_and_served(served: Served) -> None:
    committed = (DOCS / "asyncapi.json").read_text(encoding="utf-8")
    assert committed == asyncapi_json(), "run: qcity catalog --format asyncapi --out docs/asyncapi.json"
    served_doc = httpx.get(served.url + "/asyncapi.json").json()
    assert served_doc == json.loads(committed) and served_doc["asyncapi"] == "3.0.0"
    messages = served_doc["components"]["messages"].values()
    assert sorted(m["headers"]["properties"]["ce_type"]["const"] for m in messages) == [
        t.name for t in registry.types()
    ]
    schemas = served_doc["components"]["schemas"]
    assert all(ref.removeprefix("#/components/schemas/") in schemas for ref in _refs(schemas))
    for op in served_doc["operations"].values():
        channel = op["channel"]["$ref"].removeprefix("#/channels/")
        assert channel in served_doc["channels"] and op["action"] in ("send", "receive")


def test_the_edge_is_as_strict_as_the_document(served: Served) -> None:
    h = {"Authorization": f"Bearer {served.token()}"}
    with httpx.Client(base_url=served.url, headers=h) as client:
        created = client.post("/v1/results", json=result_body("EDGE-1"))
        assert created.status_code == 201, created.text
        rid = created.json()["id"]
        # An action's path is not the resource's: 405 naming the action's methods.
        retract = client.get(f"/v1/results/{rid}:retract")
        assert retract.status_code == 405 and retract.headers["allow"] == "POST"
        # 405 names every method of the path, not only the first route's.
        assert client.delete(f"/v1/results/{rid}").headers["allow"] == "GET, PATCH"
        # Dates only as YYYY-MM-DD strings; booleans are not numbers, numbers not booleans.
        as_number = client.post("/v1/results", json=result_body("EDGE-2", sampling_date=20140510))
        assert as_number.status_code == 422 and as_number.json()["errors"][0]["field"] == "sampling_date"
        flag = client.post("/v1/results", json=result_body("EDGE-3", key_product=1))
        assert flag.status_code == 422 and flag.json()["errors"][0]["field"] == "key_product"
        figure = {
            "indicator": "expressway_good_road_rate",
            "period_start": "2014-01-01",
            "period_end": "2014-12-31",
            "value": False,
            "reporting_system": "山东省交通运输厅公路养护管理系统",
            "evidence_ref": "鲁交公路〔2015〕3号 附表2",
        }
        refused = client.post("/v1/indicator-reports", json=figure)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "value"
        assert client.get("/v1/results", params={"sampled_from": "1400000000"}).status_code == 422
