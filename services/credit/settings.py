from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class CreditSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QC_CREDIT_", extra="ignore")

    service_name: str = "credit"
    database_url: str = "sqlite+aiosqlite:///var/data/credit.db"
    port: int = 8002
    # How often the expiry job looks for listings whose publication period ended.
    expiry_every_s: float = 3600.0
    # The public list (公示) per client address: a steady rate and a burst.
    public_rate_per_minute: int = 120
    public_rate_burst: int = 30
