"""Request and response models of the credit service's API."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.credit import RecordFields, RecordKind
from shared.examples import example
from shared.strict import Day, Instant, Whole
from shared.tabular import BulkReceipt
from shared.text import Input
from shared.uscc import USCC, USCC_PATTERN


class _In(Input):
    model_config = ConfigDict(str_strip_whitespace=True)


class Proposal(_In):
    """A credit officer's blacklist proposal (列入质量信用黑名单的建议)."""

    uscc: USCC
    enterprise_name: str = Field(min_length=1, max_length=200)
    reason_category: str = Field(min_length=1, max_length=60, description="One of the rule set's reason categories")
    facts: str = Field(min_length=1, max_length=10000, description="The facts found")
    legal_basis: str = Field(min_length=1, max_length=400)
    deciding_authority: str = Field(min_length=1, max_length=200)
    decision_no: str = Field(min_length=1, max_length=100, description="The decision document number (文号)")
    appeal_route: str = Field(min_length=1, max_length=400, description="Where and how to appeal")
    appeal_deadline: Day
    publication_years: Whole | None = Field(
        None,
        ge=0,
        le=100,
        description="Publication period in years; the rules' default when omitted. The schema bounds only "
        "what can be stored; the rule set in force narrows the range (publication-period-out-of-range)",
    )

    model_config = example(
        {
            "uscc": "91370200163562681G",
            "enterprise_name": "青岛某食品有限公司",
            "reason_category": "fake_or_shoddy_products",
            "facts": "2014年生产销售以次充好的产品",
            "legal_basis": "《产品质量法》第五十条",
            "deciding_authority": "青岛市质量技术监督局",
            "decision_no": "青质监罚〔2014〕12号",
            "appeal_route": "向青岛市人民政府申请行政复议",
            "appeal_deadline": "2014-08-31",
        }
    )


class Approval(_In):
    decision_no: str | None = Field(None, max_length=100, description="Required when the proposal has none")
    comment: str | None = Field(None, max_length=4000)


class Rejection(_In):
    reason: str = Field(min_length=1, max_length=4000)
    decision_no: str | None = Field(None, max_length=100)


class Evidence(_In):
    title: str = Field(min_length=1, max_length=200)
    document_no: str | None = Field(None, max_length=100)
    url: str | None = Field(None, max_length=1000)


class RepairApplication(_In):
    """A credit-repair application (信用修复申请) with its evidence."""

    applicant: str = Field(min_length=1, max_length=200, description="Who applies for the enterprise")
    statement: str = Field(min_length=1, max_length=10000, description="The rectification done (整改情况)")
    evidence: list[Evidence] = Field(min_length=1, max_length=50)


class RepairReview(_In):
    outcome: Literal["approved", "rejected"]
    reason: str = Field(min_length=1, max_length=4000)
    decision_no: str = Field(min_length=1, max_length=100)


class WrongfulRemoval(_In):
    reason: Literal["wrongful"] = "wrongful"
    decision_no: str = Field(min_length=1, max_length=100)
    comment: str | None = Field(None, max_length=4000)


class ScreeningIn(_In):
    usccs: list[Annotated[str, Field(json_schema_extra={"pattern": USCC_PATTERN})]] = Field(
        min_length=1, max_length=1000
    )
    as_of: Day | None = None


# ---------------------------------------------------------------- answers


class EntryOut(BaseModel):
    """An entry as officers see it."""

    entry_id: str
    version: int
    uscc: str
    enterprise_name: str
    reason_category: str
    facts: str
    legal_basis: str
    deciding_authority: str
    decision_no: str | None
    appeal_route: str | None
    appeal_deadline: date | None
    publication_years: int
    rule_set_version: str
    status: str
    automatic: bool
    trigger_records: list[str] | None
    proposed_by: str
    proposed_at: Instant
    decided_by: str | None
    decided_at: Instant | None
    decision_comment: str | None
    listed_on: date | None
    publish_until: date | None
    earliest_repair_on: date | None
    repair_status: str | None
    repair_applied_by: str | None
    repair_applied_at: Instant | None
    repair_statement: str | None
    repair_evidence: dict[str, Any] | None
    removed_on: date | None
    removal_reason: str | None
    removed_by: str | None
    removal_decision_no: str | None
    noticed_on: date | None = None
    statement_deadline: date | None = None
    statement: dict[str, Any] | None = None


class PublicEntry(BaseModel):
    """Only the publishable fields (公示内容)."""

    entry_id: str
    uscc: str
    enterprise_name: str
    reason_category: str
    reason_category_zh: str | None
    legal_basis: str
    deciding_authority: str
    decision_no: str | None
    listed_on: date
    publish_until: date


class CheckOut(BaseModel):
    uscc: str
    as_of: date
    listed: bool
    entry: PublicEntry | None


class ScreeningOut(BaseModel):
    as_of: date
    count: int
    listed_count: int
    results: list[CheckOut]


class ContributionOut(BaseModel):
    record_id: str
    kind: str
    source: str
    authority: str | None = Field(None, description="For a record from another authority: the sending system")
    title: str
    level: str | None
    sector: str | None
    fact_date: date
    valid_until: date | None
    state: str
    note: str
    counted: bool
    points: float
    why: str


class CreditOut(BaseModel):
    uscc: str
    as_of: date
    rating: Literal["A", "B", "C", "D"]
    rating_name_zh: str
    score: float
    rule_set_version: str
    forced_by: str | None
    listed: bool
    entry: PublicEntry | None
    records: list[ContributionOut]


class HistoryItem(BaseModel):
    entry_id: str
    version: int
    action: str
    status: str
    actor: str
    at: Instant
    reason: str | None
    document_no: str | None
    request_id: str | None
    details: dict[str, Any] | None


class EnterpriseHistory(BaseModel):
    uscc: str
    entries: list[EntryOut]
    transitions: list[HistoryItem]
    records: list[ContributionOut]


class ArchivedListing(_In):
    """A blacklist decision from a bureau's archive, with its dates and, if it ended, its removal
    (POST /v1/blacklist:import; docs/archive-import.md)."""

    uscc: USCC | None = Field(
        None,
        description="Without it the enterprise is found by enterprise_name (and district_code) when one "
        "enterprise matches unambiguously; otherwise the row answers `unmatched` with the candidates",
    )
    district_code: str | None = Field(None, pattern=r"^[0-9]{6}$", description="Helps find the enterprise by name")
    enterprise_name: str = Field(min_length=1, max_length=200)
    reason_category: str = Field(min_length=1, max_length=60)
    facts: str = Field(min_length=1, max_length=10000)
    legal_basis: str = Field(min_length=1, max_length=400)
    deciding_authority: str = Field(min_length=1, max_length=200)
    decision_no: str = Field(min_length=1, max_length=100, description="The decision document number (文号)")
    appeal_route: str = Field(min_length=1, max_length=400)
    appeal_deadline: date
    publication_years: int | None = Field(None, description="The rules' default (of decided_on) when omitted")
    proposed_by: str = Field(min_length=1, max_length=128, description="The proposing officer, as archived")
    proposed_on: date | None = Field(None, description="Default: decided_on")
    reviewed_by: str = Field(min_length=1, max_length=128, description="The deciding reviewer: not the proposer")
    decided_on: date
    listed_from: date = Field(description="The first day on the published list")
    removed_on: date | None = Field(None, description="Taken off the list before its publication period ended")
    removal_reason: Literal["repaired", "wrongful"] | None = None
    removal_decision_no: str | None = Field(None, min_length=1, max_length=100)
    removal_note: str | None = Field(None, min_length=1, max_length=2000)


class RowOutcome(BaseModel):
    """What became of one row of a bulk request (an archive import, a batch of records)."""

    row: int
    outcome: Literal["created", "duplicate", "conflict", "rejected", "unmatched"]
    problems: list[dict[str, str]] = []
    candidates: list[CandidateOut] = Field(
        default_factory=list, description="unmatched: the enterprises the name may mean, for a person to choose"
    )


class BulkCounts(BulkReceipt):
    conflicts: int
    rejected: int
    unmatched: int


class ArchivedListingOutcome(RowOutcome):
    entry_id: str | None = None
    status: str | None = None


class ListingImportOut(BulkCounts):
    source_file: str
    rows: list[ArchivedListingOutcome]


# ---------------------------------------------------------------- due process


class Statement(_In):
    """The enterprise's statement or hearing request (陈述申辩), recorded by an officer with its date."""

    kind: Literal["statement", "hearing_request"]
    received_on: Day = Field(description="The day it reached the authority (on or before the deadline)")
    text: str = Field(min_length=1, max_length=10000)
    submitted_by: str = Field(min_length=1, max_length=200, description="Who made it for the enterprise")


class StatementDecision(_In):
    """The reviewer's decision on a statement: `upheld` lists the enterprise, `accepted` closes the proposal."""

    outcome: Literal["upheld", "accepted"]
    reason: str = Field(min_length=1, max_length=4000)
    decision_no: str | None = Field(None, max_length=100)


# ---------------------------------------------------------------- records from other authorities


class CreditRecordIn(_In):
    """A record from another authority's system (POST /v1/credit-records). Which fields a kind needs:
    administrative_penalty: decision_no, legal_basis, category; upheld_complaint: case_no, channel,
    category; licence_suspension / licence_revocation: decision_no, document_no (the licence);
    certification_withdrawal: document_no (the certificate); positive_record: title."""

    record_no: str = Field(min_length=1, max_length=100, description="The authority's own id: a resend is a duplicate")
    kind: RecordKind
    uscc: USCC | None = Field(
        None,
        description="Without it the enterprise is found by enterprise_name (and district_code) when one "
        "enterprise matches unambiguously (POST /v1/enterprises:match); otherwise the candidates are answered",
    )
    enterprise_name: str = Field(min_length=1, max_length=200)
    district_code: str | None = Field(None, pattern=r"^[0-9]{6}$", description="Helps find the enterprise by name")
    occurred_on: Day = Field(description="The decision, case-closing or commendation date")
    deciding_authority: str = Field(min_length=1, max_length=200)
    category: str | None = Field(None, min_length=1, max_length=100, description="违法类别 / complaint category")
    sector: Literal["manufacturing", "agricultural", "food", "engineering"] | None = Field(
        None, description="Weighs like a sampling fail of the sector (rating.negative.sector_factors)"
    )
    decision_no: str | None = Field(None, min_length=1, max_length=100, description="The decision number (文号)")
    legal_basis: str | None = Field(None, min_length=1, max_length=400)
    amount_yuan: Decimal | None = Field(None, ge=0, le=Decimal("1e12"), decimal_places=2)
    case_no: str | None = Field(None, min_length=1, max_length=100, description="The 12315 / 12345 case number")
    channel: Literal["12315", "12345"] | None = None
    document_no: str | None = Field(None, min_length=1, max_length=100, description="Licence or certificate number")
    valid_until: Day | None = Field(None, description="End of a suspension, or of a positive record's validity")
    title: str | None = Field(None, min_length=1, max_length=200)
    summary: str | None = Field(None, min_length=1, max_length=4000)

    model_config = example(
        {
            "record_no": "370200-2025-000123",
            "kind": "administrative_penalty",
            "uscc": "91370200163562681G",
            "enterprise_name": "青岛某食品有限公司",
            "occurred_on": "2025-03-12",
            "deciding_authority": "青岛市市场监督管理局",
            "category": "生产销售不符合食品安全标准的食品",
            "sector": "food",
            "decision_no": "青市监罚〔2025〕123号",
            "legal_basis": "《中华人民共和国食品安全法》第一百二十四条",
            "amount_yuan": "50000.00",
        }
    )


class RecordCorrection(_In):
    reason: str = Field(min_length=1, max_length=4000)
    record: CreditRecordIn = Field(description="The whole record as it should read (same record_no)")


class RecordWithdrawal(_In):
    reason: str = Field(min_length=1, max_length=4000)


class RecordVersionOut(BaseModel):
    version: int
    action: Literal["recorded", "corrected", "withdrawn"]
    status: Literal["active", "withdrawn"]
    body: dict[str, Any]
    reason: str | None
    actor: str
    at: Instant


class CreditRecordOut(RecordFields):
    body: dict[str, Any]
    created_at: Instant
    updated_at: Instant
    versions: list[RecordVersionOut] | None = Field(None, description="Every version, oldest first (one record)")


class NameQuery(_In):
    name: str = Field(min_length=1, max_length=200, description="The enterprise's name as the other system writes it")
    district_code: str | None = Field(None, pattern=r"^[0-9]{6}$", description="The district, if known")


class MatchIn(_In):
    names: list[NameQuery] = Field(min_length=1, max_length=1000)


class CandidateOut(BaseModel):
    uscc: str
    name: str
    district_code: str | None
    score: float = Field(description="0–100: the cores' Levenshtein similarity, adjusted by the district")
    explanation: dict[str, Any] = Field(
        description="The normalised cores, the parts that matched and differed, what normalisation removed "
        "(regions, organisation forms), and whether the district was the same"
    )


class MatchResult(BaseModel):
    row: int
    name: str
    outcome: Literal["matched", "ambiguous", "not_found"]
    uscc: str | None = Field(description="Only when one enterprise matches unambiguously")
    candidates: list[CandidateOut]


class MatchesOut(BaseModel):
    count: int
    matched: int
    ambiguous: int
    not_found: int
    threshold: float
    margin: float
    results: list[MatchResult]


class RecordOutcome(RowOutcome):
    record_id: str | None = None
    version: int | None = None


class RecordBatchOut(BulkCounts):
    rows: list[RecordOutcome]
