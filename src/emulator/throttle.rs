//! Token-bucket throttling per (access key, Region, operation), the way the
//! service applies its per-account, per-Region quotas (docs/service-facts.md §4.1).
//!
//! It only answers "may this request pass now?"; the HTTP layer turns a "no"
//! into the configured 429 error. The clock is passed in, so the bucket
//! arithmetic is tested without sleeping.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::config::{Bucket, ThrottleConfig};
use super::counters::Operation;
use super::v2::V2Throttle;

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
}

/// The buckets, created full on first use.
#[derive(Debug, Default)]
pub(crate) struct Throttler {
    buckets: Mutex<HashMap<(String, String, Operation), State>>,
}

/// The bucket of an operation: V1 buckets from `cfg`, V2 ones from `v2`.
pub(crate) fn bucket_of(cfg: &ThrottleConfig, v2: &V2Throttle, op: Operation) -> Bucket {
    match op {
        Operation::BatchUpdateFindings => cfg.batch_update,
        Operation::GetFindings => cfg.get_findings,
        Operation::BatchImportFindings => cfg.batch_import,
        Operation::BatchUpdateFindingsV2 => v2.batch_update_v2,
        Operation::GetFindingsV2 => v2.get_findings_v2,
        Operation::DescribeSecurityHubV2 => v2.describe_hub_v2,
    }
}

impl Throttler {
    /// Takes a token for this caller and (V1) operation if one is available.
    #[cfg(test)]
    pub(crate) fn try_acquire(
        &self,
        cfg: &ThrottleConfig,
        access_key: &str,
        region: &str,
        op: Operation,
        now: Instant,
    ) -> bool {
        let b = bucket_of(cfg, &V2Throttle::default(), op);
        self.try_acquire_in(cfg.enabled, b, access_key, region, op, now)
    }

    /// Takes a token from `b` for this caller and operation if one is
    /// available (always, when throttling is not `enabled`).
    pub(crate) fn try_acquire_in(
        &self,
        enabled: bool,
        b: Bucket,
        access_key: &str,
        region: &str,
        op: Operation,
        now: Instant,
    ) -> bool {
        if !enabled {
            return true;
        }
        let burst = f64::from(b.burst);
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let st = map
            .entry((access_key.to_owned(), region.to_owned(), op))
            .or_insert(State {
                tokens: burst,
                last: now,
            });
        let elapsed = now.saturating_duration_since(st.last).as_secs_f64();
        st.tokens = (st.tokens + elapsed * b.rate).min(burst);
        st.last = st.last.max(now);
        if st.tokens >= 1.0 {
            st.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets every bucket (they start full again).
    pub(crate) fn reset(&self) {
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg(rate: f64, burst: u32) -> ThrottleConfig {
        ThrottleConfig {
            batch_update: Bucket::new(rate, burst),
            ..ThrottleConfig::default()
        }
    }

    #[test]
    fn burst_then_rate() {
        let t = Throttler::default();
        let c = cfg(10.0, 30);
        let t0 = Instant::now();
        let op = Operation::BatchUpdateFindings;
        let passed = (0..40)
            .filter(|_| t.try_acquire(&c, "AK", "us-east-1", op, t0))
            .count();
        assert_eq!(passed, 30);
        // 10/s: after 0.25 s, 2 more tokens (2.5 rounded down).
        let t1 = t0 + Duration::from_millis(250);
        let passed = (0..10)
            .filter(|_| t.try_acquire(&c, "AK", "us-east-1", op, t1))
            .count();
        assert_eq!(passed, 2);
        // Refill is capped at the burst.
        let t2 = t1 + Duration::from_secs(3600);
        let passed = (0..100)
            .filter(|_| t.try_acquire(&c, "AK", "us-east-1", op, t2))
            .count();
        assert_eq!(passed, 30);
    }

    #[test]
    fn buckets_are_per_key_region_and_operation() {
        let t = Throttler::default();
        let c = cfg(0.0, 1);
        let now = Instant::now();
        let op = Operation::BatchUpdateFindings;
        assert!(t.try_acquire(&c, "A", "us-east-1", op, now));
        assert!(!t.try_acquire(&c, "A", "us-east-1", op, now));
        assert!(t.try_acquire(&c, "B", "us-east-1", op, now));
        assert!(t.try_acquire(&c, "A", "eu-west-1", op, now));
        assert!(t.try_acquire(&c, "A", "us-east-1", Operation::GetFindings, now));
        t.reset();
        assert!(t.try_acquire(&c, "A", "us-east-1", op, now));
    }

    #[test]
    fn disabled_and_zero_burst() {
        let t = Throttler::default();
        let now = Instant::now();
        let mut c = cfg(100.0, 0);
        assert!(!t.try_acquire(&c, "A", "r", Operation::BatchUpdateFindings, now));
        c.enabled = false;
        assert!(t.try_acquire(&c, "A", "r", Operation::BatchUpdateFindings, now));
    }
}
