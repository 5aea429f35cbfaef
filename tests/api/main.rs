//! One integration-test binary, a module per feature; every test talks HTTP to a real app.

mod auth;
mod cli;
mod contention;
mod cors;
mod events;
mod health;
mod helpers;
mod integrations;
mod job_runs;
mod jobs;
mod layering;
mod malformed;
mod metrics;
mod pacing;
mod process;
mod provisioning;
mod request_bodies;
mod restart;
mod resync;
mod resync_process;
mod revenue;
mod sync;
mod users;
mod vocabulary;
mod webhook_limits;
mod webhooks;
