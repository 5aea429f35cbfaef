//! Domain types shared by the HTTP layer, the jobs and the store. No I/O here.

pub mod app_user;
pub mod event_plan;
pub mod integration;
pub mod permission;
pub mod tenancy;
