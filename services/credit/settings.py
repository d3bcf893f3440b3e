from pathlib import Path

from shared.settings import ExpiryJobSettings, PublicRateLimitSettings, ServiceSettings


class CreditSettings(ExpiryJobSettings, PublicRateLimitSettings, ServiceSettings):
    service_name: str = "credit"
    port: int = 8002
    # The blacklist is read by procurement systems in bulk; its public list is limited harder.
    public_rate_per_s: float = 2.0
    public_burst: int = 30
    # Next year's holiday arrangement (调休), loaded before the package ships it: services/credit/working_days.py.
    holiday_file: Path | None = None
