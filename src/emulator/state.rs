//! [`EmulatorState`]: the store, counters, throttle buckets, fault generator
//! and live configuration, shared (cheaply cloned) by the server and tests.
//!
//! No HTTP types here: tests can seed, inspect and reconfigure the emulator
//! through this handle while `serve` runs.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;

use super::config::{EmulatorConfig, FaultConfig, Semantics, ThrottleConfig};
use super::counters::{CounterState, Counters, Operation};
use super::faults::FaultRng;
use super::store::Store;
use super::synth::{Generator, SyntheticSpec};
use super::throttle::Throttler;
use super::v2::{V2Config, V2Store};
use super::validate::check_finding;
use crate::model::FindingKey;

/// The parts of the configuration that can change while running.
#[derive(Clone, Debug)]
pub(crate) struct Live {
    pub throttle: ThrottleConfig,
    pub faults: FaultConfig,
    pub semantics: Semantics,
    pub v2: V2Config,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) v2_store: V2Store,
    pub(crate) counters: CounterState,
    pub(crate) throttler: Throttler,
    pub(crate) rng: FaultRng,
    live: RwLock<Live>,
    pub(crate) random_seed: u64,
    pub(crate) account_id: String,
    pub(crate) max_body_bytes: usize,
}

/// The emulator's state. Cheap to clone (an `Arc` inside); every clone
/// sees the same findings and counters.
#[derive(Clone)]
pub struct EmulatorState {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for EmulatorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorState")
            .field("findings", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for EmulatorState {
    fn default() -> Self {
        EmulatorState::new(EmulatorConfig::default())
    }
}

impl EmulatorState {
    /// A new, empty emulator. Probabilities outside 0..=1 are clamped (use
    /// [`EmulatorConfig::validate`] first to reject them instead).
    pub fn new(config: EmulatorConfig) -> Self {
        EmulatorState {
            inner: Arc::new(Inner {
                store: Store::new(),
                v2_store: V2Store::default(),
                counters: CounterState::new(),
                throttler: Throttler::default(),
                rng: FaultRng::new(config.random_seed),
                live: RwLock::new(Live {
                    throttle: config.throttle,
                    faults: config.faults.sanitized(),
                    semantics: config.semantics,
                    v2: config.v2.sanitized(),
                }),
                random_seed: config.random_seed,
                account_id: config.account_id,
                max_body_bytes: config.max_body_bytes,
            }),
        }
    }

    pub(crate) fn live(&self) -> Live {
        self.inner
            .live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn edit_live(&self, f: impl FnOnce(&mut Live)) {
        f(&mut self.inner.live.write().unwrap_or_else(|e| e.into_inner()));
    }

    /// Stores a finding as `BatchImportFindings` would: validated against
    /// ASFF, created, or replacing a stored one if its `UpdatedAt` is later.
    /// A document without `Region` gets the Region of its `ProductArn`
    /// (else `us-east-1`). The error is the service's validation message.
    pub fn insert_finding(&self, asff: Value) -> Result<FindingKey, String> {
        let Value::Object(doc) = asff else {
            return Err("a finding must be a JSON object".to_owned());
        };
        let f = check_finding(doc).map_err(|e| e.message)?;
        let key = f.key.clone();
        let region = crate::arn::region_of(&key.product_arn)
            .unwrap_or("us-east-1")
            .to_owned();
        self.inner.store.import(f, &region);
        Ok(key)
    }

    /// Adds `spec.count` synthetic findings and returns their keys in
    /// generation order. The same spec always gives the same findings;
    /// seeding twice with one spec stores them once.
    pub fn seed_synthetic(&self, spec: &SyntheticSpec) -> Vec<FindingKey> {
        let g = Arc::new(Generator::new(spec));
        let count = spec.count.min(u32::MAX as usize);
        let mut keys = Vec::with_capacity(count);
        for n in 0..count {
            let f = g.finding(n as u64);
            self.inner.store.insert_synthetic(&g, n as u32, &f);
            keys.push(f.into_key());
        }
        keys
    }

    /// The full ASFF document of a finding, as `GetFindings` returns it.
    pub fn finding(&self, key: &FindingKey) -> Option<Value> {
        self.inner.store.get(key).map(|s| s.render())
    }

    /// How many times `BatchUpdateFindings` applied an update to `key`
    /// (since the last reset of counters).
    pub fn update_count(&self, key: &FindingKey) -> u64 {
        self.inner.store.update_count(key)
    }

    /// Whether a `BatchUpdateFindings` request being handled right now holds
    /// `key` (from validation until its answer, injected latency included).
    pub fn is_in_flight(&self, key: &FindingKey) -> bool {
        self.inner.store.is_held(key)
    }

    /// Every finding updated at least once, with its count, in insertion order.
    pub fn update_counts(&self) -> Vec<(FindingKey, u64)> {
        self.inner.store.updated()
    }

    /// The members each applied `BatchUpdateFindings` set on `key`, oldest
    /// first, as ASFF paths (`Workflow.Status`, `Note`, `Severity.Label`,
    /// `UserDefinedFields.<key>`, ...): what exactly was written. The first
    /// 64 updates since the last counter reset are kept.
    pub fn update_history(&self, key: &FindingKey) -> Vec<Vec<String>> {
        self.inner.store.history(key)
    }

    /// Number of stored findings.
    pub fn len(&self) -> usize {
        self.inner.store.len()
    }

    /// True when no finding is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.inner.counters.snapshot()
    }

    /// API requests being handled right now.
    pub fn in_flight(&self) -> u64 {
        self.inner.counters.in_flight()
    }

    /// The most requests for `op` that arrived within any `window` (from the
    /// arrival time of every request since the last reset, throttled ones
    /// included). E.g. with `window` = 1 s, the peak requests per second.
    pub fn max_requests_in_window(&self, op: Operation, window: Duration) -> u64 {
        self.inner.counters.max_in_window(op, window)
    }

    /// Arrival times of every request for `op` since the last reset, as
    /// offsets from that reset.
    pub fn arrivals(&self, op: Operation) -> Vec<Duration> {
        self.inner.counters.arrivals(op)
    }

    /// The current fault configuration.
    pub fn faults(&self) -> FaultConfig {
        self.live().faults
    }

    /// Replaces the fault configuration; takes effect for the next request.
    /// Probabilities are clamped into 0..=1.
    pub fn set_faults(&self, faults: FaultConfig) {
        self.edit_live(|l| l.faults = faults.sanitized());
    }

    /// The current throttle configuration.
    pub fn throttle(&self) -> ThrottleConfig {
        self.live().throttle
    }

    /// Replaces the throttle configuration; buckets start full again.
    pub fn set_throttle(&self, throttle: ThrottleConfig) {
        self.edit_live(|l| l.throttle = throttle);
        self.inner.throttler.reset();
    }

    /// The current semantics.
    pub fn semantics(&self) -> Semantics {
        self.live().semantics
    }

    /// Replaces the semantics; takes effect for the next request.
    pub fn set_semantics(&self, semantics: Semantics) {
        self.edit_live(|l| l.semantics = semantics);
    }

    /// Zeroes the counters, the arrival log and every finding's update count.
    pub fn reset_counters(&self) {
        self.inner.counters.reset();
        self.inner.store.zero_update_counts();
        self.inner.v2_store.zero_update_counts();
    }

    /// Back to a fresh start: empty stores (ASFF and OCSF), zero counters, full throttle
    /// buckets, and the fault generator reseeded with the configured seed.
    /// The live configuration (throttle, faults, semantics) is kept.
    pub fn reset(&self) {
        self.inner.store.clear();
        self.inner.v2_store.clear();
        self.inner.counters.reset();
        self.inner.throttler.reset();
        self.inner.rng.reseed(self.inner.random_seed);
    }
}
