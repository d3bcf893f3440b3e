from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class AwardsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QC_AWARDS_", extra="ignore")

    service_name: str = "awards"
    database_url: str = "sqlite+aiosqlite:///var/data/awards.db"
    port: int = 8003
