#!/usr/bin/env bash
# `make demo`: start the LeadGenius sandbox, then run the main job against it as a user would.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=out/demo
rm -rf "$OUT" && mkdir -p "$OUT"
PORT=$($BIN/python -c 'from etl.sandbox.server import free_port; print(free_port())')
HS_PORT=$($BIN/python -c 'from etl.sandbox.server import free_port; print(free_port())')

# A realistic budget: 600 requests/minute per credential, 20 ms per answer.
$BIN/leadgenius-etl sandbox --port "$PORT" --hubspot-port "$HS_PORT" --rate-limit 600 --latency-ms 20 \
  > "$OUT/sandbox.log" 2>&1 &
SANDBOX=$!
trap 'kill $SANDBOX 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  $BIN/python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/__admin/config', timeout=1)" \
    >/dev/null 2>&1 && break
  sleep 0.1
done

export LEADGENIUS_BASE_URL="http://127.0.0.1:$PORT"
export LEADGENIUS_AUTH_FILE="$OUT/auth.json"
export LEADGENIUS_ETL_STATE="$OUT/state.db"
export LEADGENIUS_EMAIL=demo@leadgenius.local
export LEADGENIUS_PASSWORD=demo-password
export LEADGENIUS_ETL_LOG_LEVEL=${LEADGENIUS_ETL_LOG_LEVEL:-WARNING}

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

echo "sandbox: $LEADGENIUS_BASE_URL (log: $OUT/sandbox.log)"
step "log in (tokens go to a 0600 auth file)" $BIN/leadgenius-etl auth login
step "dry run: what would this file do?" $BIN/leadgenius-etl import csv sample_data/leads.csv --client "Acme Corp" \
  --dry-run --report "$OUT/dry-run.json" --rejects "$OUT/rejects.csv" --report-html "$OUT/dry-run.html"
step "import for real" $BIN/leadgenius-etl import csv sample_data/leads.csv --client "Acme Corp" \
  --report "$OUT/report.json" --rejects "$OUT/rejects.csv"
step "run it again: nothing is doubled" $BIN/leadgenius-etl import csv sample_data/leads.csv --client "Acme Corp" \
  --report "$OUT/report-again.json"
step "reconcile: re-read the client to the end" $BIN/leadgenius-etl reconcile --client acme-corp
if $BIN/leadgenius-etl export --help >/dev/null 2>&1; then
  export LEADGENIUS_API_KEY=$($BIN/python -c 'from etl.sandbox.leadgenius.store import DEMO_TENANT as t; print(t.api_key)')
  export LEADGENIUS_USER_ID=$($BIN/python -c 'from etl.sandbox.leadgenius.store import DEMO_TENANT as t; print(t.user_id)')
  step "export the client back out" $BIN/leadgenius-etl export --company-id company-demo --client acme-corp \
    --out "$OUT/acme-corp.csv"
fi
step "run history" $BIN/leadgenius-etl runs
printf '\nReports, rejects and the HTML dry-run report are in %s/\n' "$OUT"
