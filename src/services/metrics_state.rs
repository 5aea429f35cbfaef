//! `/metrics`: reads the database state its gauges show (jobs by status, queue depth, pool
//! use), then renders every metric.

use super::Services;
use crate::store::StoreError;

pub async fn render(services: &Services) -> Result<String, StoreError> {
    let store = &services.store;
    let gauges = &services.metrics.state;
    let jobs = store.job_counts().await?;
    let depth = store.queue_depth().await?;
    // Statuses that emptied since the last scrape show 0, not their old count.
    gauges.jobs.reset();
    for job in &jobs {
        gauges
            .jobs
            .with_label_values(&[job.job_type.as_str(), job.status.as_str()])
            .set(job.count);
    }
    for (queue, count) in [
        ("follow_up_backlog", depth.follow_up_backlog),
        ("pending_resyncs", depth.pending_resyncs),
        ("pending_runs", depth.pending_runs),
        ("pending_resolutions", depth.pending_resolutions),
    ] {
        gauges.queue_depth.with_label_values(&[queue]).set(count);
    }
    for pool in store.pool_use() {
        for (state, value) in [
            ("in_use", pool.in_use),
            ("idle", pool.idle),
            ("max", pool.max),
        ] {
            gauges
                .pool_connections
                .with_label_values(&[pool.pool, state])
                .set(i64::from(value));
        }
    }
    Ok(services.metrics.render())
}
