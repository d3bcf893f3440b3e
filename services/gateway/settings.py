from pydantic import field_validator

from shared.settings import CommaList, PublicRateLimitSettings, ServiceSettings, comma_list


class GatewaySettings(PublicRateLimitSettings, ServiceSettings):
    service_name: str = "gateway"
    port: int = 8000
    # Each a comma-separated list of one service's replicas: requests go round-robin, and one that
    # cannot connect goes to the next (services/gateway/upstream.py).
    sampling_url: str = "http://127.0.0.1:8001"
    credit_url: str = "http://127.0.0.1:8002"
    awards_url: str = "http://127.0.0.1:8003"
    upstream_timeout_s: float = 30.0
    # The folder of plan files (*.json); default: services/gateway/plans.
    plans_dir: str | None = None
    # The early-warning rule file (docs/warnings.md); default: services/gateway/warning_rules/qingdao-warnings.json.
    warning_rules_file: str | None = None
    # Webhooks (docs/webhooks.md): hosts delivered to whatever they resolve to (else private addresses are refused).
    webhook_allowed_hosts: CommaList = []
    webhook_timeout_s: float = 10.0
    # The delivery loop wakes when this gateway's feed grows and when a retry falls due; the poll is
    # only for what another replica appended (each look is one short transaction: the idle suite's
    # CPU, bench idle_embedded).
    webhook_poll_s: float = 10.0
    webhook_retry_base_s: float = 10.0
    webhook_retry_max_s: float = 3600.0
    # Failing this long without a success disables a subscription: retries go on well over 24 hours.
    webhook_disable_after_s: float = 3 * 86400.0
    webhook_lease_s: float = 60.0
    webhook_concurrency: int = 16

    _split_hosts = field_validator("webhook_allowed_hosts", mode="before")(comma_list)
