from shared.settings import ExpiryJobSettings, PublicRateLimitSettings, ServiceSettings


class AwardsSettings(ExpiryJobSettings, PublicRateLimitSettings, ServiceSettings):
    service_name: str = "awards"
    port: int = 8003
    import_max_rows: int = 20_000
    import_max_bytes: int = 20_000_000
