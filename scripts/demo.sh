#!/usr/bin/env bash
# make demo: the fake RevenueCat and rcsync side by side on a throw-away SQLite database;
# creates the integration (which provisions the webhook in the fake RevenueCat), replays every
# webhook fixture with the header RevenueCat holds, prints the resulting properties.
set -euo pipefail
cd "$(dirname "$0")/.."

export SQLX_OFFLINE=true
# The release build `cargo run --release` made: this adds only the fake RevenueCat crate (it
# asks for no dependency feature rcsync does not already use, so nothing else recompiles).
cargo build --quiet --release --workspace --bins
BIN=target/release
DEMO_DIR=$(mktemp -d)
RC_PORT=${DEMO_RC_PORT:-18091}
PORT=${DEMO_PORT:-18090}
API="http://127.0.0.1:$PORT"
RC_KEY=sk_demo_key_0001

cleanup() {
    kill "${RCSYNC_PID:-}" "${FAKE_PID:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$DEMO_DIR"
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

echo "== fake RevenueCat on 127.0.0.1:$RC_PORT (50 generated subscribers)"
"$BIN/fake-revenuecat" --bind "127.0.0.1:$RC_PORT" --customers 50 --subscriber-share 1.0 \
    --api-key "$RC_KEY" >"$DEMO_DIR/fake.log" 2>&1 &
FAKE_PID=$!
wait_for "http://127.0.0.1:$RC_PORT/_fake/stats"

export RCSYNC_DATABASE_URL="sqlite://$DEMO_DIR/demo.db?mode=rwc"
export RCSYNC_BIND="127.0.0.1:$PORT"
export RCSYNC_REVENUECAT_API_URL="http://127.0.0.1:$RC_PORT/v2"
export RUST_LOG=${RUST_LOG:-warn}

echo "== rcsync on $API ($RCSYNC_DATABASE_URL)"
"$BIN/rcsync" serve >"$DEMO_DIR/rcsync.log" 2>&1 &
RCSYNC_PID=$!
wait_for "$API/readyz"

BOOT=$("$BIN/rcsync" bootstrap --team-name Demo --project-name "Demo app")
KEY=$(jq -r .api_key <<<"$BOOT")
PROJECT=$(jq -r .project_id <<<"$BOOT")
echo "== bootstrap: project $PROJECT"

echo "== create the RevenueCat integration"
CREATED=$(curl -fsS -X POST "$API/v1/projects/$PROJECT/integrations" \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d "{\"provider\":\"revenuecat\",\"config\":{\"api_key\":\"$RC_KEY\"}}")
jq '{id, config, webhook_setup: (.webhook_setup | .authorization_header |= (.[0:13] + "…"))}' <<<"$CREATED"
WEBHOOK_URL=$(jq -r .webhook_setup.webhook_url <<<"$CREATED")

echo "== the webhook rcsync provisioned in RevenueCat, as rcsync shows it"
curl -fsS "$API/v1/projects/$PROJECT/integrations/revenuecat/webhook" -H "Authorization: Bearer $KEY" | jq
# Deliver as RevenueCat does: with the (write-only) header it holds, which the fake reveals.
WEBHOOK_AUTH=$(curl -fsS "http://127.0.0.1:$RC_PORT/_fake/webhook_integrations" \
    | jq -r --arg url "$WEBHOOK_URL" '.[] | select(.url == $url) | .authorization_header')

echo "== replay fixtures/webhooks (lifecycle order)"
for name in initial_purchase renewal product_change cancellation uncancellation billing_issue \
    expiration subscription_paused subscription_extended temporary_entitlement_grant \
    refund_reversed non_renewing_purchase subscriber_alias transfer anonymous_initial_purchase test; do
    status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$WEBHOOK_URL" \
        -H "Authorization: $WEBHOOK_AUTH" -H 'Content-Type: application/json' \
        --data-binary "@fixtures/webhooks/$name.json")
    printf '  %-28s -> %s\n' "$name" "$status"
done
echo "  redelivery of initial_purchase -> $(curl -s -o /dev/null -w '%{http_code}' -X POST "$WEBHOOK_URL" \
    -H "Authorization: $WEBHOOK_AUTH" -H 'Content-Type: application/json' \
    --data-binary @fixtures/webhooks/initial_purchase.json) (no change)"

sleep 3   # follow-up resyncs run after a 2 s debounce

for user in demo_user_1 demo_user_2; do
    echo "== properties of $user"
    curl -fsS "$API/v1/projects/$PROJECT/users/$user" -H "Authorization: Bearer $KEY" | jq .properties
done

echo "== single-user sync of user_000001 from RevenueCat"
curl -fsS -X POST "$API/v1/projects/$PROJECT/integrations/revenuecat/sync/user_000001" \
    -H "Authorization: Bearer $KEY" | jq
echo "== RevenueCat calls made: $(curl -fsS "http://127.0.0.1:$RC_PORT/_fake/stats" | jq -c '{total: .total, by_status: .by_status}')"
