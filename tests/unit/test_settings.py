"""Each service's settings: its own `QC_<SERVICE>_` prefix and its own SQLite default, from one rule
(shared/settings.py), and production mode refusing that default."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from services.awards.settings import AwardsSettings
from services.credit.settings import CreditSettings
from services.gateway.settings import GatewaySettings
from services.sampling.settings import SamplingSettings
from shared.settings import ServiceSettings

SERVICES: list[tuple[type[ServiceSettings], str, int]] = [
    (SamplingSettings, "sampling", 8001),
    (CreditSettings, "credit", 8002),
    (AwardsSettings, "awards", 8003),
    (GatewaySettings, "gateway", 8000),
]


@pytest.fixture(autouse=True)
def _no_qc_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("QC_")]:
        monkeypatch.delenv(name)


@pytest.mark.parametrize(("cls", "name", "port"), SERVICES)
def test_a_service_reads_its_own_prefix_and_defaults_to_its_own_sqlite_file(
    cls: type[ServiceSettings], name: str, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = cls()
    assert (default.service_name, default.port) == (name, port)
    assert default.database_url == f"sqlite+aiosqlite:///var/data/{name}.db"
    assert default.model_fields_set == set()  # a default, which production refuses
    monkeypatch.setenv(f"QC_{name.upper()}_DATABASE_URL", f"postgresql+asyncpg://qc@db/qc_{name}")
    monkeypatch.setenv(f"QC_{name.upper()}_PORT", "9000")
    for other in (n for _, n, _ in SERVICES if n != name):
        monkeypatch.setenv(f"QC_{other.upper()}_PORT", "1")  # another service's setting is not read
    configured = cls()
    assert configured.database_url == f"postgresql+asyncpg://qc@db/qc_{name}"
    assert configured.port == 9000


@pytest.mark.parametrize(("cls", "name", "port"), SERVICES)
def test_production_refuses_a_service_left_on_its_sqlite_default(
    cls: type[ServiceSettings], name: str, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {
        "QC_ENV": "production",
        "QC_JWT_SECRET": "s" * 40,
        "QC_JWT_ISSUER": "https://id.example",
        "QC_JWT_AUDIENCE": "qualitycity",
        "QC_TRUSTED_PROXIES": "10.0.0.0/8",
    }.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=f"QC_{name.upper()}_DATABASE_URL must be set explicitly"):
        cls()
    monkeypatch.setenv(f"QC_{name.upper()}_DATABASE_URL", f"postgresql+asyncpg://qc@db/qc_{name}")
    assert cls().platform.env == "production"
