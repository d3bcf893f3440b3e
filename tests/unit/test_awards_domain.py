"""Awards rules without a database: catalog, holders, subjects, dates, transitions, counting."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.awards.domain import (
    GrantRefused,
    HonourFacts,
    State,
    Subject,
    Suspension,
    TransitionError,
    active_on,
    after_listing_removed,
    check_dates,
    check_holder,
    check_subject,
    count_by_type,
    default_valid_until,
    granted_during,
    load_catalog,
    parse_catalog,
    transition,
)
from services.awards.service import snapshot
from shared.contracts.awards import HonourSnapshot
from shared.regions import load_regions

CAT = load_catalog()
REG = load_regions()
USCC = "91370200163562681G"


def err(fn: Any, *args: Any) -> GrantRefused:
    with pytest.raises(GrantRefused) as info:
        fn(*args)
    return info.value


# ------------------------------------------------------------------------------ catalog

SEED_INDICATORS = {  # docs/plan-indicators.md: every counted honour target has a type feeding it
    "brand_demonstration_zones",
    "gi_products",
    "well_known_trademarks",
    "quality_product_bases",
    "shandong_famous_brands",
    "shandong_famous_trademarks",
    "shandong_service_brands",
    "international_standards",
    "national_industry_local_standards",
    "standardization_tc_secretariats",
    "standardization_good_behaviour_enterprises",
    "agri_service_standardization_pilots",
    "excellence_benchmark_enterprises",
    "excellence_assessment_experts",
    "excellence_model_enterprises",
    "governor_quality_awards",
    "mayor_quality_awards",
    "quality_innovation_incubation_bases",
    "engineering_quality_awards",
    "service_standardization_zones",
}


def test_catalog_feeds_every_seed_indicator_and_is_well_formed() -> None:
    assert {t.indicator_code for t in CAT.types} == SEED_INDICATORS
    assert len(set(CAT.codes)) == len(CAT.codes)
    assert CAT.get("B5").validity_years == 3 and CAT.get("B5").holder_kinds == ("enterprise",)
    assert CAT.get("B1").holder_kinds == ("region",) and CAT.get("Q2").holder_kinds == ("person",)
    assert CAT.get("S11").holder_kinds == ("region",)
    assert err(CAT.get, "X9").slug == "unknown-honour-type"


def test_malformed_catalog_is_refused_at_load() -> None:
    entry = {**CAT.get("B5").as_dict(), "holder_kinds": ["martian"]}
    with pytest.raises(ValueError, match="bad holder kinds"):
        parse_catalog({"version": "x", "types": [entry]})
    ok = CAT.get("B5").as_dict()
    with pytest.raises(ValueError, match="twice"):
        parse_catalog({"version": "x", "types": [ok, ok]})


# ------------------------------------------------------------------------------ holders


def test_enterprise_uscc_is_normalised_and_its_district_found() -> None:
    h = check_holder(CAT.get("B5"), "enterprise", USCC.lower(), None, date(2014, 1, 1), REG)
    assert h.id == USCC and h.district_code is None  # 370200 is the city, not a district
    h2 = check_holder(CAT.get("B5"), "enterprise", USCC, "370212", date(2014, 1, 1), REG)
    assert h2.district_code == "370212"


@pytest.mark.parametrize(
    ("code", "kind", "holder", "district", "on", "slug", "field"),
    [
        ("B1", "person", "QD-P-1", None, date(2014, 1, 1), "holder-kind-not-allowed", "holder_kind"),
        ("Q2", "enterprise", USCC, None, date(2014, 1, 1), "holder-kind-not-allowed", "holder_kind"),
        ("B5", "enterprise", "91370200163562681X", None, date(2014, 1, 1), "invalid-uscc", "holder_id"),
        ("B1", "region", "370299", None, date(2014, 1, 1), "invalid-division-code", "holder_id"),
        ("B1", "region", "370205", None, date(2013, 1, 1), "invalid-division-code", "holder_id"),  # 四方区 merged
        ("B1", "region", "370215", None, date(2016, 12, 31), "invalid-division-code", "holder_id"),  # 即墨区 not yet
        ("B5", "enterprise", USCC, "370200", date(2014, 1, 1), "invalid-division-code", "district_code"),
        ("Q2", "person", "x", None, date(2014, 1, 1), "invalid-person-id", "holder_id"),
    ],
)
def test_bad_holders(code: str, kind: str, holder: str, district: str | None, on: date, slug: str, field: str) -> None:
    e = err(check_holder, CAT.get(code), kind, holder, district, on, REG)
    assert (e.slug, e.field) == (slug, field)


def test_region_codes_follow_their_dates() -> None:
    assert check_holder(CAT.get("B1"), "region", "370205", None, date(2012, 12, 31), REG).district_code == "370205"
    assert check_holder(CAT.get("B1"), "region", "370282", None, date(2015, 1, 1), REG).district_code == "370282"
    assert check_holder(CAT.get("B1"), "region", "370215", None, date(2018, 1, 1), REG).district_code == "370215"
    assert check_holder(CAT.get("B1"), "region", "370200", None, date(2018, 1, 1), REG).district_code is None


# ------------------------------------------------------------------------------ subjects and dates


def test_subject_rules() -> None:
    check_subject(CAT.get("S2"), Subject(kind="standard", number="GB/T 19001-2016", title="质量管理体系", role="lead"))
    assert err(check_subject, CAT.get("B5"), None).slug == "subject-required"
    assert err(check_subject, CAT.get("Q5"), Subject(kind="product", name="x")).slug == "subject-kind-mismatch"
    no_title = Subject(kind="standard", number="GB/T 1-2012", role="lead")
    assert err(check_subject, CAT.get("S2"), no_title).field == "subject.title"
    local = Subject(kind="standard", number="DB37/T 1-2012", title="t", role="participant")
    check_subject(CAT.get("S4"), local)
    assert err(check_subject, CAT.get("S2"), local).slug == "standard-number-mismatch"
    check_subject(CAT.get("Q5"), None)


def test_validity_is_counted_to_the_day_before_the_anniversary() -> None:
    assert default_valid_until(CAT.get("B5"), date(2012, 12, 20)) == date(2015, 12, 19)
    assert default_valid_until(CAT.get("B5"), date(2012, 2, 29)) == date(2015, 2, 27)
    assert default_valid_until(CAT.get("B3"), date(2012, 12, 20)) is None


def test_dates() -> None:
    check_dates(date(2014, 1, 1), date(2014, 1, 1), date(2014, 1, 1))
    assert err(check_dates, date(2014, 1, 2), None, date(2014, 1, 1)).slug == "granted-in-future"
    assert err(check_dates, date(2014, 1, 1), date(2013, 12, 31), date(2015, 1, 1)).slug == (
        "valid-until-before-granted"
    )


# ------------------------------------------------------------------------------ transitions


def test_state_transitions() -> None:
    assert transition("active", "suspend") is State.SUSPENDED
    assert transition("suspended", "reinstate") is State.ACTIVE
    assert transition("active", "expire") is State.EXPIRED
    assert transition("expired", "revoke") is State.REVOKED
    for state, action in [
        ("revoked", "revoke"),
        ("active", "reinstate"),
        ("expired", "suspend"),
        ("revoked", "reinstate"),
    ]:
        with pytest.raises(TransitionError):
            transition(state, action)  # type: ignore[arg-type]
    assert after_listing_removed(date(2015, 9, 1), date(2015, 9, 1)) == "reinstate"
    assert after_listing_removed(date(2015, 8, 31), date(2015, 9, 1)) == "expire"
    assert after_listing_removed(None, date(2015, 9, 1)) == "reinstate"


# ------------------------------------------------------------------------------ counting


def test_active_on_and_granted_during() -> None:
    h = HonourFacts("B5", date(2013, 1, 1), date(2015, 12, 31), None)
    assert active_on(h, date(2015, 12, 31)) and not active_on(h, date(2016, 1, 1))
    assert not active_on(h, date(2012, 12, 31))
    suspended_at_end = HonourFacts("B5", date(2013, 1, 1), None, None, (Suspension("e", date(2015, 6, 1), None),))
    assert not active_on(suspended_at_end, date(2015, 12, 31))  # suspended at the end: not active
    assert granted_during(suspended_at_end, date(2011, 1, 1), date(2015, 12, 31))  # but it was granted
    back = HonourFacts("B5", date(2013, 1, 1), None, None, (Suspension("e", date(2015, 6, 1), date(2015, 12, 31)),))
    assert active_on(back, date(2015, 12, 31)) and not active_on(back, date(2015, 12, 30))
    revoked = HonourFacts("B5", date(2013, 1, 1), None, date(2015, 12, 31))
    assert not active_on(revoked, date(2015, 12, 31)) and active_on(revoked, date(2015, 12, 30))
    assert not granted_during(revoked, date(2011, 1, 1), date(2015, 12, 31))
    assert granted_during(revoked, date(2011, 1, 1), date(2015, 12, 30))
    assert count_by_type([h, suspended_at_end, back, revoked], date(2011, 1, 1), date(2015, 12, 31)) == {"B5": (3, 2)}


# ------------------------------------------------------------------------------ snapshot, rate limit


def test_snapshot_is_the_published_model() -> None:
    now = datetime(2015, 1, 1, tzinfo=UTC)
    row = {
        "honour_id": "h1",
        "version": 3,
        "type_code": "S2",
        "holder_kind": "enterprise",
        "holder_id": USCC,
        "holder_name": "甲",
        "district_code": None,
        "subject": Subject(kind="standard", number="GB/T 1-2012", title="t", role="lead").model_dump_json(),
        "granted_on": date(2014, 1, 1),
        "valid_until": None,
        "state": "suspended",
        "certificate_no": "c",
        "granting_authority": "a",
        "created_at": now,
        "updated_at": now,
    }
    snap = HonourSnapshot.model_validate(snapshot(row, CAT))
    assert snap.indicator_codes == ["national_industry_local_standards"] and snap.subject is not None
    assert snap.type_name_zh == CAT.get("S2").name_zh
