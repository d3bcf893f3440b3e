"""Settings shared by every service, read from the environment with pydantic-settings.

`PlatformSettings` (prefix `QC_`) holds what all services of one deployment agree on: the bus,
Kafka, the token secret. Each service subclasses `ServiceSettings` with its own prefix
(e.g. `QC_SAMPLING_`) for its database and port.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PlatformSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QC_", extra="ignore")

    bus: Literal["inprocess", "kafka"] = "inprocess"
    kafka_bootstrap: str = "127.0.0.1:19092"
    # Tests give each run its own prefix so topics never mix between runs.
    topic_prefix: str = "qualitycity."
    topic_partitions: int = 6
    jwt_secret: str = "dev-only-secret-change-me-0123456789abcdef"
    jwt_issuer: str = "qualitycity"
    jwt_audience: str = "qualitycity"
    # QC_ENV. "production" only logs a write route that answers success without committing;
    # in development that route answers 500 (shared.runtime's unit of work), so tests cannot miss it.
    env: Literal["development", "production"] = "development"
    log_level: str = "INFO"
    log_json: bool = True

    def topic(self, service: str) -> str:
        return f"{self.topic_prefix}{service}"


class ServiceSettings(BaseSettings):
    """Base for one service's settings; subclasses set `env_prefix`."""

    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "service"
    database_url: str = "sqlite+aiosqlite:///var/data/service.db"
    host: str = "127.0.0.1"
    port: int = 8000
    relay_interval_s: float = 0.2
    relay_batch_size: int = 2000
    consumer_batch_size: int = 2000
    # An event whose apply fails this many times on its own (not transiently) is quarantined.
    consumer_max_attempts: int = Field(default=3, ge=1)
    # Scheduled jobs (finalisation, expiry) run in the service; off where one replica runs them.
    run_jobs: bool = True
    platform: PlatformSettings = Field(default_factory=PlatformSettings)


class ExpiryJobSettings(BaseSettings):
    """For a service with an expiry job (credit listings, awards honours)."""

    # How often the job looks for what has reached its end date.
    expiry_every_s: float = 3600.0


class PublicRateLimitSettings(BaseSettings):
    """For a service with public lists (公示): they need no token, so each client address gets a token bucket."""

    public_rate_per_s: float = 20.0
    public_burst: int = 40
