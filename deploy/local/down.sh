#!/usr/bin/env bash
# `make down`: stop the services started by `make up` (every replica), then Kafka and PostgreSQL.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUN="$ROOT/var/run"
# Every replica: <service>.pid and, with REPLICAS=2, <service>-2.pid.
for pidfile in "$RUN"/gateway*.pid "$RUN"/awards*.pid "$RUN"/credit*.pid "$RUN"/sampling*.pid; do
    [[ -f "$pidfile" ]] || continue
    name=$(basename "$pidfile" .pid)
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$pid" 2>/dev/null || true
        echo "$name: stopped"
    fi
    rm -f "$pidfile"
done
"$ROOT/deploy/local/kafka.sh" stop
"$ROOT/deploy/local/postgres.sh" stop
