from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class AwardsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QC_AWARDS_", extra="ignore")

    service_name: str = "awards"
    database_url: str = "sqlite+aiosqlite:///var/data/awards.db"
    port: int = 8003
    import_max_rows: int = 20_000
    import_max_bytes: int = 20_000_000
    expiry_every_s: float = 3600.0
    # The public lists (公示) need no token, so each client address gets a token bucket.
    public_rate_per_s: float = 20.0
    public_burst: int = 40
