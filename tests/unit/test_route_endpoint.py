"""Routes made from data (shared.routing.endpoint): FastAPI reads the signature given, in its order."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from shared.routing import ERRORS, WRITE_ERRORS, IdempotencyKey, Section, endpoint


class Note(BaseModel):
    text: str


def _app() -> FastAPI:
    router = APIRouter(prefix="/v1")
    notes = Section(router, "notes", ERRORS, WRITE_ERRORS)

    async def run(**values: Any) -> Any:
        return {"note_id": values["note_id"], "text": values["body"].text, "key": values["idempotency_key"]}

    params = {"note_id": str, "body": Note, "idempotency_key": IdempotencyKey}
    route = endpoint("sign_note", run, params, {"idempotency_key": None})
    notes.post("/notes/{note_id}:sign", summary="Sign a note")(route)
    notes.get("/notes/{note_id}", summary="One note")(endpoint("get_note", run, {"note_id": str}))
    app = FastAPI()
    app.include_router(router)
    return app


async def test_a_route_from_data_is_documented_and_called_as_declared() -> None:
    app = _app()
    doc = app.openapi()
    sign = doc["paths"]["/v1/notes/{note_id}:sign"]["post"]
    assert [(p["name"], p["in"], p["required"]) for p in sign["parameters"]] == [
        ("note_id", "path", True),
        ("Idempotency-Key", "header", False),
    ]
    assert sign["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Note"}
    assert sign["operationId"].startswith("sign_note")
    # A section's writes answer its write errors, its reads the others.
    assert {"409", "412", "428"} <= set(sign["responses"])
    assert not {"409", "412", "428"} & set(doc["paths"]["/v1/notes/{note_id}"]["get"]["responses"])

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        signed = await client.post("/v1/notes/n1:sign", json={"text": "ok"}, headers={"Idempotency-Key": "k"})
        unkeyed = await client.post("/v1/notes/n1:sign", json={"text": "ok"})
        refused = await client.post("/v1/notes/n1:sign", json={})
    assert signed.json() == {"note_id": "n1", "text": "ok", "key": "k"}
    assert unkeyed.json()["key"] is None
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "text"]
