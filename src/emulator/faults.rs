//! Fault draws from the emulator's seeded generator: request-level faults
//! (500, 503, dropped connection), latency jitter, and per-finding
//! `ConcurrentUpdateError` / `InternalFailure`.
//!
//! One generator for the whole emulator, so a run with the same seed and the
//! same sequence of requests draws the same faults. Numbers are drawn only
//! for faults whose probability is above zero, so turning on one kind of
//! fault does not change what another kind would have drawn when it is off.
//! This module decides; the HTTP layer and the store act.

use std::sync::Mutex;
use std::time::Duration;

use super::config::FaultConfig;
use super::rng::SplitMix64;
use super::store::{CONCURRENT_UPDATE, INTERNAL_FAILURE};

/// A request-level fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequestFault {
    /// HTTP 500 `InternalException`.
    Internal,
    /// HTTP 503 `ServiceUnavailableException`.
    Unavailable,
    /// Close the connection without answering.
    Drop,
}

/// The seeded generator behind every fault.
#[derive(Debug)]
pub(crate) struct FaultRng {
    rng: Mutex<SplitMix64>,
}

impl FaultRng {
    pub(crate) fn new(seed: u64) -> Self {
        FaultRng {
            rng: Mutex::new(SplitMix64::new(seed)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SplitMix64> {
        self.rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the sequence over from `seed`.
    pub(crate) fn reseed(&self, seed: u64) {
        *self.lock() = SplitMix64::new(seed);
    }

    /// The delay to add before answering: `latency` plus a uniform share of
    /// `latency_jitter`.
    pub(crate) fn latency(&self, f: &FaultConfig) -> Duration {
        if f.latency_jitter.is_zero() {
            return f.latency;
        }
        f.latency + f.latency_jitter.mul_f64(self.lock().next_f64())
    }

    /// One draw decides between 500, 503 and drop (in that order, with
    /// cumulative probabilities).
    pub(crate) fn request_fault(&self, f: &FaultConfig) -> Option<RequestFault> {
        let total = f.http_500 + f.http_503 + f.drop_connection;
        if total <= 0.0 {
            return None;
        }
        let u = self.lock().next_f64();
        if u < f.http_500 {
            Some(RequestFault::Internal)
        } else if u < f.http_500 + f.http_503 {
            Some(RequestFault::Unavailable)
        } else if u < total {
            Some(RequestFault::Drop)
        } else {
            None
        }
    }

    /// One draw with probability `p` (no draw at all when `p` is 0).
    pub(crate) fn chance(&self, p: f64) -> bool {
        p > 0.0 && self.lock().next_f64() < p
    }

    /// `n` draws with probability `p` each (none when `p` is 0).
    pub(crate) fn chances(&self, p: f64, n: usize) -> Vec<bool> {
        if p <= 0.0 {
            return vec![false; n];
        }
        let mut rng = self.lock();
        (0..n).map(|_| rng.next_f64() < p).collect()
    }

    /// Per-finding faults for `n` findings, in order: one draw each decides
    /// between `ConcurrentUpdateError` and `InternalFailure`.
    pub(crate) fn finding_faults(
        &self,
        f: &FaultConfig,
        n: usize,
    ) -> Vec<Option<(&'static str, &'static str)>> {
        let (pc, pi) = (f.concurrent_update_error, f.internal_failure);
        if pc + pi <= 0.0 {
            return vec![None; n];
        }
        let mut rng = self.lock();
        (0..n)
            .map(|_| {
                let u = rng.next_f64();
                if u < pc {
                    Some(CONCURRENT_UPDATE)
                } else if u < pc + pi {
                    Some(INTERNAL_FAILURE)
                } else {
                    None
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let f = FaultConfig {
            concurrent_update_error: 0.2,
            internal_failure: 0.1,
            http_500: 0.1,
            http_503: 0.1,
            drop_connection: 0.1,
            latency_jitter: Duration::from_millis(10),
            ..FaultConfig::default()
        };
        let run = |seed| {
            let r = FaultRng::new(seed);
            let mut out = Vec::new();
            for _ in 0..50 {
                out.push(format!("{:?}", r.request_fault(&f)));
                out.push(format!("{:?}", r.latency(&f)));
                out.push(format!("{:?}", r.finding_faults(&f, 10)));
            }
            out
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let r = FaultRng::new(1);
        let a = r.finding_faults(&f, 20);
        r.reseed(1);
        assert_eq!(r.finding_faults(&f, 20), a);
    }

    #[test]
    fn probabilities_are_respected() {
        let r = FaultRng::new(3);
        let off = FaultConfig::default();
        assert_eq!(r.request_fault(&off), None);
        assert!(r.finding_faults(&off, 5).iter().all(Option::is_none));
        let all = FaultConfig {
            internal_failure: 1.0,
            http_503: 1.0,
            ..FaultConfig::default()
        };
        assert_eq!(r.request_fault(&all), Some(RequestFault::Unavailable));
        assert!(
            r.finding_faults(&all, 5)
                .iter()
                .all(|x| *x == Some(INTERNAL_FAILURE))
        );
        let some = FaultConfig {
            concurrent_update_error: 0.3,
            ..FaultConfig::default()
        };
        let hits = r
            .finding_faults(&some, 10_000)
            .iter()
            .filter(|x| x.is_some())
            .count();
        assert!((2_500..3_500).contains(&hits), "{hits}");
        assert_eq!(
            r.latency(&FaultConfig {
                latency: Duration::from_millis(5),
                ..off
            }),
            Duration::from_millis(5)
        );
    }
}
