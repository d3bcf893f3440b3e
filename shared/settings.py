"""Settings shared by every service, read from the environment with pydantic-settings.

`PlatformSettings` (prefix `QC_`) holds what all services of one deployment agree on: the bus,
Kafka, how tokens are verified, the trusted proxies. Each service subclasses `ServiceSettings` with
its `service_name`, which gives its prefix (`sampling`: `QC_SAMPLING_`) and its default database.

Production mode (`QC_ENV=production`, docs/security.md) refuses to build a service's settings while
anything security-relevant is left at its development default; the error lists every such setting.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: The development signing secret. It is public (it is in this file): production refuses it.
DEV_JWT_SECRET = "dev-only-secret-change-me-0123456789abcdef"
#: HS256 needs a key at least as long as its hash (RFC 7518 §3.2).
MIN_SECRET_BYTES = 32
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
SYMMETRIC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})

CommaList = Annotated[list[str], NoDecode]


def comma_list(value: object) -> object:
    """`QC_JWT_ALGORITHMS=RS256,ES256` and `QC_TRUSTED_PROXIES=10.0.0.0/8, 127.0.0.1`: plain lists."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class PlatformSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QC_", extra="ignore")

    bus: Literal["inprocess", "kafka"] = "inprocess"
    kafka_bootstrap: str = "127.0.0.1:19092"
    # Tests give each run its own prefix so topics never mix between runs.
    topic_prefix: str = "qualitycity."
    topic_partitions: int = 6
    # HS256 with a shared secret: development, tests and single-issuer setups.
    jwt_secret: str = DEV_JWT_SECRET
    jwt_issuer: str = "qualitycity"
    jwt_audience: str = "qualitycity"
    # An identity provider's public keys (one of the three): its JWKS endpoint (cached), a JWKS file,
    # or one PEM public key. With any of them only asymmetric algorithms are accepted.
    jwt_jwks_url: str | None = None
    jwt_jwks_file: str | None = None
    jwt_public_key_file: str | None = None
    jwt_jwks_cache_s: int = 300
    # Accepted `alg` values; empty: HS256 with a secret, RS256 and ES256 with public keys.
    jwt_algorithms: CommaList = []
    # The claim carrying an inspection agency's code (identity providers name it as they like).
    jwt_agency_claim: str = "agency"
    # A token whose `exp - iat` exceeds this is refused, however it was signed.
    jwt_max_ttl_s: int = 86400
    # Peers (addresses or CIDRs) whose X-Forwarded-For is believed: the gateway, the ingress.
    # Anyone else's header is ignored and the peer address is the client (shared/ratelimit.py).
    trusted_proxies: CommaList = ["127.0.0.1", "::1"]
    # Request body caps (413 before the rest is read): every route, and the bulk routes
    # (/v1/results:batch, /v1/honours:import), whose rows are parsed from one body.
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    max_bulk_body_bytes: int = Field(default=33_554_432, ge=1)
    # QC_ENV. "production" only logs a write route that answers success without committing;
    # in development that route answers 500 (shared.runtime's unit of work), so tests cannot miss it.
    env: Literal["development", "production"] = "development"
    log_level: str = "INFO"
    log_json: bool = True

    _split_lists = field_validator("jwt_algorithms", "trusted_proxies", mode="before")(comma_list)

    @property
    def jwt_key_sources(self) -> list[str]:
        names = ("jwt_jwks_url", "jwt_jwks_file", "jwt_public_key_file")
        return [n for n in names if getattr(self, n)]

    @property
    def accepted_algorithms(self) -> list[str]:
        if self.jwt_algorithms:
            return list(self.jwt_algorithms)
        return ["RS256", "ES256"] if self.jwt_key_sources else ["HS256"]

    @model_validator(mode="after")
    def _coherent_token_settings(self) -> Self:
        """Algorithm confusion is refused in every mode: no `none`, no HMAC next to public keys."""
        errors: list[str] = []
        algorithms = set(self.accepted_algorithms)
        unknown = algorithms - ASYMMETRIC_ALGORITHMS - SYMMETRIC_ALGORITHMS
        if unknown:
            errors.append(f"QC_JWT_ALGORITHMS: not accepted: {', '.join(sorted(unknown))}")
        if len(self.jwt_key_sources) > 1:
            errors.append("set only one of QC_JWT_JWKS_URL, QC_JWT_JWKS_FILE, QC_JWT_PUBLIC_KEY_FILE")
        if self.jwt_key_sources and algorithms & SYMMETRIC_ALGORITHMS:
            errors.append("QC_JWT_ALGORITHMS: HS* cannot be accepted next to public keys (algorithm confusion)")
        if not self.jwt_key_sources and algorithms & ASYMMETRIC_ALGORITHMS:
            errors.append("QC_JWT_ALGORITHMS: RS*/ES*/PS* need a JWKS URL, a JWKS file or a public key file")
        if self.jwt_max_ttl_s <= 0:
            errors.append("QC_JWT_MAX_TTL_S must be positive")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def production_problems(self) -> list[str]:
        """What production mode refuses here, one line per setting (empty in development)."""
        if self.env != "production":
            return []
        problems: list[str] = []
        if not self.jwt_key_sources:
            if self.jwt_secret == DEV_JWT_SECRET:
                problems.append("QC_JWT_SECRET is the published development secret (or set QC_JWT_JWKS_URL)")
            elif len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
                problems.append(f"QC_JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes")
        for name in ("jwt_issuer", "jwt_audience", "trusted_proxies"):
            if name not in self.model_fields_set:
                problems.append(f"QC_{name.upper()} must be set explicitly")
        return problems

    def topic(self, service: str) -> str:
        return f"{self.topic_prefix}{service}"


def default_database_url(service_name: str) -> str:
    """The development default: the service's own SQLite file under var/data (production refuses it)."""
    return f"sqlite+aiosqlite:///var/data/{service_name}.db"


class ServiceSettings(BaseSettings):
    """Base for one service's settings. A subclass sets its `service_name` (and `port`): its settings
    are read from `QC_<SERVICE_NAME>_*` (e.g. `QC_AWARDS_PORT`) and its database defaults to
    `default_database_url(service_name)`."""

    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "service"
    database_url: str = Field(default_factory=lambda fields: default_database_url(fields["service_name"]))
    host: str = "127.0.0.1"
    port: int = 8000
    # Every commit of the service's own process wakes its outbox relay; the relay also polls, for
    # rows another process wrote: on PostgreSQL a replica whose relay lost the publishing lock
    # leaves them to the one holding it, so the poll stays short there. A SQLite file has one
    # writing process (the embedded suite), so its relay polls rarely and an idle suite sleeps.
    relay_interval_s: float = 0.2
    relay_sqlite_interval_s: float = 30.0
    relay_batch_size: int = 2000
    consumer_batch_size: int = 2000
    # SQLite only: each pooled connection's page cache, and the memory map its reads go through. Both
    # are the process's memory, per connection and per file: 64 MB caches and 256 MB maps took the
    # embedded suite to 871 MB RSS ingesting 200,000 results, 8 MB and none to 365 MB for the same CPU
    # time within the noise (bench ingest_embedded). The operating system's file cache keeps the
    # rest of the file close anyway.
    sqlite_cache_mb: int = Field(default=16, ge=1, le=4096)
    sqlite_mmap_mb: int = Field(default=0, ge=0, le=65536)
    # An event whose apply fails this many times on its own (not transiently) is quarantined.
    consumer_max_attempts: int = Field(default=3, ge=1)
    # Scheduled jobs (finalisation, expiry) run in the service; off where one replica runs them.
    run_jobs: bool = True
    platform: PlatformSettings = Field(default_factory=PlatformSettings)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # pydantic-settings reads the prefix when the settings are built: setting it on the finished class is enough.
        if not cls.model_config.get("env_prefix"):
            cls.model_config["env_prefix"] = f"QC_{cls.model_fields['service_name'].default.upper()}_"

    @model_validator(mode="after")
    def _production_ready(self) -> Self:
        problems = self.platform.production_problems()
        if self.platform.env == "production" and "database_url" not in self.model_fields_set:
            prefix = str(self.model_config.get("env_prefix", "QC_<SERVICE>_"))
            problems.append(f"{prefix}DATABASE_URL must be set explicitly (not the SQLite default)")
        if problems:
            # pydantic reports it as a ValidationError whose message lists every problem.
            raise ValueError(
                "QC_ENV=production refuses to start the "
                + self.service_name
                + " service:\n  - "
                + "\n  - ".join(problems)
            )
        return self


class ExpiryJobSettings(BaseSettings):
    """For a service with an expiry job (credit listings, awards honours)."""

    # How often the job looks for what has reached its end date.
    expiry_every_s: float = 3600.0


class PublicRateLimitSettings(BaseSettings):
    """For a service with public lists (公示): they need no token, so each client address gets a token bucket."""

    public_rate_per_s: float = 20.0
    public_burst: int = 40
