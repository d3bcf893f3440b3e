#!/usr/bin/env bash
# Local PostgreSQL server (Debian packages, loopback only) for dev/tests.
#
#   deploy/local/postgres.sh install|start|stop|status|createdb NAME...
#
# install   apt-get install postgresql if no server binary is present
# start     install if needed, initdb our own data dir once (not Debian's
#           cluster "main"), start on 127.0.0.1:${QC_PG_PORT:-15432}, wait for
#           pg_isready, ensure role qc/qc (SUPERUSER) and the project databases
# stop      pg_ctl stop -m fast
# status    prints running/stopped, exit 0/1
# createdb  idempotently create databases owned by qc (starts the server if needed)
#
# Environment: QC_PG_PORT (15432), QC_VAR ($ROOT/var), QC_PG_START_TIMEOUT (60).
# Data dir: $QC_VAR/postgres/data, or /var/tmp/qualitycity-pg-<hash of ROOT>/data
# when the postgres OS user cannot reach $QC_VAR (the script says so).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)

PORT=${QC_PG_PORT:-15432}
VAR=${QC_VAR:-$ROOT/var}
START_TIMEOUT=${QC_PG_START_TIMEOUT:-60}
PG_USER=postgres
DATABASES=(qc_sampling qc_credit qc_awards qc_gateway)

log() { printf 'postgres: %s\n' "$*"; }
die() { printf 'postgres: ERROR: %s\n' "$*" >&2; exit 1; }

# the postgres OS user may not be allowed into the caller's cwd
cd /

# ---------------------------------------------------------------- install
find_bindir() {
    # bin dir of the newest installed server version
    local newest
    newest=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' -executable 2>/dev/null \
        | sort -V | tail -n 1)
    [[ -n "$newest" ]] || return 1
    dirname "$newest"
}

install() {
    local bin
    if bin=$(find_bindir); then
        log "server binaries present in $bin"
        return 0
    fi
    [[ $(id -u) -eq 0 ]] || die "postgresql is not installed and installing it needs root"
    log "installing postgresql from Debian packages ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(find_bindir) || die "apt-get install postgresql left no /usr/lib/postgresql/*/bin/postgres"
    log "installed: $bin"
}

# ---------------------------------------------------------------- helpers
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

# Where the cluster lives: $VAR/postgres, unless the postgres user cannot get
# there (non-traversable parent) or the socket path would be too long.
pick_base() {
    local base="$VAR/postgres" fallback
    fallback="/var/tmp/qualitycity-pg-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
    mkdir -p "$base"
    if [[ $(id -u) -eq 0 ]]; then
        id "$PG_USER" >/dev/null 2>&1 || die "no '$PG_USER' OS user (is postgresql installed?)"
        [[ $(stat -c %U "$base") == "$PG_USER" ]] || chown "$PG_USER:" "$base"
        chmod 0755 "$base"
    fi
    local sock="$base/run/.s.PGSQL.$PORT"
    if ((${#sock} > 100)); then
        log "socket path under $base too long; using $fallback" >&2
        base=$fallback
    elif ! as_pg test -w "$base" -a -x "$base" 2>/dev/null; then
        log "OS user $PG_USER cannot reach $base (a parent dir is not traversable); using $fallback" >&2
        base=$fallback
    fi
    if [[ "$base" == "$fallback" ]]; then
        mkdir -p "$base"
        if [[ $(id -u) -eq 0 ]]; then
            chown "$PG_USER:" "$base"
            chmod 0755 "$base"
        fi
    fi
    echo "$base"
}

setup_paths() {
    BIN=$(find_bindir) || die "postgresql is not installed (run: $0 install)"
    BASE=$(pick_base)
    DATA="$BASE/data"
    SOCKDIR="$BASE/run"
    LOGFILE="$BASE/postgres.log"
}

is_running() {
    [[ -f "$DATA/PG_VERSION" ]] || return 1
    as_pg "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

psql_admin() {
    # trust auth on loopback: connect as the postgres superuser
    "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -X -q -v ON_ERROR_STOP=1 "$@"
}

init_cluster() {
    if [[ -f "$DATA/PG_VERSION" ]]; then
        return 0
    fi
    log "initdb $DATA"
    rm -rf "$DATA"
    as_pg mkdir -p "$DATA"
    chmod 0700 "$DATA"
    if ! as_pg "$BIN/initdb" -D "$DATA" --auth=trust -U postgres --encoding=UTF8 \
        --locale=C.UTF-8 >"$BASE/initdb.log" 2>&1; then
        log "initdb with C.UTF-8 failed, retrying with locale C"
        as_pg rm -rf "$DATA"
        as_pg mkdir -p "$DATA"
        as_pg "$BIN/initdb" -D "$DATA" --auth=trust -U postgres --encoding=UTF8 \
            --locale=C >"$BASE/initdb.log" 2>&1 \
            || { cat "$BASE/initdb.log" >&2; die "initdb failed"; }
    fi
    echo "include_if_exists = 'qualitycity_local.conf'" | as_pg tee -a "$DATA/postgresql.conf" >/dev/null
}

write_local_conf() {
    as_pg mkdir -p "$SOCKDIR"
    # rewritten on every start so QC_PG_PORT changes take effect
    as_pg tee "$DATA/qualitycity_local.conf" >/dev/null <<CONF
# Written by deploy/local/postgres.sh on every start. Do not edit.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKDIR'
max_connections = 200
# DEV/TEST SERVER ONLY: durability is traded for speed. A crash of the machine
# can corrupt this cluster; never use these settings for data that matters.
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
}

ensure_role_and_dbs() {
    psql_admin <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'qc') THEN
    CREATE ROLE qc LOGIN SUPERUSER PASSWORD 'qc';
  ELSE
    ALTER ROLE qc LOGIN SUPERUSER PASSWORD 'qc';
  END IF;
END
$$;
SQL
    create_dbs "$@"
}

create_dbs() {
    local db
    for db in "$@"; do
        psql_admin -v db="$db" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER qc', :'db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SQL
    done
}

wait_ready() {
    local t0=$SECONDS
    until "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; do
        if ((SECONDS - t0 >= START_TIMEOUT)); then
            log "not ready after ${START_TIMEOUT}s; last lines of $LOGFILE:" >&2
            tail -n 30 "$LOGFILE" >&2 || true
            exit 1
        fi
        sleep 0.3
    done
}

# ---------------------------------------------------------------- commands
start() {
    install
    setup_paths
    if is_running; then
        log "already running (data $DATA)"
        wait_ready
    elif "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
        log "port $PORT already answering (not our data dir $DATA?); using it as is"
    else
        init_cluster
        write_local_conf
        log "starting on 127.0.0.1:$PORT (data $DATA, log $LOGFILE)"
        as_pg touch "$LOGFILE"
        as_pg "$BIN/pg_ctl" start -D "$DATA" -l "$LOGFILE" -w -t "$START_TIMEOUT" >/dev/null \
            || { tail -n 30 "$LOGFILE" >&2; die "pg_ctl start failed"; }
        wait_ready
    fi
    ensure_role_and_dbs "${DATABASES[@]}"
    log "ready: postgresql://qc:qc@127.0.0.1:$PORT/qc_sampling"
}

stop() {
    setup_paths
    if ! is_running; then
        log "not running"
        return 0
    fi
    as_pg "$BIN/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null
    log "stopped"
}

status() {
    setup_paths
    if is_running; then
        echo "postgres: running on 127.0.0.1:$PORT (data $DATA)"
        return 0
    fi
    echo "postgres: stopped"
    return 1
}

createdb() {
    (($# > 0)) || die "usage: $0 createdb NAME..."
    setup_paths
    if ! is_running; then
        start
    fi
    create_dbs "$@"
    log "databases present: $*"
}

cmd=${1:-}
shift || true
case "$cmd" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    createdb) createdb "$@" ;;
    *)
        echo "usage: $0 {install|start|stop|status|createdb NAME...}" >&2
        exit 2
        ;;
esac
