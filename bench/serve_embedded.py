"""Serve the embedded suite for the benchmark: `python -m bench.serve_embedded --data-dir D --port P`.

uvicorn with uvloop and httptools, log level warning. `--profile` wraps the server:
  cprofile     cProfile of the event-loop thread, dumped to --profile-out (.pstats) on SIGINT
  pyinstrument pyinstrument (if importable) of the event-loop thread, text + html to --profile-out.*
  stages       wall-clock totals per stage of the bulk path (see STAGES), JSON to --profile-out
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import time
from collections import defaultdict
from importlib import import_module
from pathlib import Path
from typing import Any

import uvicorn

from qcity.embedded import create_embedded_app
from shared.logging import configure_logging
from shared.settings import PlatformSettings

# (module, attribute path) of what the stage timers wrap: the bulk write path and the event path.
STAGES = [
    ("services.gateway.upstream", "Upstreams.forward"),  # gateway -> sampling over the ASGI transport
    ("services.sampling.router", "parse_batch"),  # orjson + pydantic validation (USCC check inside)
    ("services.sampling.service", "record_batch"),
    ("services.sampling.repository", "find_by_reports"),
    ("services.sampling.repository", "insert_results"),
    ("services.sampling.repository", "log_ingest"),
    ("services.sampling.service", "_event"),  # building the ResultRecorded envelope per row
    ("services.sampling.service", "add_to_outbox"),
    ("shared.outbox", "outbox_rows"),
    ("shared.db", "UnitOfWork.commit"),
    ("fastapi.routing", "serialize_response"),  # BatchOut validation + jsonable_encoder
    ("starlette.responses", "JSONResponse.render"),
    ("shared.outbox", "OutboxRelay._publish_one_batch"),
    ("shared.outbox", "OutboxRelay._read_batch"),
    ("shared.outbox", "OutboxRelay._mark_published"),
    ("shared.bus", "InProcessBus.publish"),
    ("shared.bus", "_with_data"),
    ("shared.consumer", "IdempotentConsumer.handle_batch"),
    ("services.gateway.consumers", "apply_batch"),
    ("services.gateway.consumers", "apply_results"),
    ("services.gateway.consumers", "feed_rows"),
    ("services.gateway.repository", "current_results"),
    ("services.gateway.repository", "add_pass_counts"),
    ("services.gateway.repository", "add_pass_daily"),
    ("services.gateway.repository", "upsert_results"),
    ("services.gateway.repository", "upsert_enterprises"),
    ("services.gateway.repository", "append_changes"),
]

_totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])


def _timed(key: str, fn: Any) -> Any:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def awrapper(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return await fn(*a, **kw)
            finally:
                slot = _totals[key]
                slot[0] += 1
                slot[1] += time.perf_counter() - t

        return awrapper

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            slot = _totals[key]
            slot[0] += 1
            slot[1] += time.perf_counter() - t

    return wrapper


def install_stage_timers() -> None:
    for mod_name, attr in STAGES:
        mod = import_module(mod_name)
        owner: Any = mod
        parts = attr.split(".")
        for p in parts[:-1]:
            owner = getattr(owner, p)
        fn = getattr(owner, parts[-1], None)
        if fn is None:  # renamed since: say so rather than fail the whole profile
            print(f"[stages] no {mod_name}.{attr}; not timed", flush=True)
            continue
        wrapped = _timed(f"{mod_name}.{attr}", fn)
        setattr(owner, parts[-1], wrapped)
        # functions imported by name elsewhere: patch those references too
        if len(parts) == 1:
            for other in ("services.sampling.router", "services.sampling.service", "services.gateway.consumers"):
                m = import_module(other)
                if getattr(m, parts[-1], None) is fn:
                    setattr(m, parts[-1], wrapped)
    # commits, split by database (sampling request vs relay mark-published vs gateway consumer ...)
    from shared.db import UnitOfWork

    commit = UnitOfWork.commit.__wrapped__  # type: ignore[attr-defined]

    async def commit_by_db(self: Any) -> None:
        t = time.perf_counter()
        try:
            await commit(self)
        finally:
            slot = _totals[f"commit[{Path(str(self.session.bind.url.database)).stem}]"]
            slot[0] += 1
            slot[1] += time.perf_counter() - t

    UnitOfWork.commit = commit_by_db  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--profile", choices=("none", "cprofile", "pyinstrument", "stages"), default="none")
    ap.add_argument("--profile-out", type=Path)
    args = ap.parse_args()

    configure_logging("WARNING", True)
    if args.profile == "stages":
        install_stage_timers()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_embedded_app(args.data_dir, PlatformSettings(log_level="WARNING"))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)

    if args.profile == "cprofile":
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
        try:
            server.run()
        finally:
            prof.disable()
            prof.dump_stats(str(args.profile_out))
    elif args.profile == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        try:
            server.run()
        finally:
            profiler.stop()
            out: Path = args.profile_out
            out.with_suffix(".txt").write_text(profiler.output_text(unicode=True, show_all=False))
            out.with_suffix(".html").write_text(profiler.output_html())
    else:
        try:
            server.run()
        finally:
            if args.profile == "stages" and args.profile_out:
                args.profile_out.write_text(
                    json.dumps({k: {"calls": v[0], "total_s": v[1]} for k, v in sorted(_totals.items())}, indent=1)
                )


if __name__ == "__main__":
    main()
