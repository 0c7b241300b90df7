//! Pacing: how fast requests may leave for one Region.
//!
//! Two gates, both charged for every attempt (retries included):
//! - a [`governor`] GCRA limiter holding the configured quota (rate and burst,
//!   10/s burst 30 by default: the documented BatchUpdateFindings quota), the
//!   hard ceiling that is never exceeded;
//! - an adaptive pace (AIMD) that halves the allowed rate each time the
//!   service throttles us and creeps back up on successes, so that a real
//!   quota lower than the configured one is found without a storm of 429s.
//!
//! While the adaptive pace is below the configured rate the burst allowance
//! is not used either: after a throttle, requests are spaced evenly.
//!
//! One token of the burst is kept in reserve. The service's bucket starts
//! when our first request *arrives*, ours when it is *sent*; a first request
//! that takes a few milliseconds longer than later ones (a new connection)
//! shifts the two schedules, and later requests would then reach the service
//! a little "early" and be throttled. The reserve absorbs a shift of up to
//! one period (100 ms at 10/s) at the cost of one request's worth of burst.
//! The limiter never sleeps; [`RegionLimiter::try_acquire`] says "now" or
//! "not before T", and the engine's single dispatch loop waits.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};

/// The configured quota for one Region.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateConfig {
    /// Sustained requests per second.
    pub rate: f64,
    /// Requests that may be sent at once after a quiet period.
    pub burst: u32,
}

impl RateConfig {
    /// The documented BatchUpdateFindings quota: 10 requests/s, burst 30.
    pub const DOCUMENTED: RateConfig = RateConfig {
        rate: 10.0,
        burst: 30,
    };
}

/// Lowest fraction of the configured rate the adaptive pace goes down to.
const MIN_FACTOR: f64 = 1.0 / 64.0;
/// Fraction of the configured rate regained per successful request.
const ADDITIVE_STEP: f64 = 0.02;

/// The pacing state of one Region.
pub struct RegionLimiter {
    config: RateConfig,
    quota: RateLimiter<
        governor::state::NotKeyed,
        governor::state::InMemoryState,
        DefaultClock,
        governor::middleware::NoOpMiddleware<<DefaultClock as Clock>::Instant>,
    >,
    clock: DefaultClock,
    /// Current allowed fraction of the configured rate (1.0 = full speed).
    factor: f64,
    /// When the last request left (for the adaptive spacing).
    last_sent: Option<Instant>,
    /// When the pace was last cut: throttles of requests sent before then
    /// are echoes of the same overload and do not cut it again.
    last_cut: Option<Instant>,
}

impl RegionLimiter {
    /// A limiter for `config`. Rates below one request per hour are refused
    /// earlier, by configuration validation.
    pub fn new(config: RateConfig) -> Self {
        let period = Duration::from_secs_f64(1.0 / config.rate.max(1.0 / 3600.0));
        // One token in reserve (see the module docs), when the burst allows it.
        let burst =
            NonZeroU32::new(config.burst.saturating_sub(1).max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        let clock = DefaultClock::default();
        RegionLimiter {
            config,
            quota: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            factor: 1.0,
            last_sent: None,
            last_cut: None,
        }
    }

    /// Takes a token if a request may leave now; otherwise returns how long
    /// to wait before asking again. A token taken is a request sent: call
    /// this only when a request is ready to go.
    pub fn try_acquire(&mut self, now: Instant) -> Result<(), Duration> {
        if self.factor < 1.0
            && let Some(last) = self.last_sent
        {
            let spacing = Duration::from_secs_f64(1.0 / (self.config.rate * self.factor));
            let next = last + spacing;
            if next > now {
                return Err(next - now);
            }
        }
        match self.quota.check() {
            Ok(()) => {
                self.last_sent = Some(now);
                Ok(())
            }
            Err(not_until) => Err(not_until
                .wait_time_from(self.clock.now())
                .max(Duration::from_millis(1))),
        }
    }

    /// The service throttled a request sent at `sent_at`: halve the pace,
    /// unless the pace was already cut after that request left (a burst of
    /// requests throttled together counts as one signal). Returns whether
    /// the pace was cut.
    pub fn on_throttled(&mut self, sent_at: Instant, now: Instant) -> bool {
        if self.last_cut.is_some_and(|cut| sent_at < cut) {
            return false;
        }
        self.factor = (self.factor * 0.5).max(MIN_FACTOR);
        self.last_cut = Some(now);
        true
    }

    /// A request went through: regain a little pace.
    pub fn on_success(&mut self) {
        self.factor = (self.factor + ADDITIVE_STEP).min(1.0);
    }

    /// The requests per second currently allowed.
    pub fn current_rate(&self) -> f64 {
        self.config.rate * self.factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuses() {
        let mut l = RegionLimiter::new(RateConfig {
            rate: 1.0,
            burst: 4,
        });
        let now = Instant::now();
        // A burst of 4 with one token in reserve: 3 at once.
        for _ in 0..3 {
            assert!(l.try_acquire(now).is_ok());
        }
        let wait = l.try_acquire(now).unwrap_err();
        assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1));
    }

    #[test]
    fn throttling_halves_and_success_recovers() {
        let mut l = RegionLimiter::new(RateConfig::DOCUMENTED);
        assert_eq!(l.current_rate(), 10.0);
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        assert!(l.on_throttled(ms(0), ms(10)));
        assert_eq!(l.current_rate(), 5.0);
        // Sent before the cut: the same overload, no second cut.
        assert!(!l.on_throttled(ms(5), ms(12)));
        assert_eq!(l.current_rate(), 5.0);
        // Sent after the cut: a new signal.
        assert!(l.on_throttled(ms(11), ms(20)));
        assert_eq!(l.current_rate(), 2.5);
        for i in 0..200 {
            l.on_throttled(ms(100 + i), ms(100 + i));
        }
        assert!((l.current_rate() - 10.0 * MIN_FACTOR).abs() < 1e-9);
        for _ in 0..100 {
            l.on_success();
        }
        assert_eq!(l.current_rate(), 10.0);
    }

    #[test]
    fn adaptive_pace_spaces_requests_after_a_throttle() {
        let mut l = RegionLimiter::new(RateConfig {
            rate: 100.0,
            burst: 50,
        });
        let t0 = Instant::now();
        l.on_throttled(t0, t0); // 50/s: 20 ms apart, burst no longer usable
        assert!(l.try_acquire(t0).is_ok());
        let wait = l.try_acquire(t0).unwrap_err();
        assert!(wait > Duration::from_millis(15) && wait <= Duration::from_millis(20));
        assert!(l.try_acquire(t0 + Duration::from_millis(20)).is_ok());
    }
}
