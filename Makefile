# rcsync developer commands. SQLX_OFFLINE keeps sqlx macros in dependencies from checking
# against whatever DATABASE_URL happens to be set.
export SQLX_OFFLINE := true

.PHONY: run test test-postgres lint fmt ci demo bench

## Run API + worker on the embedded default (SQLite at ./rcsync.db, 127.0.0.1:8080).
run:
	cargo run --release -- serve

## The whole test suite (SQLite; PostgreSQL too when RCSYNC_TEST_POSTGRES_URL is set).
test:
	cargo test --workspace --all-targets

## The suite against the local PostgreSQL.
test-postgres:
	RCSYNC_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test --workspace --all-targets

fmt:
	cargo fmt --all

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

ci:
	bash .ci/run

## Fake RevenueCat + rcsync, create the integration, replay the webhook fixtures, print properties.
demo:
	bash scripts/demo.sh

## Benchmarks (release build), each printed as a table: webhook ingestion, then full resyncs.
bench:
	cargo bench --bench webhooks
	cargo bench --bench resync
