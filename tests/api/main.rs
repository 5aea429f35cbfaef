//! One integration-test binary, a module per feature; every test talks HTTP to a real app.

mod auth;
mod cli;
mod group_commit;
mod health;
mod helpers;
mod integrations;
mod jobs;
mod layering;
mod malformed;
mod pacing;
mod process;
mod request_bodies;
mod restart;
mod revenue;
mod sync;
mod users;
mod vocabulary;
mod webhooks;
