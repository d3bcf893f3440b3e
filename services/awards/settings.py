from pydantic_settings import SettingsConfigDict

from shared.settings import ExpiryJobSettings, PublicRateLimitSettings, ServiceSettings


class AwardsSettings(ExpiryJobSettings, PublicRateLimitSettings, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QC_AWARDS_", extra="ignore")

    service_name: str = "awards"
    database_url: str = "sqlite+aiosqlite:///var/data/awards.db"
    port: int = 8003
    import_max_rows: int = 20_000
    import_max_bytes: int = 20_000_000
