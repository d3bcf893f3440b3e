from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QC_GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    database_url: str = "sqlite+aiosqlite:///var/data/gateway.db"
    port: int = 8000
    # Each a comma-separated list of one service's replicas: requests go round-robin, and one that
    # cannot connect goes to the next (services/gateway/upstream.py).
    sampling_url: str = "http://127.0.0.1:8001"
    credit_url: str = "http://127.0.0.1:8002"
    awards_url: str = "http://127.0.0.1:8003"
    upstream_timeout_s: float = 30.0
    # The folder of plan files (*.json); default: services/gateway/plans.
    plans_dir: str | None = None
