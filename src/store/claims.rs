//! Claims on work rows (user resyncs, job runs): a row `running` for one worker instance,
//! fenced by `attempts`, taken over when its instance stops heartbeating or the claim outlives
//! its lease.

/// When a claimed row counts as abandoned.
#[derive(Debug, Clone, Copy)]
pub struct ClaimPolicy {
    /// The process that claimed it stopped heartbeating this long ago (it died).
    pub instance_timeout_ms: i64,
    /// Or the claim is this old whatever its process says (longer than any attempt).
    pub lease_ms: i64,
}

/// The SQL condition "a running row whose claim is abandoned", with `now` the SQL expression
/// (a placeholder or a literal) for the current time.
pub(super) fn abandoned_claim(policy: ClaimPolicy, now: &str) -> String {
    format!(
        "(status = 'running' AND (updated_at < {now} - {lease} OR claimed_by IS NULL OR claimed_by NOT IN \
         (SELECT id FROM worker_instances WHERE heartbeat_at >= {now} - {timeout})))",
        lease = policy.lease_ms,
        timeout = policy.instance_timeout_ms,
    )
}
