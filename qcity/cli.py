"""`qcity`: run the suite, serve one service, migrate, mint development tokens, export documents."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from shared.auth import SCOPES, TokenService
from shared.logging import configure_logging
from shared.settings import PlatformSettings

app = typer.Typer(help="QualityCity command line", no_args_is_help=True)

SERVICES = ("sampling", "credit_blacklist", "awards", "gateway")


def _service_factory(name: str) -> str:
    if name not in SERVICES:
        raise typer.BadParameter(f"one of {', '.join(SERVICES)}")
    return f"services.{name}.main:create_app"


@app.command()
def run(
    data_dir: Annotated[Path, typer.Option(help="Folder for the SQLite files")] = Path("var/data"),
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Run the embedded suite: four services in one process, SQLite, the in-process bus."""
    from qcity.embedded import create_embedded_app

    platform = PlatformSettings()
    configure_logging(platform.log_level, platform.log_json)
    data_dir.mkdir(parents=True, exist_ok=True)
    token = TokenService.from_settings(platform).mint("developer", sorted(SCOPES), agency="QD-DEV", ttl_s=86400)
    typer.echo(f"QualityCity (embedded) on http://{host}:{port}")
    typer.echo(f"  API docs:     http://{host}:{port}/docs  (services: /services/<name>/docs)")
    typer.echo("  a dev token:  .venv/bin/qcity token --scope read --scope sampling:write --agency QD-DEV")
    typer.echo(f"  (all scopes, 24 h) Authorization: Bearer {token}")
    uvicorn.run(create_embedded_app(data_dir), host=host, port=port, log_level="warning")


@app.command()
def serve(service: str, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve one service (distributed mode): its settings come from QC_<SERVICE>_* and QC_*."""
    platform = PlatformSettings()
    configure_logging(platform.log_level, platform.log_json)
    factory = _service_factory(service)
    defaults = {"sampling": 8001, "credit_blacklist": 8002, "awards": 8003, "gateway": 8000}
    uvicorn.run(factory, factory=True, host=host, port=port or defaults[service], log_level="warning")


@app.command()
def migrate(
    service: Annotated[str, typer.Argument(help="A service, or 'all'")] = "all",
    database_url: Annotated[str | None, typer.Option(help="Override the service's database URL")] = None,
) -> None:
    """Upgrade a service's database (or every service's) to the latest Alembic revision."""
    from importlib import import_module

    from shared.migrations import upgrade

    names = SERVICES if service == "all" else (service,)
    for name in names:
        _service_factory(name)
        settings_mod = import_module(f"services.{name}.settings")
        settings_cls = next(
            v for k, v in vars(settings_mod).items() if k.endswith("Settings") and k != "ServiceSettings"
        )
        url = database_url or settings_cls().database_url
        asyncio.run(upgrade(url, Path(import_module(f"services.{name}").__file__ or "").parent))
        typer.echo(f"{name}: migrated")


@app.command()
def token(
    scope: Annotated[list[str], typer.Option(help="A scope; repeat for several")],
    subject: str = "developer",
    agency: Annotated[str | None, typer.Option(help="Bind the token to an agency code")] = None,
    ttl: int = 3600,
) -> None:
    """Mint a development token signed with QC_JWT_SECRET."""
    typer.echo(TokenService.from_settings(PlatformSettings()).mint(subject, scope, agency=agency, ttl_s=ttl))


@app.command()
def catalog(
    out: Annotated[Path | None, typer.Option(help="Write to a file instead of stdout")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json or md")] = "json",
) -> None:
    """Export the event catalog (every event type with its payload schema), generated from the code."""
    from qcity.catalog import catalog_json, catalog_markdown

    text = catalog_markdown() if fmt == "md" else catalog_json()
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)


@app.command()
def rebuild(
    source: Annotated[str, typer.Option(help="'feed' (the gateway's change feed, embedded) or 'kafka' (from offset 0)")]
    = "feed",
    database_url: Annotated[str | None, typer.Option(help="Override the gateway's database URL")] = None,
) -> None:
    """Rebuild the gateway's read models from the event log (one transaction: readers see old or new)."""
    from services.gateway.rebuild import rebuild_from_feed, rebuild_from_kafka
    from services.gateway.settings import GatewaySettings
    from shared.db import Database
    from shared.migrations import upgrade

    settings = GatewaySettings()
    url = database_url or settings.database_url
    package_dir = Path(__file__).resolve().parent.parent / "services" / "gateway"

    async def go() -> int:
        await upgrade(url, package_dir)
        db = Database(url)
        try:
            if source == "kafka":
                p = settings.platform
                topics = [p.topic(s) for s in ("sampling", "credit", "awards")]
                return await rebuild_from_kafka(db, p.kafka_bootstrap, topics)
            if source != "feed":
                raise typer.BadParameter("--source is 'feed' or 'kafka'")
            return await rebuild_from_feed(db)
        finally:
            await db.dispose()

    typer.echo(f"gateway: read models rebuilt from {source}: {asyncio.run(go())} events replayed")


if __name__ == "__main__":
    app()
