from pydantic_settings import SettingsConfigDict

from shared.settings import ExpiryJobSettings, PublicRateLimitSettings, ServiceSettings


class CreditSettings(ExpiryJobSettings, PublicRateLimitSettings, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QC_CREDIT_", extra="ignore")

    service_name: str = "credit"
    database_url: str = "sqlite+aiosqlite:///var/data/credit.db"
    port: int = 8002
