from pydantic_settings import SettingsConfigDict

from shared.settings import PublicRateLimitSettings, ServiceSettings


class SamplingSettings(PublicRateLimitSettings, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QC_SAMPLING_", extra="ignore")

    service_name: str = "sampling"
    database_url: str = "sqlite+aiosqlite:///var/data/sampling.db"
    port: int = 8001
