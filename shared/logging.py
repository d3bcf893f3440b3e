"""structlog JSON logs, with the request id bound to every line logged during a request.

Every record is one JSON line: structlog's own, and the standard library's too (uvicorn, asyncio,
libraries) through structlog's `ProcessorFormatter`, so a traceback is a field of its record
(`exception`), never raw multi-line text between JSON lines.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure_logging(
    level: str = "INFO", json: bool = True, *, stream: TextIO | None = None, cache_loggers: bool = True
) -> None:
    """Log to `stream` (standard error by default). Tests that read the lines pass their own stream
    and `cache_loggers=False`, so no module keeps a logger bound to it afterwards."""
    out = stream if stream is not None else sys.stderr
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=cache_loggers,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                timestamper,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # uvicorn's loggers go through the root handler (run it with `log_config=None`).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # aiokafka logs every reconnect attempt at ERROR while a broker is away; the relay says it once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
