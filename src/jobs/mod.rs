//! Durable background work on apalis. Our own tables hold what must happen (see
//! `store::resyncs`); apalis tasks carry row ids and decide who runs them when.

mod queue;
mod runtime;
pub mod user_resync;

pub use queue::{JobQueue, JobQueueError};
pub use runtime::{JobRuntime, WorkerHealth};
