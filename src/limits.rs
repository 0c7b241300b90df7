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
//!
//! The quota's clock is injected (governor's [`Clock`]): the engine uses
//! [`DefaultClock`], and the pacing tests a [`FakeRelativeClock`] that they
//! advance by hand, so they check exact spacings without waiting for them.
//! The adaptive pace reads the time it is given (`now`).
//!
//! [`FakeRelativeClock`]: governor::clock::FakeRelativeClock

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

/// The pacing state of one Region, on the quota clock `C`.
pub(crate) struct RegionLimiter<C: Clock = DefaultClock> {
    config: RateConfig,
    quota: RateLimiter<
        governor::state::NotKeyed,
        governor::state::InMemoryState,
        C,
        governor::middleware::NoOpMiddleware<C::Instant>,
    >,
    clock: C,
    /// Current allowed fraction of the configured rate (1.0 = full speed).
    factor: f64,
    /// When the last request left (for the adaptive spacing).
    last_sent: Option<Instant>,
    /// When the pace was last cut: throttles of requests sent before then
    /// are echoes of the same overload and do not cut it again.
    last_cut: Option<Instant>,
}

impl RegionLimiter {
    /// A limiter for `config` on the real clock. Rates below one request per
    /// hour are refused earlier, by configuration validation.
    pub(crate) fn new(config: RateConfig) -> Self {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RegionLimiter<C> {
    /// A limiter for `config` whose quota reads the time from `clock`.
    pub(crate) fn with_clock(config: RateConfig, clock: C) -> Self {
        let period = Duration::from_secs_f64(1.0 / config.rate.max(1.0 / 3600.0));
        // One token in reserve (see the module docs), when the burst allows it.
        let burst =
            NonZeroU32::new(config.burst.saturating_sub(1).max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
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
    pub(crate) fn try_acquire(&mut self, now: Instant) -> Result<(), Duration> {
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
    pub(crate) fn on_throttled(&mut self, sent_at: Instant, now: Instant) -> bool {
        if self.last_cut.is_some_and(|cut| sent_at < cut) {
            return false;
        }
        self.factor = (self.factor * 0.5).max(MIN_FACTOR);
        self.last_cut = Some(now);
        true
    }

    /// A request went through: regain a little pace.
    pub(crate) fn on_success(&mut self) {
        self.factor = (self.factor + ADDITIVE_STEP).min(1.0);
    }

    /// The requests per second currently allowed.
    pub(crate) fn current_rate(&self) -> f64 {
        self.config.rate * self.factor
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

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

    /// Fake time: the quota's clock and the `now` handed to the limiter
    /// move together, only when the test says so.
    struct FakeTime {
        clock: FakeRelativeClock,
        start: Instant,
    }

    impl FakeTime {
        fn new() -> Self {
            FakeTime {
                clock: FakeRelativeClock::default(),
                start: Instant::now(),
            }
        }
        fn limiter(&self, config: RateConfig) -> RegionLimiter<FakeRelativeClock> {
            RegionLimiter::with_clock(config, self.clock.clone())
        }
        fn now(&self) -> Instant {
            self.start + Duration::from(self.clock.now())
        }
        fn advance(&self, by: Duration) {
            self.clock.advance(by);
        }
        /// Runs a dispatch loop for `span`: asks for a token, and when
        /// refused, waits exactly as long as the limiter says. Returns the
        /// times (since the start) at which tokens were granted.
        fn drive<C: Clock + Clone>(
            &self,
            l: &mut RegionLimiter<C>,
            span: Duration,
        ) -> Vec<Duration> {
            let mut granted = Vec::new();
            while self.now() - self.start <= span {
                match l.try_acquire(self.now()) {
                    Ok(()) => granted.push(self.now() - self.start),
                    Err(wait) => self.advance(wait),
                }
            }
            granted
        }
    }

    #[test]
    fn fake_time_burst_then_exact_period() {
        let t = FakeTime::new();
        let mut l = t.limiter(RateConfig {
            rate: 1.0,
            burst: 4,
        });
        // A burst of 4 with one token in reserve: 3 at once, then exactly
        // one period (1 s) to the next token.
        for _ in 0..3 {
            assert!(l.try_acquire(t.now()).is_ok());
        }
        assert_eq!(l.try_acquire(t.now()), Err(Duration::from_secs(1)));
        t.advance(Duration::from_millis(999));
        assert_eq!(l.try_acquire(t.now()), Err(Duration::from_millis(1)));
        t.advance(Duration::from_millis(1));
        assert!(l.try_acquire(t.now()).is_ok());
        assert_eq!(l.try_acquire(t.now()), Err(Duration::from_secs(1)));
    }

    #[test]
    fn fake_time_sustained_rate_is_the_quota() {
        let t = FakeTime::new();
        let mut l = t.limiter(RateConfig::DOCUMENTED);
        let granted = t.drive(&mut l, Duration::from_secs(10));
        // 29 at once (burst 30, one in reserve), then one every 100 ms.
        let at_start = granted.iter().filter(|d| d.is_zero()).count();
        assert_eq!(at_start, 29);
        assert_eq!(granted.len(), 29 + 100);
        for pair in granted[29..].windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(100));
        }
        // Never more than the quota in any second after the burst.
        let in_last_second = granted
            .iter()
            .filter(|d| **d > Duration::from_secs(9))
            .count();
        assert_eq!(in_last_second, 10);
    }

    #[test]
    fn fake_time_throttle_spaces_evenly_then_recovers() {
        let t = FakeTime::new();
        let mut l = t.limiter(RateConfig {
            rate: 100.0,
            burst: 50,
        });
        assert!(l.on_throttled(t.now(), t.now()));
        // 50/s: one every 20 ms, no burst while the pace is cut.
        let granted = t.drive(&mut l, Duration::from_secs(1));
        assert_eq!(granted.len(), 51);
        for pair in granted.windows(2) {
            assert_eq!(pair[1] - pair[0], Duration::from_millis(20));
        }
        // 25 successes at 2% each regain the full rate; the spacing is gone.
        for _ in 0..25 {
            l.on_success();
        }
        assert_eq!(l.current_rate(), 100.0);
        t.advance(Duration::from_secs(1));
        let start = t.now() - t.start;
        let burst = t
            .drive(&mut l, start)
            .into_iter()
            .filter(|d| *d == start)
            .count();
        assert_eq!(burst, 49, "the burst is usable again at full pace");
    }
}
