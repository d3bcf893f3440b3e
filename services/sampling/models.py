"""The sampling service's tables (its own database)."""

from sqlalchemy import Column, Date, Index, Integer, String, Table, Text, UniqueConstraint

from shared import columns
from shared.platform_tables import service_metadata

metadata, (outbox, inbox, audit_log, quarantined_events, idempotency_keys, rate_limits) = service_metadata()

#: Each result as it stands now; earlier versions live in `result_versions`.
results = Table(
    "results",
    metadata,
    *columns.aggregate("id"),
    columns.agency_code(),
    Column("report_no", String(64), nullable=False),
    *columns.sampled_product(),
    Column("brand", String(64)),
    Column("model_spec", String(64)),
    Column("batch_no", String(64)),
    Column("production_date", Date),
    columns.uscc(index=True),
    columns.enterprise_name(),
    columns.district_code(),
    Column("sampled_unit", String(200)),
    Column("sampling_date", Date, nullable=False),
    Column("report_date", Date, nullable=False),
    Column("conclusion", String(4), nullable=False),
    Column("original_conclusion", String(4), nullable=False),
    Column("state", String(12), nullable=False),
    Column("objection_deadline", Date),
    Column("reinspection", String(12)),
    Column("nonconforming_items", Text, nullable=False),  # JSON array
    columns.timestamp("recorded_at"),
    columns.updated_at(),
    columns.subject("recorded_by"),
    UniqueConstraint("agency_code", "report_no"),
    Index("ix_results_sampling_date", "sampling_date"),
    Index("ix_results_state_deadline", "state", "objection_deadline"),
)

#: Every earlier version of a result, written when it changes (history = these + the current row).
result_versions = Table(
    "result_versions",
    metadata,
    columns.serial(),
    columns.uuid7("result_id"),
    columns.version(),
    Column("change", String(12), nullable=False),  # what made this version
    Column("reason", String(200)),
    columns.subject("actor"),
    # The agency of whoever made this version: the owner, or another agency recording a re-inspection.
    Column("agency", String(32)),
    columns.timestamp("at"),
    Column("snapshot", Text, nullable=False),  # JSON of the result at that version
    UniqueConstraint("result_id", "version"),
)

#: What each agency sent: the data-quality scorecard counts rejected rows, conflicts and duplicates from it.
ingest_log = Table(
    "ingest_log",
    metadata,
    columns.serial(),
    columns.agency_code(),
    columns.timestamp("at"),
    Column("received", Integer, nullable=False),
    Column("created", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    # A re-sent report number whose content differs: not a bad row, an agency-side mix-up, so counted apart.
    Column("conflicts", Integer, nullable=False, server_default="0"),
    Index("ix_ingest_log_agency", "agency_code"),
)

#: A notice (公告) as it stands now: a publisher's numbered, dated publication of final fails.
notices = Table(
    "notices",
    metadata,
    *columns.aggregate("id"),
    Column("notice_no", String(64), nullable=False, unique=True),
    Column("notice_date", Date, nullable=False),
    Column("title", String(200), nullable=False),
    # The publishing agency (its token's), or NULL for the bureau (a token without an agency).
    Column("publisher", String(32)),
    columns.timestamp("published_at"),
    columns.subject("published_by"),
    columns.updated_at(),
)

#: The results a notice publishes (as it stands now): a result is cited by one notice at most.
notice_results = Table(
    "notice_results",
    metadata,
    columns.uuid7("notice_id"),
    Column("result_id", String(36), nullable=False, unique=True),
    Index("ix_notice_results_notice", "notice_id"),
)

#: Every version of a notice, the first included (history = these rows).
notice_versions = Table(
    "notice_versions",
    metadata,
    columns.serial(),
    columns.uuid7("notice_id"),
    columns.version(),
    Column("change", String(12), nullable=False),  # published | corrected
    Column("reason", String(200)),
    columns.subject("actor"),
    Column("agency", String(32)),
    columns.timestamp("at"),
    Column("snapshot", Text, nullable=False),  # JSON of the notice at that version, its result ids included
    UniqueConstraint("notice_id", "version"),
)
