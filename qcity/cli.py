"""`qcity`: run the suite, serve one service, migrate, mint development tokens, export documents."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError

from shared.auth import SCOPES, TokenService
from shared.logging import configure_logging
from shared.settings import PlatformSettings

if TYPE_CHECKING:  # the demo's modules load when the command runs, not with the CLI
    from rich.console import Console

    from qcity.demo import DemoData, LoadReport

app = typer.Typer(help="QualityCity command line", no_args_is_help=True)

SERVICES = ("sampling", "credit", "awards", "gateway")


#: How every command serves HTTP. h11 rather than httptools: httptools refuses a request line over
#: ~64 KB with its own text/plain 400, while h11 with a larger limit lets it reach the app, which
#: answers a 414 problem (shared/service_app.py). Lines beyond the limit still get the server's 400.
#: Proxy headers are the apps' business (QC_TRUSTED_PROXIES), not uvicorn's loopback default.
UVICORN_OPTIONS: dict[str, Any] = {
    "http": "h11",
    "h11_max_incomplete_event_size": 256 * 1024,
    "proxy_headers": False,
    "log_level": "warning",
    # uvicorn's own loggers go through shared.logging's JSON handler, not uvicorn's text config.
    "log_config": None,
}


def _settings_class(name: str) -> Any:
    from importlib import import_module

    settings_mod = import_module(f"services.{name}.settings")
    # The class the module defines (it also imports the shared settings it combines, e.g. PublicRateLimitSettings).
    return next(
        v
        for k, v in vars(settings_mod).items()
        if k.endswith("Settings") and getattr(v, "__module__", None) == settings_mod.__name__
    )


def _refuse(exc: ValidationError) -> typer.Exit:
    """Production mode's refusal (or any invalid setting) as one clear message, not a traceback."""
    typer.echo("\n".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()), err=True)
    return typer.Exit(2)


def _settings_or_exit(name: str) -> None:
    try:
        _settings_class(name)()
    except ValidationError as exc:
        raise _refuse(exc) from None


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
    try:
        suite = create_embedded_app(data_dir, platform)
    except ValidationError as exc:
        raise _refuse(exc) from None
    typer.echo(f"QualityCity (embedded) on http://{host}:{port}")
    typer.echo(f"  API docs:     http://{host}:{port}/docs  (services: /services/<name>/docs)")
    if platform.env == "production":
        # Production never prints a token: they come from the identity provider (docs/security.md).
        typer.echo("  production mode: bearer tokens come from the identity provider")
    else:
        token = TokenService(platform).mint("developer", sorted(SCOPES), agency="QD-DEV", ttl_s=86400)
        typer.echo("  a dev token:  .venv/bin/qcity token --scope read --scope sampling:write --agency QD-DEV")
        typer.echo(f"  (all scopes, 24 h) Authorization: Bearer {token}")
    uvicorn.run(suite, host=host, port=port, **UVICORN_OPTIONS)


@app.command()
def serve(service: str, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve one service (distributed mode): its settings come from QC_<SERVICE>_* and QC_*."""
    platform = PlatformSettings()
    configure_logging(platform.log_level, platform.log_json)
    factory = _service_factory(service)
    _settings_or_exit(service)
    defaults = {"sampling": 8001, "credit": 8002, "awards": 8003, "gateway": 8000}
    uvicorn.run(factory, factory=True, host=host, port=port or defaults[service], **UVICORN_OPTIONS)


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
        try:
            url = database_url or _settings_class(name)().database_url
        except ValidationError as exc:
            raise _refuse(exc) from None
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
    try:
        typer.echo(TokenService(PlatformSettings()).mint(subject, scope, agency=agency, ttl_s=ttl))
    except ValueError as exc:  # unknown scopes, or a deployment that holds only public keys
        raise typer.BadParameter(str(exc)) from None


@app.command()
def catalog(
    out: Annotated[Path | None, typer.Option(help="Write to a file instead of stdout")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json, md or asyncapi (AsyncAPI 3.0)")] = "json",
) -> None:
    """Export the event catalog (every event type with its payload schema), generated from the code."""
    from qcity.event_catalog import asyncapi_json, catalog_json, catalog_markdown

    text = {"md": catalog_markdown, "asyncapi": asyncapi_json}.get(fmt, catalog_json)()
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)


@app.command()
def rebuild(
    source: Annotated[
        str, typer.Option(help="'feed' (the gateway's change feed, embedded) or 'kafka' (from offset 0)")
    ] = "feed",
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


@app.command()
def demo(
    url: Annotated[str, typer.Option(help="The running suite's gateway")] = "http://127.0.0.1:8000",
    seed: Annotated[int, typer.Option(help="The generator's seed: the same seed, the same city")] = 2012,
    results_per_year: int = 1500,
    enterprises: int = 400,
    honour_scale: Annotated[float, typer.Option(help="Multiplies the honours granted per type and year")] = 1.0,
    wait: Annotated[bool, typer.Option(help="Wait until the gateway has applied every event")] = True,
) -> None:
    """Generate a realistic 2011–2015 dataset and load it through the suite's HTTP APIs (make run first)."""
    import time

    from rich.console import Console

    from qcity.demo import generate

    console = Console()
    data = generate(seed, results_per_year=results_per_year, enterprises=enterprises, honour_scale=honour_scale)
    console.print(
        f"demo: {data.result_count:,} results, {len(data.honours.grants):,} honours, {len(data.blacklist)} "
        f"blacklist cases, {len(data.reports)} indicator reports ({len(data.enterprises)} enterprises, "
        f"years {data.years[0]}–{data.years[-1]}, seed {seed}) → {url}"
    )
    started = time.monotonic()
    report, applied = asyncio.run(_demo_load(console, url, data, wait))
    console.print(
        f"loaded in {time.monotonic() - started:.1f} s"
        + (f"; the gateway has applied {applied:,} events" if applied is not None else "")
    )
    _demo_report(console, report)
    console.print(f"open {url}/dashboard")
    last = max(data.years) if data.years else None
    if last is not None:  # the archive's listings have their own dates: the list as published then
        console.print(
            f"the blacklist as published at the end of {last}: {url}/dashboard/public/blacklist?on={last}-12-31"
        )


async def _demo_load(console: Console, url: str, data: DemoData, wait: bool) -> tuple[LoadReport, int | None]:
    """Load the generated data through the gateway with a progress bar per step; then, with `wait`,
    how many events the gateway has applied once it caught up."""
    import httpx
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from qcity.demo import Loader

    tokens = TokenService(PlatformSettings())

    def mint(subject: str, scopes: list[str], agency: str | None) -> str:
        return tokens.mint(subject, scopes, agency=agency, ttl_s=3600)

    columns = (TextColumn("{task.description:<42}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total or 1)
            bar.update(tasks[step], completed=done if total else 1, total=total or 1)

        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            try:
                await client.get("/healthz")
            except httpx.HTTPError as exc:
                raise typer.BadParameter(f"no suite answers at {url} ({exc}); start it with `make run`") from None
            loader = Loader(client, mint, progress=progress)
            report = await loader.run(data)
            applied = await loader.settle() if wait else None
    return report, applied


def _demo_report(console: Console, report: LoadReport) -> None:
    """The counts per step; the problems, if any, and exit 1."""
    for name, count in sorted(report.counts.items()):
        console.print(f"  {name:<36} {count:>7,}")
    if report.problem_total:
        console.print(
            f"[red]{report.problem_total} problems[/red] "
            + ", ".join(f"{k}: {v}" for k, v in sorted(report.problems.items()))
        )
        for line in report.examples:
            console.print(f"  - {line}", markup=False)
        raise typer.Exit(1)


@app.command()
def openapi(
    out: Annotated[
        Path, typer.Option(help="A folder for <service>.json, or a .json file for the gateway's document alone")
    ] = Path("docs/openapi.json"),
) -> None:
    """Export the gateway's OpenAPI document (docs/openapi.json, which a test compares with the served one),
    or each service's and the gateway's (started embedded in a scratch folder)."""
    import tempfile

    import httpx

    from qcity.embedded import create_embedded_app

    async def fetch(folder: Path) -> dict[str, Any]:
        app = create_embedded_app(folder)
        docs: dict[str, Any] = {}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://suite") as client:
                for name, path in (
                    ("gateway", "/openapi.json"),
                    ("sampling", "/services/sampling/openapi.json"),
                    ("credit", "/services/credit/openapi.json"),
                    ("awards", "/services/awards/openapi.json"),
                ):
                    resp = await client.get(path)
                    resp.raise_for_status()
                    docs[name] = resp.json()
        return docs

    with tempfile.TemporaryDirectory(prefix="qcity-openapi-") as tmp:
        docs = asyncio.run(fetch(Path(tmp)))
    from services.gateway.openapi import document_text

    targets = {"gateway": out} if out.suffix == ".json" else {name: out / f"{name}.json" for name in docs}
    for name, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(document_text(docs[name]), encoding="utf-8")
        typer.echo(f"{target}: {len(docs[name].get('paths', {}))} paths, OpenAPI {docs[name].get('openapi')}")


if __name__ == "__main__":
    app()
