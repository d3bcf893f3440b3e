from shared.settings import PublicRateLimitSettings, ServiceSettings


class SamplingSettings(PublicRateLimitSettings, ServiceSettings):
    service_name: str = "sampling"
    port: int = 8001
