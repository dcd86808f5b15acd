#!/usr/bin/env bash
# System pieces the test suite uses beyond Python: Debian's Chromium and CJK fonts (browser
# tests) and a PostgreSQL server (the review store's second backend). Installs them when
# running as root with apt (a fresh CI machine), starts PostgreSQL, and prints the
# environment line for the tests. Without root or apt it prints nothing and those tests skip.
set -uo pipefail

log() { echo "test-services: $*" >&2; }

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "not root or no apt-get: browser and PostgreSQL tests will skip"
  exit 0
fi

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need+=(fonts-noto-cjk)
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} from Debian's packages (once per machine) ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") >&2 \
    || log "apt-get failed: the tests that need ${need[*]} will skip"
fi

if command -v pg_ctlcluster >/dev/null 2>&1; then
  cluster=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1 {print $1" "$2}')
  if [ -n "$cluster" ]; then
    # shellcheck disable=SC2086
    pg_ctlcluster $cluster start >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
    if pg_isready -q -h 127.0.0.1; then
      su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='triage'\"" | grep -q 1 \
        || su postgres -c "psql -qc \"CREATE ROLE triage LOGIN SUPERUSER PASSWORD 'triage'\"" >&2
      su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='triage_test'\"" | grep -q 1 \
        || su postgres -c "createdb -O triage triage_test" >&2
      echo "TRIAGE_TEST_POSTGRES_URL=postgresql+psycopg://triage:triage@127.0.0.1:5432/triage_test"
    else
      log "PostgreSQL did not start: its tests will skip"
    fi
  fi
fi
