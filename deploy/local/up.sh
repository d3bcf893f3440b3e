#!/usr/bin/env bash
# `make up`: the distributed topology on this machine — Kafka, PostgreSQL (one database per
# service) and one uvicorn process per service; `make up REPLICAS=2` runs two of each (the second
# on the port + 10: gateway 8010, sampling 8011, credit 8012, awards 8013). `make down` stops it all.
# Replicas of a service share its database and consumer group; the gateways forward to every
# replica of each service in turn. See docs/operations.md.
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
REPLICAS=${REPLICAS:-1}
if [[ "$REPLICAS" != 1 && "$REPLICAS" != 2 ]]; then
    echo "REPLICAS must be 1 or 2 (the second replica of each service is on its port + 10)" >&2
    exit 2
fi

urls() {  # port: the comma-separated URLs of a service's replicas
    if [[ "$REPLICAS" == 2 ]]; then
        echo "http://127.0.0.1:$1,http://127.0.0.1:$(($1 + 10))"
    else
        echo "http://127.0.0.1:$1"
    fi
}
export QC_GATEWAY_SAMPLING_URL=$(urls 8001) QC_GATEWAY_CREDIT_URL=$(urls 8002) QC_GATEWAY_AWARDS_URL=$(urls 8003)

start_service() {  # name port [replica number, 2 for the second]
    local name=$1 port=$2 replica=${3:-1}
    local upper=${name^^}
    if [[ "$replica" != 1 ]]; then
        name="$name-$replica"
        # One replica runs the scheduled jobs (finalisation, expiry); the other only serves and consumes.
        local -x "QC_${upper}_RUN_JOBS=false"
    fi
    local pidfile="$RUN/$name.pid"
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "$name: already running (pid $(cat "$pidfile"))"
        return
    fi
    # Appended, never truncated: the log of the run before a restart is what explains it.
    echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) make up: starting $name on :$port" >>"$LOGS/$name.log"
    nohup "$ROOT/.venv/bin/qcity" serve "${name%-*}" --port "$port" >>"$LOGS/$name.log" 2>&1 &
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

# One after the other: the first replica of a service migrates its database, the second finds it done.
for spec in "sampling 8001" "credit 8002" "awards 8003" "gateway 8000"; do
    read -r svc port <<<"$spec"
    start_service "$svc" "$port"
    if [[ "$REPLICAS" == 2 ]]; then
        start_service "$svc" $((port + 10)) 2
    fi
done
echo "QualityCity (distributed, $REPLICAS replica(s) per service) on http://127.0.0.1:8000 — docs at /docs; stop with 'make down'"
echo "a dev token: .venv/bin/qcity token --scope read --scope sampling:write --agency QD-DEV"
