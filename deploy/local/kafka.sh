#!/usr/bin/env bash
# Local single-node Apache Kafka 4.x broker (KRaft, loopback only) for dev/tests.
#
#   deploy/local/kafka.sh fetch|start|stop|status|restart|reset
#
# fetch    resolve org.apache.kafka:kafka_2.13 + runtime deps + log4j2 backend from
#          Maven Central into ${QC_CACHE:-$ROOT/.cache}/kafka/<version>/libs
# start    fetch if needed, format KRaft storage once, start the broker in the
#          background and wait until it answers a metadata request
#          (QC_KAFKA_RESET=1 start wipes the data dir first)
# stop     SIGTERM, up to 30 s, then SIGKILL; data is kept
# status   prints running/stopped, exit 0/1
# restart  stop + start
# reset    stop + wipe the data dir (topics, offsets)
#
# Environment: QC_KAFKA_VERSION (4.1.1), QC_KAFKA_PORT (19092),
# QC_KAFKA_CONTROLLER_PORT (19093), QC_VAR ($ROOT/var), QC_CACHE ($ROOT/.cache),
# QC_KAFKA_HEAP (1g), QC_KAFKA_START_TIMEOUT (90), PYTHON ($ROOT/.venv/bin/python),
# JAVA (java), MVN (mvn).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/deploy/local"

KAFKA_VERSION=${QC_KAFKA_VERSION:-4.1.1}
KAFKA_PORT=${QC_KAFKA_PORT:-19092}
CONTROLLER_PORT=${QC_KAFKA_CONTROLLER_PORT:-19093}
VAR=${QC_VAR:-$ROOT/var}
CACHE=${QC_CACHE:-$ROOT/.cache}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
JAVA=${JAVA:-java}
MVN=${MVN:-mvn}
HEAP=${QC_KAFKA_HEAP:-1g}
START_TIMEOUT=${QC_KAFKA_START_TIMEOUT:-90}

LIBS="$CACHE/kafka/$KAFKA_VERSION/libs"
MARKER="$LIBS/.complete"
KDIR="$VAR/kafka"
DATA="$KDIR/data"
LOGDIR="$KDIR/logs"
PIDFILE="$KDIR/kafka.pid"
OUT="$KDIR/kafka.out"
CONF="$KDIR/server.properties"
CLUSTER_ID_FILE="$KDIR/cluster.id"
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"

log() { printf 'kafka: %s\n' "$*"; }
die() { printf 'kafka: ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- fetch
fetch() {
    if [[ -f "$MARKER" ]]; then
        log "libs for $KAFKA_VERSION already in $LIBS ($(find "$LIBS" -name '*.jar' | wc -l) jars)"
        return 0
    fi
    command -v "$MVN" >/dev/null || die "maven ($MVN) not found (apt-get install -y maven)"
    log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central ..."
    local tmp="$LIBS.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    local mvnlog="$tmp.log"
    if ! "$MVN" -q -B -ntp -Dstyle.color=never -f "$HERE/kafka/pom.xml" \
        -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DoutputDirectory="$tmp" -DincludeScope=runtime \
        >"$mvnlog" 2>&1; then
        tail -n 40 "$mvnlog" >&2
        rm -rf "$tmp" "$mvnlog"
        die "maven could not resolve kafka $KAFKA_VERSION"
    fi
    rm -f "$mvnlog"
    # Exactly one slf4j binding (log4j-slf4j2-impl) and one log4j2: drop any
    # log4j 1.x / reload4j / other slf4j backends that would clash.
    find "$tmp" -maxdepth 1 \( -name 'slf4j-reload4j-*.jar' -o -name 'reload4j-*.jar' \
        -o -name 'slf4j-log4j12-*.jar' -o -name 'log4j-1.*.jar' -o -name 'log4j-slf4j-impl-*.jar' \
        -o -name 'slf4j-simple-*.jar' -o -name 'slf4j-nop-*.jar' -o -name 'logback-classic-*.jar' \) \
        -print -delete
    [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after resolve"; }
    ls "$tmp"/slf4j-api-2.*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "slf4j-api 2.x missing (log4j-slf4j2-impl needs it)"; }
    echo "$KAFKA_VERSION" >"$tmp/.complete"
    rm -rf "$LIBS"
    mkdir -p "$(dirname "$LIBS")"
    mv "$tmp" "$LIBS"
    log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars into $LIBS"
}

# ---------------------------------------------------------------- helpers
pid_alive() {
    # prints the pid of our broker if the pid file points at a live kafka.Kafka
    [[ -f "$PIDFILE" ]] || return 1
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null || true)
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
    echo "$pid"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ready() {
    "$PYTHON" "$HERE/kafka_ready.py" "$BOOTSTRAP" --timeout "${1:-3}"
}

render_config() {
    mkdir -p "$KDIR" "$DATA" "$LOGDIR"
    sed -e "s|@QC_KAFKA_PORT@|$KAFKA_PORT|g" \
        -e "s|@QC_KAFKA_CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
        -e "s|@QC_KAFKA_DATA_DIR@|$DATA|g" \
        "$HERE/kafka/server.properties.template" >"$CONF.tmp"
    mv "$CONF.tmp" "$CONF"
}

java_cp() {
    "$JAVA" -cp "$LIBS/*" -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
        -Dkafka.logs.dir="$LOGDIR" "$@"
}

format_storage() {
    if [[ -f "$DATA/meta.properties" ]]; then
        return 0
    fi
    local cid
    if [[ -s "$CLUSTER_ID_FILE" ]]; then
        cid=$(cat "$CLUSTER_ID_FILE")
    else
        cid=$(java_cp kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
        [[ "$cid" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid gave '$cid'"
        echo "$cid" >"$CLUSTER_ID_FILE"
    fi
    log "formatting KRaft storage in $DATA (cluster id $cid)"
    # static controller.quorum.voters: no --standalone / --initial-controllers
    java_cp kafka.tools.StorageTool format -t "$cid" -c "$CONF" -g >>"$OUT" 2>&1 \
        || { tail -n 30 "$OUT" >&2; die "storage format failed"; }
}

wipe_data() {
    log "wiping $DATA"
    rm -rf "$DATA"
}

# ---------------------------------------------------------------- commands
start() {
    local pid
    if pid=$(pid_alive); then
        log "already running (pid $pid) on $BOOTSTRAP"
        return 0
    fi
    if port_open "$KAFKA_PORT"; then
        log "port $KAFKA_PORT already answering (not started by this script?); assuming a broker is running on $BOOTSTRAP"
        return 0
    fi
    if port_open "$CONTROLLER_PORT"; then
        die "controller port $CONTROLLER_PORT is in use by another process"
    fi
    [[ -x "$PYTHON" ]] || die "python with aiokafka not found at $PYTHON (set PYTHON=...)"
    command -v "$JAVA" >/dev/null || die "java ($JAVA) not found"
    fetch
    rm -f "$PIDFILE"
    if [[ "${QC_KAFKA_RESET:-0}" == 1 ]]; then
        wipe_data
    fi
    render_config
    : >"$OUT"
    format_storage

    log "starting kafka $KAFKA_VERSION on $BOOTSTRAP (controller 127.0.0.1:$CONTROLLER_PORT)"
    local t0=$SECONDS
    nohup "$JAVA" "-Xms$HEAP" "-Xmx$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
        -Dkafka.logs.dir="$LOGDIR" \
        -cp "$LIBS/*" kafka.Kafka "$CONF" >>"$OUT" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"

    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            log "broker exited during startup; last lines of $OUT and $LOGDIR/server.log:" >&2
            tail -n 40 "$OUT" >&2 || true
            tail -n 40 "$LOGDIR/server.log" >&2 2>/dev/null || true
            exit 1
        fi
        if ready 3; then
            break
        fi
        if ((SECONDS - t0 >= START_TIMEOUT)); then
            log "not ready after ${START_TIMEOUT}s; last lines of the logs:" >&2
            tail -n 40 "$OUT" >&2 || true
            tail -n 40 "$LOGDIR/server.log" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.5
    done
    log "ready after $((SECONDS - t0))s (pid $pid); bootstrap servers: $BOOTSTRAP"
}

stop() {
    local pid
    if ! pid=$(pid_alive); then
        rm -f "$PIDFILE"
        log "not running"
        return 0
    fi
    log "stopping pid $pid ..."
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "still alive after 30s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
    fi
    rm -f "$PIDFILE"
    log "stopped"
}

status() {
    local pid
    if pid=$(pid_alive); then
        echo "kafka: running (pid $pid) on $BOOTSTRAP"
        return 0
    fi
    echo "kafka: stopped"
    return 1
}

case "${1:-}" in
    fetch) fetch ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    restart) stop; start ;;
    reset) stop; wipe_data ;;
    *)
        echo "usage: $0 {fetch|start|stop|status|restart|reset}" >&2
        exit 2
        ;;
esac
