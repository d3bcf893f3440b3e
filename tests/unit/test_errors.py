"""The error hierarchy: one slug per condition, real statuses, one rendering for all of them."""

from __future__ import annotations

import importlib
import pkgutil
import re
from http import HTTPStatus

import httpx
import pytest
from fastapi import FastAPI

import services
import shared
from shared.errors import (
    QualityCityError,
    StaleVersion,
    Unauthenticated,
    ValidationFailed,
    all_error_classes,
)
from shared.problems import PROBLEM_JSON, TYPE_PREFIX, error_response, install_problem_handlers


def _import_everything() -> list[type[QualityCityError]]:
    """Every module of shared/ and services/, so the conditions defined in each are registered."""
    for pkg in (shared, services):
        for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if ".migrations" not in mod.name:
                importlib.import_module(mod.name)
    return all_error_classes()


CLASSES = _import_everything()
CONCRETE = [c for c in CLASSES if not c.__dict__.get("abstract", False)]


def test_the_services_define_their_own_conditions() -> None:
    modules = {c.__module__ for c in CLASSES}
    for service in ("sampling", "credit", "awards"):
        assert f"services.{service}.domain" in modules
    assert any(m.startswith("services.gateway.") for m in modules)


@pytest.mark.parametrize("cls", CONCRETE, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_each_condition_has_a_slug_a_title_and_a_real_error_status(cls: type[QualityCityError]) -> None:
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", cls.slug), cls.slug
    assert cls.title.strip() == cls.title and cls.title
    assert 400 <= cls.status <= 599 and cls.status in {s.value for s in HTTPStatus}


def test_no_subclass_is_left_with_the_base_slug_by_mistake() -> None:
    leaked = [c for c in CONCRETE if c is not QualityCityError and c.slug == QualityCityError.slug]
    assert leaked == [], "a subclass without its own slug answers 500 internal-error: mark it abstract or name it"


def test_each_slug_is_defined_once_and_shared_only_by_its_subclasses() -> None:
    """Two classes may answer the same problem type only if one refines the other (a title worded
    for one situation, a path instead of a body): never two unrelated definitions of one slug."""
    definers: dict[str, list[type[QualityCityError]]] = {}
    for cls in CONCRETE:
        if "slug" in cls.__dict__:
            definers.setdefault(cls.slug, []).append(cls)
    duplicates = {slug: [c.__qualname__ for c in cs] for slug, cs in definers.items() if len(cs) > 1}
    assert duplicates == {}
    for cls in CONCRETE:
        (owner,) = definers[cls.slug]
        assert issubclass(cls, owner), (cls, owner)


def _instance(cls: type[QualityCityError]) -> QualityCityError:
    # Each class has its own constructor arguments; the rendering only reads what the base stores.
    exc = cls.__new__(cls)
    QualityCityError.__init__(exc, f"detail of {cls.__name__}", extra_field=cls.__name__)
    return exc


async def test_the_handler_renders_every_condition_to_the_same_body_shape() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/raise/{i}")
    async def raise_one(i: int) -> None:
        raise _instance(CONCRETE[i])

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answers = [await client.get(f"/raise/{i}") for i in range(len(CONCRETE))]
    for i, (cls, r) in enumerate(zip(CONCRETE, answers, strict=True)):
        assert r.status_code == cls.status, cls
        assert r.headers["content-type"] == PROBLEM_JSON
        assert r.json() == {
            "type": TYPE_PREFIX + cls.slug,
            "title": cls.title,
            "status": cls.status,
            "detail": f"detail of {cls.__name__}",
            "instance": f"/raise/{i}",
            "extra_field": cls.__name__,
        }


def test_headers_and_errors_reach_the_answer() -> None:
    r = error_response(Unauthenticated("no token"))
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="qualitycity"'
    body = error_response(ValidationFailed.one("cursor", "query", "bad", code="value_error")).body
    assert b'"errors":[{"field":"cursor","in":"query","reason":"bad","code":"value_error"}]' in body


def test_a_stale_version_has_one_wording_with_or_without_the_current_etag() -> None:
    known, unknown = StaleVersion(7), StaleVersion()
    assert known.slug == "precondition-failed" and known.status == 412
    assert known.detail == unknown.detail
    assert known.extensions == {"current_etag": '"7"'} and unknown.extensions == {}
