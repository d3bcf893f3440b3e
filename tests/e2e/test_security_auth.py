"""Security (issue 13, findings 1, 2 and 9): production mode, identity-provider tokens, per-client rate
limits behind the gateway and trusted proxies, and the smaller leaks (metrics, request ids, 401
details, long URLs). docs/security.md is the threat model these tests hold the suite to."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from typer.testing import CliRunner

from qcity import cli
from qcity.embedded import create_embedded_app
from services.credit.main import create_app as create_credit
from services.credit.settings import CreditSettings
from services.sampling.main import create_app as create_sampling
from services.sampling.settings import SamplingSettings
from shared.auth import TokenService
from shared.settings import PlatformSettings
from tests.helpers import Served, free_port, running

ISSUER = "https://id.example.test/realms/qc"
AUDIENCE = "qualitycity"
#: Everything production mode asks for, except how tokens are verified.
PRODUCTION = {"env": "production", "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE, "trusted_proxies": []}
STRONG_SECRET = "s3cret-" + "x" * 40


# ---------------------------------------------------------------- keys of a test identity provider


class IdentityProvider:
    """An RSA and an EC key, published as a JWKS file and the RSA one also as a PEM file."""

    def __init__(self, folder: Path) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        keys = []
        for kid, alg, public in (("rsa-1", "RS256", self.rsa.public_key()), ("ec-1", "ES256", self.ec.public_key())):
            keys.append(json.loads(_to_jwk(public)) | {"kid": kid, "alg": alg, "use": "sig"})
        self.jwks_file = folder / "jwks.json"
        self.jwks_file.write_text(json.dumps({"keys": keys}), encoding="utf-8")
        self.rsa_pem = self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.pem_file = folder / "public.pem"
        self.pem_file.write_bytes(self.rsa_pem)

    def claims(self, scopes: str = "read", ttl_s: int = 600, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {"sub": "inspector-7", "scope": scopes, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl_s}
        return base | extra

    def rs256(self, **claims: Any) -> str:
        return jwt.encode(self.claims(**claims), self.rsa, algorithm="RS256", headers={"kid": "rsa-1"})

    def es256(self, **claims: Any) -> str:
        return jwt.encode(self.claims(**claims), self.ec, algorithm="ES256", headers={"kid": "ec-1"})

    def hs256_with_public_key(self) -> str:
        """The algorithm-confusion token: HS256 keyed with the published public key. PyJWT refuses to
        make one, so it is made by hand."""
        header = _b64({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"})
        payload = _b64(self.claims(scopes="admin read"))
        signature = hmac.new(self.rsa_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _to_jwk(public: Any) -> str:
    algorithm = jwt.algorithms.RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else jwt.algorithms.ECAlgorithm
    return str(algorithm.to_jwk(public))


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> IdentityProvider:
    return IdentityProvider(tmp_path_factory.mktemp("idp"))


@asynccontextmanager
async def serving(app: FastAPI, client: tuple[str, int] = ("127.0.0.1", 123)) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


def sampling_app(tmp_path: Path, platform: PlatformSettings) -> FastAPI:
    return create_sampling(
        SamplingSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/sampling.db", run_jobs=False, platform=platform)
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- 1. production mode


def _env_without_qc(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QC_")}
    return env | extra


def test_a_service_started_in_production_with_the_default_secret_refuses(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qcity.cli", "serve", "sampling", "--port", str(free_port())],
        env=_env_without_qc(QC_ENV="production"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    for name in ("QC_JWT_SECRET", "QC_JWT_ISSUER", "QC_JWT_AUDIENCE", "QC_TRUSTED_PROXIES", "QC_SAMPLING_DATABASE_URL"):
        assert name in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_production_refuses_a_short_secret_and_accepts_explicit_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (
        ("QC_ENV", "production"),
        ("QC_JWT_SECRET", "short-secret"),
        ("QC_JWT_ISSUER", ISSUER),
        ("QC_JWT_AUDIENCE", AUDIENCE),
        ("QC_TRUSTED_PROXIES", "10.0.0.0/8"),
        ("QC_SAMPLING_DATABASE_URL", "postgresql+asyncpg://qc@db/qc_sampling"),
    ):
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="shorter than 32 bytes"):
        SamplingSettings()
    monkeypatch.setenv("QC_JWT_SECRET", STRONG_SECRET)
    settings = SamplingSettings()
    assert settings.platform.trusted_proxies == ["10.0.0.0/8"]


@pytest.mark.parametrize(
    "settings, error",
    [
        ({"jwt_jwks_file": "/k.json", "jwt_algorithms": "RS256,HS256"}, "algorithm confusion"),
        ({"jwt_algorithms": "none"}, "not accepted: none"),
        ({"jwt_algorithms": "RS256"}, "need a JWKS URL"),
        ({"jwt_jwks_file": "/k.json", "jwt_public_key_file": "/k.pem"}, "only one of"),
    ],
)
def test_algorithm_confusion_is_refused_in_every_mode(settings: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        PlatformSettings(**settings)


async def test_rs256_and_es256_tokens_from_a_jwks_file_are_accepted(tmp_path: Path, idp: IdentityProvider) -> None:
    platform = PlatformSettings(**PRODUCTION, jwt_jwks_file=str(idp.jwks_file), jwt_max_ttl_s=3600, log_json=False)
    async with serving(sampling_app(tmp_path, platform)) as client:
        for token in (idp.rs256(), idp.es256()):
            r = await client.get("/v1/results", headers=bearer(token))
            assert r.status_code == 200, r.text
        confused = await client.get("/v1/results", headers=bearer(idp.hs256_with_public_key()))
        assert confused.status_code == 401
        assert confused.json()["detail"] == "The token's algorithm is not accepted"
        too_long = await client.get("/v1/results", headers=bearer(idp.rs256(ttl_s=7200)))
        assert too_long.status_code == 401
        assert too_long.json()["detail"] == "The token's lifetime exceeds the accepted maximum"
        foreign = await client.get("/v1/results", headers=bearer(idp.rs256(iss="https://evil.example")))
        assert foreign.status_code == 401 and foreign.json()["detail"] == "The token comes from another issuer"
        unknown_key = jwt.encode(idp.claims(), idp.rsa, algorithm="RS256", headers={"kid": "rotated-away"})
        r = await client.get("/v1/results", headers=bearer(unknown_key))
        assert r.status_code == 401 and r.json()["detail"] == "The token's signing key is not known"


async def test_keys_from_a_jwks_url_are_fetched_off_the_event_loop(tmp_path: Path, idp: IdentityProvider) -> None:
    """The provider's JWKS endpoint, played by a loopback HTTP server (PyJWT's PyJWKClient fetches it)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(idp.jwks_file.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{idp.jwks_file.name}"
        platform = PlatformSettings(**PRODUCTION, jwt_jwks_url=url, log_json=False)
        async with serving(sampling_app(tmp_path, platform)) as client:
            for token in (idp.rs256(), idp.es256(), idp.rs256()):
                r = await client.get("/v1/results", headers=bearer(token))
                assert r.status_code == 200, r.text
            confused = await client.get("/v1/results", headers=bearer(idp.hs256_with_public_key()))
            assert confused.status_code == 401
    finally:
        server.shutdown()
        server.server_close()


async def test_a_pem_public_key_and_a_configured_agency_claim(tmp_path: Path, idp: IdentityProvider) -> None:
    platform = PlatformSettings(
        **PRODUCTION, jwt_public_key_file=str(idp.pem_file), jwt_agency_claim="org_code", log_json=False
    )
    tokens = TokenService(platform)
    principal = tokens.verify(idp.rs256(scopes="read sampling:write", org_code="QD-CIQ"))
    assert (principal.subject, principal.agency) == ("inspector-7", "QD-CIQ")
    assert principal.scopes == {"read", "sampling:write"}
    async with serving(sampling_app(tmp_path, platform)) as client:
        assert (await client.get("/v1/results", headers=bearer(idp.rs256()))).status_code == 200
        es = await client.get("/v1/results", headers=bearer(idp.es256()))  # ES256 but the key is RSA
        assert es.status_code == 401


def _run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str]) -> str:
    for name in [k for k in os.environ if k.startswith("QC_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    served: list[Any] = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **kw: served.append((app, kw)))
    # Not under test, and it would bind the process's logs to the runner's soon-closed stdout.
    monkeypatch.setattr(cli, "configure_logging", lambda *a: None)
    result = CliRunner().invoke(cli.app, ["run", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert len(served) == 1 and served[0][1]["http"] == "h11"
    return result.output


def test_qcity_run_prints_a_token_only_in_development(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    jwt_shape = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
    assert jwt_shape.search(_run_cli(monkeypatch, tmp_path, {"QC_ENV": "development"}))
    production = _run_cli(
        monkeypatch,
        tmp_path,
        {
            "QC_ENV": "production",
            "QC_JWT_SECRET": STRONG_SECRET,
            "QC_JWT_ISSUER": ISSUER,
            "QC_JWT_AUDIENCE": AUDIENCE,
            "QC_TRUSTED_PROXIES": "",
            "QC_LOG_JSON": "false",
        },
    )
    assert not jwt_shape.search(production) and "Bearer" not in production
    assert "identity provider" in production


# ---------------------------------------------------------------- 2. per-client limits behind the gateway


@asynccontextmanager
async def embedded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **platform: Any
) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """The embedded suite with a public burst of 3; `client(address)` is a client from that address."""
    monkeypatch.setenv("QC_CREDIT_PUBLIC_BURST", "3")
    monkeypatch.setenv("QC_CREDIT_PUBLIC_RATE_PER_S", "0.01")
    app = create_embedded_app(tmp_path / "data", PlatformSettings(log_json=False, **platform))
    clients: list[httpx.AsyncClient] = []

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://suite"))
        return clients[-1]

    async with running(app):
        try:
            yield client
        finally:
            for c in clients:
                await c.aclose()


async def _statuses(client: httpx.AsyncClient, n: int, path: str = "/v1/blacklist", **kw: Any) -> list[int]:
    return [(await client.get(path, **kw)).status_code for _ in range(n)]


async def test_two_clients_through_the_gateway_have_their_own_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with embedded(tmp_path, monkeypatch) as client:
        first, second = client("203.0.113.7"), client("203.0.113.8")
        assert await _statuses(first, 4) == [200, 200, 200, 429]
        assert await _statuses(second, 3) == [200, 200, 200]  # not starved by the first
        assert await _statuses(first, 1) == [429]


async def test_forwarded_addresses_count_only_from_trusted_proxies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with embedded(tmp_path, monkeypatch, trusted_proxies=["10.0.0.0/8"]) as client:
        ingress = client("10.0.0.5")  # a trusted proxy: its X-Forwarded-For is the client
        for address in ("198.51.100.1", "198.51.100.2"):
            codes = await _statuses(ingress, 4, headers={"X-Forwarded-For": address})
            assert codes == [200, 200, 200, 429], address
        attacker = client("203.0.113.66")  # not trusted: a new header per request changes nothing
        codes = [
            (await attacker.get("/v1/blacklist", headers={"X-Forwarded-For": f"192.0.2.{i}"})).status_code
            for i in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        direct = await _statuses(
            attacker, 1, "/services/credit/v1/blacklist", headers={"X-Forwarded-For": "192.0.2.99"}
        )
        assert direct == [429]  # the service's own mount: the same client, the same limit


async def test_two_replicas_on_one_postgresql_database_share_the_limit(
    pg_database: Callable[[str], Any], platform: PlatformSettings
) -> None:
    url = await pg_database("ratelimit")

    def replica() -> FastAPI:
        settings = CreditSettings(
            database_url=url, run_jobs=False, platform=platform, public_burst=3, public_rate_per_s=0.01
        )
        return create_credit(settings)

    async with serving(replica(), ("203.0.113.20", 1)) as one:
        async with serving(replica(), ("203.0.113.20", 2)) as two:
            codes = [(await c.get("/v1/blacklist")).status_code for c in (one, two, one, two)]
            assert codes == [200, 200, 200, 429]  # one budget, whichever replica answers


# ---------------------------------------------------------------- 9. metrics, request ids, 401s, long URLs


async def test_metrics_need_an_admin_token_in_production(tmp_path: Path) -> None:
    platform = PlatformSettings(**PRODUCTION, jwt_secret=STRONG_SECRET, log_json=False)
    tokens = TokenService(platform)
    async with serving(sampling_app(tmp_path, platform)) as client:
        assert (await client.get("/metrics")).status_code == 401
        reader = bearer(tokens.mint("ops", ["read"]))
        assert (await client.get("/metrics", headers=reader)).status_code == 403
        admin = await client.get("/metrics", headers=bearer(tokens.mint("ops", ["admin"])))
        assert admin.status_code == 200 and "http_request" in admin.text
    async with serving(sampling_app(tmp_path / "dev", PlatformSettings(log_json=False))) as client:
        assert (await client.get("/metrics")).status_code == 200  # development: open, for make up


async def test_request_ids_are_echoed_only_in_a_safe_form(tmp_path: Path) -> None:
    async with serving(sampling_app(tmp_path, PlatformSettings(log_json=False))) as client:
        safe = await client.get("/healthz", headers={"X-Request-ID": "batch-2014.03_07"})
        assert safe.headers["x-request-id"] == "batch-2014.03_07"
        for unsafe in ("<script>alert(1)</script>", "a" * 129, "id with spaces", "x\tinjected"):
            r = await client.get("/healthz", headers={"X-Request-ID": unsafe})
            assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]), (unsafe, r.headers["x-request-id"])


async def test_401_details_are_fixed_texts(tmp_path: Path, idp: IdentityProvider) -> None:
    async with serving(sampling_app(tmp_path, PlatformSettings(log_json=False))) as client:
        details = {}
        for token in ("abc", "a.b.c", idp.rs256()):
            r = await client.get("/v1/results", headers=bearer(token))
            assert r.status_code == 401
            details[token[:5]] = r.json()["detail"]
    assert details == {
        "abc": "The token is not valid",
        "a.b.c": "The token is not valid",
        "eyJhb": "The token's algorithm is not accepted",  # RS256 where only HS256 is configured
    }


async def test_a_100_kb_url_answers_a_problem(tmp_path: Path) -> None:
    served = await Served(sampling_app(tmp_path, PlatformSettings(log_json=False)), **cli.UVICORN_OPTIONS).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"GET /v1/results?q=" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=30)
        writer.close()
    finally:
        await served.stop()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414"), raw[:300]
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["type"].endswith(":uri-too-long")
