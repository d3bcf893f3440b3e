#!/usr/bin/env bash
# `make up`: the distributed topology on this machine — Kafka, PostgreSQL (one database per
# service) and one uvicorn process per service. `make down` stops it all.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
RUN="$ROOT/var/run"
LOGS="$ROOT/var/log"
mkdir -p "$RUN" "$LOGS"

"$ROOT/deploy/local/postgres.sh" start
"$ROOT/deploy/local/kafka.sh" start

PG="postgresql+asyncpg://qc:qc@127.0.0.1:${QC_PG_PORT:-15432}"
export QC_BUS=kafka QC_KAFKA_BOOTSTRAP="127.0.0.1:${QC_KAFKA_PORT:-19092}"
export QC_SAMPLING_DATABASE_URL="$PG/qc_sampling" QC_CREDIT_DATABASE_URL="$PG/qc_credit"
export QC_AWARDS_DATABASE_URL="$PG/qc_awards" QC_GATEWAY_DATABASE_URL="$PG/qc_gateway"
export QC_GATEWAY_SAMPLING_URL=http://127.0.0.1:8001 QC_GATEWAY_CREDIT_URL=http://127.0.0.1:8002
export QC_GATEWAY_AWARDS_URL=http://127.0.0.1:8003

start_service() {  # name port
    local name=$1 port=$2 pidfile="$RUN/$1.pid"
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "$name: already running (pid $(cat "$pidfile"))"
        return
    fi
    # Appended, never truncated: the log of the run before a restart is what explains it.
    echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) make up: starting $name on :$port" >>"$LOGS/$name.log"
    nohup "$ROOT/.venv/bin/qcity" serve "$name" --port "$port" >>"$LOGS/$name.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 120); do
        if "$ROOT/.venv/bin/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
            echo "$name: ready on http://127.0.0.1:$port (log $LOGS/$name.log)"
            return
        fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "$name: exited during start-up; last log lines:" >&2
            tail -n 30 "$LOGS/$name.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "$name: not ready after 60 s" >&2
    exit 1
}

start_service sampling 8001
start_service credit 8002
start_service awards 8003
start_service gateway 8000
echo "QualityCity (distributed) on http://127.0.0.1:8000 — docs at /docs; stop with 'make down'"
echo "a dev token: .venv/bin/qcity token --scope read --scope sampling:write --agency QD-DEV"
