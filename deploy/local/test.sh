#!/usr/bin/env bash
# `make test`: start PostgreSQL and Kafka if they are not running, run the whole suite, and
# stop what this script started (and only that). Safe to run twice.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PY="$ROOT/.venv/bin/python"

# The dashboard's browser tests drive Debian's Chromium (never a downloaded build); a CJK font makes
# their screenshots readable and the assessment PDF's Chinese; WeasyPrint (the PDF) needs pango.
# Installed once, when missing.
APT_PACKAGES="chromium chromium-driver fonts-wqy-zenhei libpango-1.0-0 libpangoft2-1.0-0"
# shellcheck disable=SC2086
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ] || ! dpkg -s $APT_PACKAGES >/dev/null 2>&1; then
    echo "installing $APT_PACKAGES (apt)"
    apt-get update -qq >/dev/null || { echo "apt-get update failed: cannot install Chromium" >&2; exit 1; }
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $APT_PACKAGES >/dev/null \
        || { echo "apt-get install $APT_PACKAGES failed" >&2; exit 1; }
fi

started=()
cleanup() {
    local rc=$?
    for svc in "${started[@]}"; do
        "$ROOT/deploy/local/$svc.sh" stop || true
    done
    exit "$rc"
}
trap cleanup EXIT

if ! "$ROOT/deploy/local/postgres.sh" status >/dev/null 2>&1; then
    "$ROOT/deploy/local/postgres.sh" start
    started+=(postgres)
fi
if ! "$ROOT/deploy/local/kafka.sh" status >/dev/null 2>&1; then
    "$ROOT/deploy/local/kafka.sh" start
    started+=(kafka)
fi

export QC_TEST_PG_URL="postgresql+asyncpg://qc:qc@127.0.0.1:${QC_PG_PORT:-15432}"
export QC_TEST_KAFKA="127.0.0.1:${QC_KAFKA_PORT:-19092}"
export QC_TEST_KAFKA_CTL="$ROOT/deploy/local/kafka.sh"

start=$(date +%s)
set +e
"$PY" -m pytest "$@"
rc=$?
set -e
echo "make test: pytest finished in $(( $(date +%s) - start )) s (exit $rc)"
exit "$rc"
