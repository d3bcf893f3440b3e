#!/usr/bin/env python3
"""Readiness probe for the local Kafka broker (used by deploy/local/kafka.sh).

One quick attempt: connect an AIOKafkaAdminClient to the bootstrap server,
fetch cluster metadata and list topics. Exit 0 if the broker answered, 1 if
not (connection refused, timeout, broker not ready yet, ...).

usage: kafka_ready.py [BOOTSTRAP] [--timeout SECONDS] [-v]
BOOTSTRAP defaults to $QC_KAFKA_BOOTSTRAP or 127.0.0.1:${QC_KAFKA_PORT:-19092}.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys


def _default_bootstrap() -> str:
    return os.environ.get(
        "QC_KAFKA_BOOTSTRAP",
        f"127.0.0.1:{os.environ.get('QC_KAFKA_PORT', '19092')}",
    )


async def _probe(bootstrap: str, timeout: float) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    ms = max(1000, int(timeout * 1000))
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=ms,
        retry_backoff_ms=100,
        client_id="qc-kafka-ready",
    )
    try:
        await admin.start()
        await admin.describe_cluster()
        return sorted(await admin.list_topics())
    finally:
        try:
            await admin.close()
        except Exception:  # noqa: BLE001 - best effort on a half-open client
            pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bootstrap", nargs="?", default=_default_bootstrap())
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds for the whole attempt (default 5)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    # aiokafka logs every refused connection at ERROR: keep the poll quiet
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.CRITICAL + 1)

    try:
        topics = asyncio.run(asyncio.wait_for(_probe(args.bootstrap, args.timeout), timeout=args.timeout + 1))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        if args.verbose:
            print(f"kafka at {args.bootstrap} not ready: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.verbose:
        print(f"kafka at {args.bootstrap} ready; topics: {', '.join(topics) or '(none)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
