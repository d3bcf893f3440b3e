"""Columns that several tables declare alike, declared once.

A `Column` belongs to one table, so each is a function returning a new one. The types matter beyond one
database: a result's `level` or `district_code` travels in events from sampling to credit and to the
gateway's read models, whose columns must hold what sampling stored; a token's subject is stored by
every service that records who acted. The column name is the usual one; a table that names it
otherwise passes the name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Integer, String

from shared.db import UtcDateTime

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite so it autoincrements there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def serial(name: str = "id") -> Column[Any]:
    """A generated sequence number as primary key: the order rows were written."""
    return Column(name, BigId, primary_key=True, autoincrement=True)


def uuid7(name: str, *, primary_key: bool = False) -> Column[Any]:
    """A UUIDv7 identifier: sorts by creation, so a primary key of this kind is also a list's cursor."""
    return Column(name, String(36), primary_key=primary_key, nullable=False)


def version() -> Column[Any]:
    """An aggregate's version: its ETag, and the order of its events (UPDATE … WHERE version = :v)."""
    return Column("version", Integer, nullable=False)


def aggregate(name: str) -> list[Column[Any]]:
    """An aggregate's key and version, the two columns every versioned row starts with: a UUIDv7 primary
    key and the version behind its ETag."""
    return [uuid7(name, primary_key=True), version()]


def timestamp(name: str, *, nullable: bool = False) -> Column[Any]:
    """An instant, stored and read back as aware UTC."""
    return Column(name, UtcDateTime(), nullable=nullable)


def updated_at() -> Column[Any]:
    return timestamp("updated_at")


def subject(name: str, *, nullable: bool = False, primary_key: bool = False) -> Column[Any]:
    """Who acted: a token's subject."""
    return Column(name, String(128), nullable=nullable, primary_key=primary_key)


def request_id(*, nullable: bool = False) -> Column[Any]:
    """The request that wrote the row (its X-Request-ID), to find it in the logs and the audit trail."""
    return Column("request_id", String(128), nullable=nullable)


def uscc(*, primary_key: bool = False, index: bool = False) -> Column[Any]:
    """An enterprise's unified social credit code (18 characters); `index`: rows are looked up by it
    (the index is named `ix_<table>_uscc` by the metadata's naming convention)."""
    return Column("uscc", String(18), primary_key=primary_key, nullable=False, index=index)


def enterprise_name(length: int = 200) -> Column[Any]:
    return Column("enterprise_name", String(length), nullable=False)


def enterprise() -> list[Column[Any]]:
    """The enterprise a row is about: its USCC and its name as the row was written (a blacklist entry's,
    in credit and in the gateway's copy, as in credit's other rows about an enterprise)."""
    return [uscc(), enterprise_name()]


def configured_id(name: str, *, primary_key: bool = False) -> Column[Any]:
    """The id of something the configuration defines (a plan, one of its indicators, an early-warning
    rule), as its file spells it."""
    return Column(name, String(64), primary_key=primary_key, nullable=False)


def agency_code() -> Column[Any]:
    """The inspection agency that owns a result."""
    return Column("agency_code", String(32), nullable=False)


def district_code(*, nullable: bool = False, primary_key: bool = False) -> Column[Any]:
    """A county-level division code (GB/T 2260, six digits)."""
    return Column("district_code", String(6), primary_key=primary_key, nullable=nullable)


def enterprise_register() -> list[Column[Any]]:
    """An enterprise as the events name it, keyed by its USCC: the latest name, the district once learned
    (null until then), when it last changed. Credit's register and the gateway's copy alike."""
    return [
        uscc(primary_key=True),
        Column("name", String(200), nullable=False),
        district_code(nullable=True),
        updated_at(),
    ]


def honour_holder(*, name_length: int = 200) -> list[Column[Any]]:
    """Who holds an honour, as the honour events carry it from awards to the gateway's copy: the holder's
    kind, its id (USCC, division code or registry id), its name, and its district (null until known).
    Awards' own column is 300 wide (wider than the 200 its API accepts); the gateway's holds 200."""
    return [
        Column("holder_kind", String(16), nullable=False),
        Column("holder_id", String(64), nullable=False),
        Column("holder_name", String(name_length), nullable=False),
        district_code(nullable=True),
    ]


# A sampling result's dimensions, as sampling stores them and the gateway counts them.


def level(*, primary_key: bool = False) -> Column[Any]:
    return Column("level", String(12), primary_key=primary_key, nullable=False)


def sector(*, primary_key: bool = False) -> Column[Any]:
    return Column("sector", String(16), primary_key=primary_key, nullable=False)


def key_product(*, primary_key: bool = False) -> Column[Any]:
    return Column("key_product", Boolean, primary_key=primary_key, nullable=False)


def sampled_product() -> list[Column[Any]]:
    """What a result is about, the same in sampling's results and the gateway's copy of them."""
    return [
        level(),
        sector(),
        key_product(),
        Column("product_category", String(64), nullable=False),
        Column("product_name", String(200), nullable=False),
    ]
