#!/usr/bin/env bash
# CI's API fuzzing: rcsync (debug build, throw-away SQLite) beside the fake RevenueCat, a team,
# project and admin key from `rcsync bootstrap`, the RevenueCat integration with one delivered
# event, then schemathesis against /openapi.json with that key: no 500 and no answer the
# document does not describe. Bounded: a few examples per operation, a time limit.
# Installs schemathesis from PyPI into .ci/venv when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export SQLX_OFFLINE=true
cargo build --quiet --workspace --bins
BIN=target/debug
VENV=${SCHEMATHESIS_VENV:-.ci/venv}
ST_VERSION=4.32.5
if [ ! -x "$VENV/bin/schemathesis" ]; then
    echo "== installing schemathesis $ST_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "schemathesis==$ST_VERSION"
fi

WORK=$(mktemp -d)
RC_PORT=${ST_RC_PORT:-18191}
PORT=${ST_PORT:-18190}
API="http://127.0.0.1:$PORT"
RC_KEY=sk_schemathesis_key_0001

cleanup() {
    kill "${RCSYNC_PID:-}" "${FAKE_PID:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_for() {
    for _ in $(seq 1 100); do
        curl -fs "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "timed out waiting for $1" >&2
    exit 1
}

"$BIN/fake-revenuecat" --bind "127.0.0.1:$RC_PORT" --customers 20 --api-key "$RC_KEY" \
    >"$WORK/fake.log" 2>&1 &
FAKE_PID=$!
wait_for "http://127.0.0.1:$RC_PORT/_fake/stats"

export RCSYNC_DATABASE_URL="sqlite://$WORK/rcsync.db?mode=rwc"
export RCSYNC_BIND="127.0.0.1:$PORT"
export RCSYNC_REVENUECAT_API_URL="http://127.0.0.1:$RC_PORT/v2"
export RCSYNC_RC_DEADLINE_SECS=5
export RUST_LOG=${RUST_LOG:-warn}
"$BIN/rcsync" serve >"$WORK/rcsync.log" 2>&1 &
RCSYNC_PID=$!
wait_for "$API/readyz"

BOOT=$("$BIN/rcsync" bootstrap --team-name CI --project-name CI)
KEY=$(jq -r .api_key <<<"$BOOT")
PROJECT=$(jq -r .project_id <<<"$BOOT")
TEAM=$(jq -r .team_id <<<"$BOOT")
CREATED=$(curl -fsS -X POST "$API/v1/projects/$PROJECT/integrations" \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d "{\"provider\":\"revenuecat\",\"config\":{\"api_key\":\"$RC_KEY\"}}")
curl -fsS -X POST "$(jq -r .webhook_setup.webhook_url <<<"$CREATED")" \
    -H "Authorization: $(jq -r .webhook_setup.authorization_header <<<"$CREATED")" \
    -H 'Content-Type: application/json' --data-binary @fixtures/webhooks/initial_purchase.json >/dev/null

# Path parameters name the bootstrapped tenant, so operations get past 404 and exercise
# their handlers; everything else is generated.
cat >"$WORK/schemathesis.toml" <<TOML
[parameters]
"path.project_id" = "$PROJECT"
"path.team_id" = "$TEAM"
TOML

echo "== schemathesis against $API/openapi.json"
status=0
# Run from the throw-away directory: schemathesis keeps a crash cache (.schemathesis/) in the
# current directory, which must not land in the checkout.
VENV_ABS=$(cd "$VENV" && pwd)
(cd "$WORK" && timeout "${ST_TIME_LIMIT:-420}" "$VENV_ABS/bin/schemathesis" --config-file "$WORK/schemathesis.toml" \
    run "$API/openapi.json" \
    --header "Authorization: Bearer $KEY" \
    --checks all \
    --exclude-checks positive_data_acceptance \
    --max-examples "${ST_MAX_EXAMPLES:-15}" \
    --generation-deterministic \
    --request-timeout 40 \
    --workers 2 \
    --no-color >"$WORK/schemathesis.log" 2>&1) || status=$?
grep -v '^    KeyError' "$WORK/schemathesis.log" | sed -n '/=== SUMMARY/,$p'
summary=$(tail -n 1 "$WORK/schemathesis.log")
# Schemathesis 4.32 on some Pythons trips over its own generator (Hypothesis fails to describe
# a lambda: "AST constructor recursion depth mismatch") for an operation now and then: a tool
# error, not a finding about rcsync. Every other error, and any failure, fails the run.
errors=$(grep -oE '[0-9]+ errors?' <<<"$summary" | grep -oE '[0-9]+' || echo 0)
tool_errors=$(grep -c '^    SystemError: AST constructor recursion depth mismatch' "$WORK/schemathesis.log" || true)
if [ "$status" -ne 0 ] && ! grep -qE '[0-9]+ failures?' <<<"$summary" && [ "$errors" -gt 0 ] \
    && [ "$errors" -eq "$tool_errors" ]; then
    echo "== schemathesis: 0 failures; $errors internal schemathesis error(s) ignored (see above)"
    status=0
elif [ "$status" -ne 0 ]; then
    cat "$WORK/schemathesis.log" >&2
fi
if grep -q "panicked" "$WORK/rcsync.log"; then
    echo "rcsync panicked:" >&2
    grep -A5 "panicked" "$WORK/rcsync.log" >&2
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "== rcsync log (last 50 lines)" >&2
    tail -n 50 "$WORK/rcsync.log" >&2
fi
exit "$status"
