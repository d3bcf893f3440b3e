"""The gateway's read models, built only from events (its own database)."""

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

from shared import columns
from shared.outbox import envelope_columns
from shared.platform_tables import service_metadata

metadata, (outbox, inbox, audit_log, quarantined_events, idempotency_keys, rate_limits) = service_metadata()

#: Each result's latest state (highest version seen), one row per result.
rm_results = Table(
    "rm_results",
    metadata,
    *columns.aggregate("result_id"),
    columns.uscc(index=True),
    columns.enterprise_name(),
    columns.agency_code(),
    Column("report_no", String(64), nullable=False),
    *columns.sampled_product(),
    columns.district_code(),
    Column("sampling_date", Date, nullable=False),
    Column("report_date", Date, nullable=False),
    Column("conclusion", String(4), nullable=False),
    Column("state", String(12), nullable=False),
    Column("reinspection", String(12)),
    columns.updated_at(),
    Index("ix_rm_results_sector_date", "sector", "sampling_date"),
    # The early-warning rate rules count a group's results over a range of sampling days.
    Index("ix_rm_results_category_district_date", "product_category", "district_code", "sampling_date"),
    Index("ix_rm_results_district_date", "district_code", "sampling_date"),
)

#: Running counts per (sector, level, district, year, key product, final), moved by each applied
#: event: pass rates read a few hundred rows, never scan the results.
rm_pass_counts = Table(
    "rm_pass_counts",
    metadata,
    columns.sector(primary_key=True),
    columns.level(primary_key=True),
    columns.district_code(primary_key=True),
    Column("year", Integer, primary_key=True),
    columns.key_product(primary_key=True),
    Column("final", Boolean, primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("passed", BigInteger, nullable=False),
)


def _period_counts() -> list[Column[Any]]:
    """The key and counts after the period column of the daily and monthly counters."""
    return [
        columns.sector(primary_key=True),
        columns.level(primary_key=True),
        columns.district_code(primary_key=True),
        columns.key_product(primary_key=True),
        Column("n", BigInteger, nullable=False),
        Column("passed", BigInteger, nullable=False),
    ]


#: The same counts by sampling day: a year to date on any `as_of` reads at most 16 of them (rm_pass_monthly).
rm_pass_daily = Table("rm_pass_daily", metadata, Column("day", Date, primary_key=True), *_period_counts())

#: The same counts by month (`month`: its first day). A year to date on any `as_of` reads the
#: months before as_of's month and that month's days up to as_of (or the month less its days after
#: as_of), not a whole year of days: a few thousand rows at most instead of tens of thousands.
#: Clustered by its key on SQLite (no rowid), so a range of months is one contiguous read.
rm_pass_monthly = Table(
    "rm_pass_monthly",
    metadata,
    Column("month", Date, primary_key=True),
    *_period_counts(),
    sqlite_with_rowid=False,
)

#: Each honour's latest state (highest version seen) with the dates the counting rules need.
rm_honours = Table(
    "rm_honours",
    metadata,
    *columns.aggregate("honour_id"),
    Column("type_code", String(16), nullable=False),
    Column("type_name_zh", String(100), nullable=False),
    *columns.honour_holder(),
    Column("granted_on", Date, nullable=False),
    Column("valid_until", Date),
    Column("revoked_on", Date),
    Column("state", String(12), nullable=False),
    Column("certificate_no", String(100), nullable=False),
    Column("granting_authority", String(200), nullable=False),
    Column("indicator_codes", Text, nullable=False),
    columns.updated_at(),
    Index("ix_rm_honours_holder", "holder_id"),
    # Covering what the attainment's honour counts read of each honour (district, validity, revocation,
    # id for its suspensions): the count reads the index alone, not each row (38 ms, was 62 ms, at
    # 20,000 honours).
    Index(
        "ix_rm_honours_type_granted",
        "type_code",
        "granted_on",
        "district_code",
        "valid_until",
        "revoked_on",
        "honour_id",
    ),
)

#: Suspensions learned from suspended/reinstated events: [suspended_on, reinstated_on).
rm_honour_suspensions = Table(
    "rm_honour_suspensions",
    metadata,
    columns.uuid7("honour_id", primary_key=True),
    columns.uuid7("entry_id", primary_key=True),
    Column("suspended_on", Date, nullable=False),
    Column("reinstated_on", Date),
)

#: Each blacklist entry's latest state (highest version seen).
rm_blacklist = Table(
    "rm_blacklist",
    metadata,
    *columns.aggregate("entry_id"),
    *columns.enterprise(),
    Column("reason_category", String(64), nullable=False),
    Column("status", String(12), nullable=False),
    Column("listed_on", Date),
    Column("publish_until", Date),
    Column("removed_on", Date),
    Column("removal_reason", String(16)),
    Column("decision_no", String(100)),
    Column("deciding_authority", String(200), nullable=False),
    columns.updated_at(),
    Index("ix_rm_blacklist_uscc", "uscc"),
)

#: Rating changes per enterprise by their as_of day: the rating on a date is the last one before it.
rm_ratings = Table(
    "rm_ratings",
    metadata,
    columns.uscc(primary_key=True),
    Column("as_of", Date, primary_key=True),
    Column("rating", String(1), nullable=False),
    Column("previous", String(1)),
    Column("score", Float, nullable=False),
    Column("rule_set_version", String(40), nullable=False),
)

#: Enterprises as the events name them (the latest name wins; a district once learned is kept).
rm_enterprises = Table(
    "rm_enterprises",
    metadata,
    *columns.enterprise_register(),
    Index("ix_rm_enterprises_name", "name"),
)

#: Every applied event, in the order applied (the change feed, and the log a rebuild replays).
rm_changes = Table(
    "rm_changes",
    metadata,
    *envelope_columns("seq"),
    columns.timestamp("applied_at"),
    Index("ix_rm_changes_subject", "subject", "seq"),
)

#: How many events the change feed holds, kept with each batch: `count(*)` over the whole feed on
#: every read would cost tens of milliseconds per 100,000 events, and the highest `seq` over-counts
#: (a rolled-back batch uses sequence numbers it never keeps). One row, `feed = "changes"`.
rm_feed_counts = Table(
    "rm_feed_counts",
    metadata,
    Column("feed", String(20), primary_key=True),
    Column("applied", BigInteger, nullable=False),
)

#: Values of reported indicators sent by other government systems: every report kept; the latest
#: per (plan, indicator, period) counts. The gateway's own data, not a read model: never rebuilt.
indicator_reports = Table(
    "indicator_reports",
    metadata,
    columns.uuid7("report_id", primary_key=True),
    columns.configured_id("plan_id"),
    columns.configured_id("indicator_code"),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("value", Float, nullable=False),
    # null: the whole city's figure; a division code: that district's own (district assessment).
    columns.district_code(nullable=True),
    Column("reporting_system", String(200), nullable=False),
    Column("evidence_ref", String(500), nullable=False),
    Column("note", Text),
    Column("reported_by", String(100), nullable=False),
    columns.timestamp("reported_at"),
    columns.request_id(),
    Index("ix_indicator_reports_code", "plan_id", "indicator_code", "period_end"),
)

# ------------------------------------------------------------------------------------------ early warning
# The gateway's own data (not read models: a rebuild keeps them; docs/warnings.md).

#: Every warning raised, once per condition (`dedup_key`); its evidence as JSON.
ew_warnings = Table(
    "ew_warnings",
    metadata,
    Column("warning_id", String(36), primary_key=True),
    # The condition (rule, group, period…): at most one warning per condition is not closed; after a
    # close the same condition may raise again, as the next `occurrence` (docs/warnings.md).
    Column("dedup_key", String(400), nullable=False),
    Column("occurrence", Integer, nullable=False, server_default="1"),
    columns.version(),
    columns.configured_id("rule_id"),
    Column("rule_set_version", String(40), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("state", String(12), nullable=False),
    Column("summary", Text, nullable=False),
    Column("product_category", String(64)),
    Column("district_code", String(6)),
    Column("uscc", String(18)),
    Column("window_start", Date, nullable=False),
    Column("window_end", Date, nullable=False),
    Column("evidence", Text, nullable=False),
    columns.timestamp("raised_at"),
    # The workflow: raised (open) -> acknowledged -> closed, each step with who, when (the service
    # clock) and a note.
    columns.subject("acknowledged_by", nullable=True),
    columns.timestamp("acknowledged_at", nullable=True),
    Column("acknowledged_note", Text),
    columns.subject("closed_by", nullable=True),
    columns.timestamp("closed_at", nullable=True),
    Column("closed_note", Text),
    Index("ix_ew_warnings_raised", "raised_at", "warning_id"),
    Index("uq_ew_warnings_occurrence", "dedup_key", "occurrence", unique=True),
    Index(
        "uq_ew_warnings_not_closed",
        "dedup_key",
        unique=True,
        sqlite_where=text("state != 'closed'"),
        postgresql_where=text("state != 'closed'"),
    ),
)

#: The last checkpoint looked at per rate rule, group and quarter (the looks the alpha is split over), and
#: the result events seen there (an upper bound of its results: no count is needed below a checkpoint).
ew_looks = Table(
    "ew_looks",
    metadata,
    columns.configured_id("rule_id"),
    Column("group_key", String(200), nullable=False),
    Column("period", String(8), nullable=False),
    Column("looked_n", Integer, nullable=False),
    Column("seen", Integer, nullable=False, server_default="0"),
    # The condition a warning is raised once for (its dedup key's parts), as in the repository's upsert.
    PrimaryKeyConstraint("rule_id", "group_key", "period"),
)

# ------------------------------------------------------------------------------------------ webhooks

#: Subscriptions of other systems: where to deliver which events, and how far the feed was fanned out.
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("subscription_id", String(36), primary_key=True),
    Column("owner", String(100), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("event_types", Text, nullable=False),
    Column("subjects", Text),
    Column("description", Text),
    Column("officer", Boolean, nullable=False),
    Column("secret", String(100), nullable=False),
    # Secret rotation: the replaced secret still signs (beside the new one) until `previous_secret_until`.
    Column("previous_secret", String(100)),
    columns.timestamp("previous_secret_until", nullable=True),
    # Filters beyond types and subjects, JSON: {"districts": [...], "honour_types": [...], "warning_kinds": [...]}.
    Column("filters", Text),
    Column("state", String(12), nullable=False),
    Column("disabled_reason", Text),
    columns.timestamp("disabled_at", nullable=True),
    columns.timestamp("failing_since", nullable=True),
    Column("cursor_seq", BigInteger, nullable=False),
    Column("lease_owner", String(36)),
    columns.timestamp("lease_until", nullable=True),
    columns.timestamp("created_at"),
    Index("ix_webhook_subscriptions_owner", "owner", "subscription_id"),
)

#: The delivery outbox: one row per (subscription, feed event), sent in `delivery_id` order.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    columns.serial("delivery_id"),
    Column("subscription_id", String(36), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("event_type", String(120), nullable=False),
    Column("state", String(12), nullable=False),
    Column("attempts", Integer, nullable=False),
    columns.timestamp("next_attempt_at"),
    columns.timestamp("last_attempt_at", nullable=True),
    Column("last_status", Integer),
    Column("last_error", String(300)),
    columns.timestamp("delivered_at", nullable=True),
    columns.timestamp("created_at"),
    Index("ix_webhook_deliveries_sub_state", "subscription_id", "state", "delivery_id"),
)

#: The tables a rebuild empties and refills from the event log.
READ_MODELS = (
    rm_results,
    rm_pass_counts,
    rm_pass_daily,
    rm_pass_monthly,
    rm_honours,
    rm_honour_suspensions,
    rm_blacklist,
    rm_ratings,
    rm_enterprises,
)
