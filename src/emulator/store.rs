//! The in-memory finding store: findings keyed by (Id, ProductArn), the
//! `BatchUpdateFindings` update semantics, "in flight" marks for real
//! conflict detection, and insertion-ordered paging for `GetFindings`.
//!
//! It knows ASFF but nothing about HTTP, throttling or faults.
//!
//! Memory: the store is split into [`SHARDS`] mutex-protected shards so
//! concurrent requests rarely contend. Each finding keeps its provider
//! document once (compact JSON text, or for synthetic findings just the
//! generator and an index) plus a small typed record of what filters and
//! updates need; `BatchUpdateFindings` changes live in a separate overlay
//! applied when the finding is read, so the provider document never has to be
//! parsed on the update path.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use indexmap::{Equivalent, IndexMap};
use serde_json::{Value, json};

use super::asff::{
    ComplianceStatus, RecordState, SeverityLabel, VerificationState, WorkflowStatus,
};
use super::config::UdfPolicy;
use super::filters::FilterView;
use super::synth::{Generator, SynthFinding};
use super::validate::{
    ImportedFinding, MAX_FINDING_BYTES, MAX_USER_DEFINED_FIELDS, SeverityUpdate, UpdateFields,
};
use crate::model::FindingKey;

/// Number of shards; a power of two comfortably above the core count.
pub(crate) const SHARDS: usize = 64;

/// A fast, fixed (unkeyed) hash, so that the shard of a key and the store's
/// order are the same in every run. Keys are long ARNs and lookups are the
/// hot path (100 per request); hash flooding is not a concern for a local
/// test server.
type FixedState = BuildHasherDefault<KeyHasher>;

/// Word-at-a-time multiply-rotate hashing (as in FxHash) with a SplitMix64
/// finaliser so that every output bit depends on every input bit.
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher {
    h: u64,
}

const HASH_K: u64 = 0x517C_C1B7_2722_0A95;

impl KeyHasher {
    fn add(&mut self, w: u64) {
        self.h = (self.h.rotate_left(5) ^ w).wrapping_mul(HASH_K);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = chunks.remainder();
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(buf) ^ ((bytes.len() as u64) << 56));
    }

    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b) | 0x100);
    }

    fn finish(&self) -> u64 {
        let mut z = self.h;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[derive(Debug, PartialEq, Eq)]
struct StoreKey {
    id: Box<str>,
    product_arn: Arc<str>,
}

/// A borrowed key for lookups without allocating.
struct KeyRef<'a> {
    id: &'a str,
    product_arn: &'a str,
}

fn hash_parts<H: Hasher>(id: &str, product_arn: &str, h: &mut H) {
    h.write(id.as_bytes());
    h.write_u8(0xFF); // not valid UTF-8, so ("ab","c") and ("a","bc") differ
    h.write(product_arn.as_bytes());
}

impl Hash for StoreKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        hash_parts(&self.id, &self.product_arn, h);
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        hash_parts(self.id, self.product_arn, h);
    }
}

impl Equivalent<StoreKey> for KeyRef<'_> {
    fn equivalent(&self, k: &StoreKey) -> bool {
        *k.id == *self.id && *k.product_arn == *self.product_arn
    }
}

/// The provider's document.
#[derive(Clone, Debug)]
enum Body {
    /// Compact JSON text of an imported finding, without `Note`,
    /// `UserDefinedFields`, `VerificationState` and `Workflow` (see
    /// [`Overlay`]: after creation only `BatchUpdateFindings` changes them).
    Json(Arc<str>),
    /// Finding `n` of a synthetic generator.
    Synthetic(Arc<Generator>, u32),
}

impl Body {
    fn to_value(&self) -> Value {
        match self {
            Body::Json(text) => serde_json::from_str(text).unwrap_or(Value::Null),
            Body::Synthetic(g, n) => {
                serde_json::to_value(g.finding(u64::from(*n))).unwrap_or(Value::Null)
            }
        }
    }
}

/// Whether a `BatchUpdateFindings` request holds the finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flight {
    Idle,
    Held,
    /// Held, and a `BatchImportFindings` changed the finding meanwhile: the
    /// holder must report `ConcurrentUpdateError`.
    Raced,
}

/// The customer-owned fields: initial values from the provider, then
/// whatever `BatchUpdateFindings` set.
/// A stored note.
#[derive(Debug, PartialEq)]
struct NoteState {
    text: String,
    updated_by: String,
    updated_at: String,
}

/// The customer-owned fields: initial values from the provider, then
/// whatever `BatchUpdateFindings` set. Shared values are `Arc`s: one request
/// sets the same note (types, ...) on up to 100 findings, and cloning the
/// overlay on every update must stay cheap.
#[derive(Clone, Debug, Default, PartialEq)]
struct Overlay {
    note: Option<Arc<NoteState>>,
    severity_label: Option<SeverityLabel>,
    severity_normalized: Option<u8>,
    severity_product: Option<f64>,
    verification_state: Option<VerificationState>,
    confidence: Option<u8>,
    criticality: Option<u8>,
    types: Option<Arc<Vec<String>>>,
    user_defined_fields: Option<Arc<BTreeMap<String, String>>>,
    related_findings: Option<Arc<Vec<FindingKey>>>,
}

/// A `BatchUpdateFindings` update prepared once per request, so that
/// applying it to each finding copies no strings.
#[derive(Debug)]
pub(crate) struct PreparedUpdate {
    note: Option<Arc<NoteState>>,
    severity: Option<SeverityUpdate>,
    verification_state: Option<VerificationState>,
    confidence: Option<u8>,
    criticality: Option<u8>,
    types: Option<Arc<Vec<String>>>,
    user_defined_fields: Option<Arc<BTreeMap<String, String>>>,
    workflow_status: Option<WorkflowStatus>,
    related_findings: Option<Arc<Vec<FindingKey>>>,
}

impl PreparedUpdate {
    /// `now` stamps the note (docs/service-facts.md §8.3: the service sets its UpdatedAt).
    pub(crate) fn new(u: UpdateFields, now: &str) -> Self {
        PreparedUpdate {
            note: u.note.map(|n| {
                Arc::new(NoteState {
                    text: n.text,
                    updated_by: n.updated_by,
                    updated_at: now.to_owned(),
                })
            }),
            severity: u.severity,
            verification_state: u.verification_state,
            confidence: u.confidence,
            criticality: u.criticality,
            types: u.types.map(Arc::new),
            user_defined_fields: u.user_defined_fields.map(Arc::new),
            workflow_status: u.workflow_status,
            related_findings: u.related_findings.map(Arc::new),
        }
    }
}

impl Overlay {
    /// An upper bound of the bytes it adds to the rendered finding, without
    /// serialising (this runs for every finding of every update).
    fn approx_len(&self) -> usize {
        let mut n = 0;
        if let Some(note) = &self.note {
            n += 60 + note.text.len() * 2 + note.updated_by.len() * 2 + note.updated_at.len();
        }
        n += 120; // severity, verification state, confidence, criticality
        if let Some(t) = &self.types {
            n += 16 + t.iter().map(|s| s.len() * 2 + 4).sum::<usize>();
        }
        if let Some(m) = &self.user_defined_fields {
            n += 24
                + m.iter()
                    .map(|(k, v)| (k.len() + v.len()) * 2 + 8)
                    .sum::<usize>();
        }
        if let Some(r) = &self.related_findings {
            n += 24
                + r.iter()
                    .map(|k| (k.id.len() + k.product_arn.len()) * 2 + 32)
                    .sum::<usize>();
        }
        n
    }

    fn is_empty(&self) -> bool {
        *self == Overlay::default()
    }
}

#[derive(Debug)]
struct Finding {
    /// Global insertion sequence number: `GetFindings` order and NextToken.
    seq: u64,
    account: Arc<str>,
    region: Arc<str>,
    body: Body,
    base_len: u32,
    updated_at_ms: i64,
    workflow_status: WorkflowStatus,
    severity_label: Option<SeverityLabel>,
    record_state: Option<RecordState>,
    compliance_status: Option<ComplianceStatus>,
    flight: Flight,
    update_count: u32,
    overlay: Option<Box<Overlay>>,
    /// The members each applied update set (at most [`MAX_HISTORY`] kept).
    /// Boxed: 8 bytes on every stored finding, not 24, since most are
    /// never updated.
    history: Option<Box<History>>,
}

/// A finding's update history, boxed in [`Finding`] so that it costs 8
/// bytes on every stored finding, not 24 (most are never updated).
type History = Vec<Written>;

/// The members one applied `BatchUpdateFindings` set on a finding.
#[derive(Clone, Debug)]
struct Written {
    /// Bits of [`MEMBERS`].
    mask: u16,
    /// The `UserDefinedFields` it sent (shared by the request's findings).
    user_defined_fields: Option<Arc<BTreeMap<String, String>>>,
}

/// Updates kept per finding in its field-level history.
const MAX_HISTORY: usize = 64;

/// The members a history entry may name, by bit.
const MEMBERS: [&str; 10] = [
    "Workflow.Status",
    "Note",
    "Severity.Label",
    "Severity.Normalized",
    "Severity.Product",
    "VerificationState",
    "Confidence",
    "Criticality",
    "Types",
    "RelatedFindings",
];

impl Written {
    fn of(u: &PreparedUpdate) -> Self {
        let severity = u.severity.as_ref();
        let bits = [
            u.workflow_status.is_some(),
            u.note.is_some(),
            severity.is_some_and(|s| s.label.is_some()),
            severity.is_some_and(|s| s.normalized.is_some()),
            severity.is_some_and(|s| s.product.is_some()),
            u.verification_state.is_some(),
            u.confidence.is_some(),
            u.criticality.is_some(),
            u.types.is_some(),
            u.related_findings.is_some(),
        ];
        let mask = bits
            .iter()
            .enumerate()
            .filter(|(_, b)| **b)
            .fold(0u16, |m, (i, _)| m | (1 << i));
        Written {
            mask,
            user_defined_fields: u.user_defined_fields.clone(),
        }
    }

    /// The members, as ASFF paths (`UserDefinedFields.<key>` per key).
    fn members(&self) -> Vec<String> {
        let mut out: Vec<String> = MEMBERS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.mask & (1 << i) != 0)
            .map(|(_, m)| (*m).to_owned())
            .collect();
        if let Some(m) = &self.user_defined_fields {
            out.extend(m.keys().map(|k| format!("UserDefinedFields.{k}")));
        }
        out
    }
}

type ShardMap = IndexMap<StoreKey, Finding, FixedState>;

/// How an import ended for one finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImportOutcome {
    /// A new finding.
    Created,
    /// An existing finding, replaced by a newer provider version.
    Updated,
    /// An existing finding with an `UpdatedAt` not later than the stored
    /// one: the service ignores such imports.
    Ignored,
}

impl ImportOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ImportOutcome::Created => "Created",
            ImportOutcome::Updated => "Updated",
            ImportOutcome::Ignored => "Ignored",
        }
    }
}

/// A finding held by a request: where it is, valid while the generation is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    shard: u16,
    index: u32,
    generation: u64,
}

/// The result of trying to hold one finding.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Hold {
    NotFound,
    /// Held by another request in flight.
    Busy,
    Held(Slot),
}

/// Per-finding `BatchUpdateFindings` failures, as (ErrorCode, ErrorMessage).
pub(crate) const CONCURRENT_UPDATE: (&str, &str) = (
    "ConcurrentUpdateError",
    "Concurrent finding updates detected",
);
pub(crate) const DUPLICATED: (&str, &str) = (
    "DuplicatedFindingIdentifier",
    "Finding Identifier is duplicated",
);
pub(crate) const NOT_FOUND: (&str, &str) = ("FindingNotFound", "Finding Not Found");
pub(crate) const SIZE_EXCEEDED: (&str, &str) =
    ("FindingSizeExceeded", "Finding size exceeded 240 KB");
pub(crate) const INTERNAL_FAILURE: (&str, &str) = ("InternalFailure", "Internal service failure");
pub(crate) const INVALID_INPUT: (&str, &str) = ("InvalidInput", "Invalid Input");

/// A copy of what it takes to render a finding, taken under the shard lock
/// and rendered outside it.
#[derive(Debug)]
pub(crate) struct Snapshot {
    #[cfg_attr(not(test), allow(dead_code, reason = "read by tests of paging order"))]
    key: FindingKey,
    region: Arc<str>,
    body: Body,
    workflow_status: WorkflowStatus,
    overlay: Option<Overlay>,
}

impl Snapshot {
    #[cfg(test)]
    pub(crate) fn key(&self) -> &FindingKey {
        &self.key
    }

    /// The full ASFF document, as `GetFindings` returns it.
    pub(crate) fn render(&self) -> Value {
        let mut v = self.body.to_value();
        let Some(obj) = v.as_object_mut() else {
            return v;
        };
        obj.entry("Region")
            .or_insert_with(|| Value::String(self.region.to_string()));
        obj.insert(
            "Workflow".into(),
            json!({ "Status": self.workflow_status.as_str() }),
        );
        let Some(o) = &self.overlay else {
            return v;
        };
        if let Some(n) = &o.note {
            obj.insert(
                "Note".into(),
                json!({"Text": n.text, "UpdatedBy": n.updated_by, "UpdatedAt": n.updated_at}),
            );
        }
        if o.severity_label.is_some()
            || o.severity_normalized.is_some()
            || o.severity_product.is_some()
        {
            let sev = obj.entry("Severity").or_insert_with(|| json!({}));
            if let Some(sev) = sev.as_object_mut() {
                if let Some(l) = o.severity_label {
                    sev.insert("Label".into(), l.as_str().into());
                }
                if let Some(n) = o.severity_normalized {
                    sev.insert("Normalized".into(), n.into());
                }
                if let Some(p) = o.severity_product {
                    // JSON has no NaN/Infinity; restJson1 writes them as strings.
                    let pv = serde_json::Number::from_f64(p)
                        .map(Value::Number)
                        .unwrap_or_else(|| Value::String(non_finite(p).to_owned()));
                    sev.insert("Product".into(), pv);
                }
            }
        }
        if let Some(vs) = o.verification_state {
            obj.insert("VerificationState".into(), vs.as_str().into());
        }
        if let Some(c) = o.confidence {
            obj.insert("Confidence".into(), c.into());
        }
        if let Some(c) = o.criticality {
            obj.insert("Criticality".into(), c.into());
        }
        if let Some(t) = &o.types {
            obj.insert("Types".into(), json!(t));
        }
        if let Some(m) = &o.user_defined_fields {
            obj.insert("UserDefinedFields".into(), json!(m));
        }
        if let Some(r) = &o.related_findings {
            obj.insert("RelatedFindings".into(), json!(r));
        }
        v
    }
}

fn non_finite(p: f64) -> &'static str {
    if p.is_nan() {
        "NaN"
    } else if p > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// The typed fields an inserted finding brings, whatever its origin.
struct NewFinding {
    key: FindingKey,
    account: String,
    region: String,
    body: Body,
    base_len: u32,
    updated_at_ms: i64,
    workflow_status: WorkflowStatus,
    severity_label: Option<SeverityLabel>,
    record_state: Option<RecordState>,
    compliance_status: Option<ComplianceStatus>,
    /// Provider-supplied customer fields (only used when creating).
    overlay: Overlay,
}

/// The store.
pub(crate) struct Store {
    shards: Box<[Mutex<ShardMap>]>,
    seq: AtomicU64,
    generation: AtomicU64,
    len: AtomicUsize,
    interner: Mutex<HashSet<Arc<str>>>,
}

impl Store {
    pub(crate) fn new() -> Self {
        Store {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(ShardMap::default()))
                .collect(),
            seq: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            len: AtomicUsize::new(0),
            interner: Mutex::new(HashSet::new()),
        }
    }

    fn shard_of(id: &str, product_arn: &str) -> usize {
        let mut h = FixedState::default().build_hasher();
        hash_parts(id, product_arn, &mut h);
        // Multiply to take the shard from all bits: the maps inside use the
        // low and high bits of the same hash, which must stay spread out.
        (h.finish().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % SHARDS
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, ShardMap> {
        // Every mutation below finishes before it can panic-free return, so a
        // poisoned shard still holds consistent findings.
        self.shards[shard].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn intern(&self, s: &str) -> Arc<str> {
        let mut set = self.interner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = set.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        set.insert(a.clone());
        a
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::SeqCst)
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Empties the store; slots and page tokens of the old generation die.
    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for s in 0..SHARDS {
            let mut g = self.lock(s);
            let n = g.len();
            *g = ShardMap::default();
            self.len.fetch_sub(n, Ordering::SeqCst);
        }
        self.interner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Stores an imported finding (create, or replace if newer).
    /// `default_region` is used when the document has no `Region`.
    pub(crate) fn import(&self, f: ImportedFinding, default_region: &str) -> ImportOutcome {
        let ImportedFinding {
            key,
            account,
            region,
            updated_at_ms,
            workflow_status,
            severity_label,
            record_state,
            compliance_status,
            mut doc,
        } = f;
        let region = region.unwrap_or_else(|| default_region.to_owned());
        doc.insert("Region".into(), Value::String(region.clone()));
        // Customer-owned fields leave the provider document (docs/service-facts.md §5:
        // after creation, imports cannot change them).
        let mut overlay = Overlay::default();
        if let Some(Value::Object(n)) = doc.remove("Note") {
            let s = |k: &str| {
                n.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            overlay.note = Some(Arc::new(NoteState {
                text: s("Text"),
                updated_by: s("UpdatedBy"),
                updated_at: s("UpdatedAt"),
            }));
        }
        if let Some(Value::Object(m)) = doc.remove("UserDefinedFields") {
            overlay.user_defined_fields = Some(Arc::new(
                m.into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
                    .collect(),
            ));
        }
        overlay.verification_state = doc
            .remove("VerificationState")
            .and_then(|v| v.as_str().and_then(VerificationState::parse));
        doc.remove("Workflow");
        let text = serde_json::to_string(&doc).unwrap_or_default();
        self.insert(NewFinding {
            key,
            account,
            region,
            base_len: text.len().min(u32::MAX as usize) as u32,
            body: Body::Json(Arc::from(text)),
            updated_at_ms,
            workflow_status,
            severity_label,
            record_state,
            compliance_status,
            overlay,
        })
    }

    /// Stores synthetic finding `n` of `g` (already generated as `f`).
    pub(crate) fn insert_synthetic(
        &self,
        g: &Arc<Generator>,
        n: u32,
        f: &SynthFinding,
    ) -> ImportOutcome {
        self.insert(NewFinding {
            key: f.key(),
            account: f.account().to_owned(),
            region: f.region().to_owned(),
            body: Body::Synthetic(g.clone(), n),
            // Synthetic findings are a few KB; the size check only matters
            // for huge imported ones.
            base_len: 4096,
            updated_at_ms: f.updated_at_ms,
            workflow_status: f.workflow_status,
            severity_label: Some(f.severity_label),
            record_state: Some(f.record),
            compliance_status: f.compliance_status,
            overlay: Overlay::default(),
        })
    }

    fn insert(&self, nf: NewFinding) -> ImportOutcome {
        let shard = Self::shard_of(&nf.key.id, &nf.key.product_arn);
        let account = self.intern(&nf.account);
        let region = self.intern(&nf.region);
        let product_arn = self.intern(&nf.key.product_arn);
        let mut g = self.lock(shard);
        let q = KeyRef {
            id: &nf.key.id,
            product_arn: &nf.key.product_arn,
        };
        if let Some(existing) = g.get_mut(&q) {
            if nf.updated_at_ms <= existing.updated_at_ms {
                return ImportOutcome::Ignored;
            }
            // A provider update: new provider document and provider-owned
            // state; the customer-owned overlay and Workflow.Status stay.
            existing.body = nf.body;
            existing.base_len = nf.base_len;
            existing.updated_at_ms = nf.updated_at_ms;
            existing.account = account;
            existing.region = region;
            existing.record_state = nf.record_state;
            existing.compliance_status = nf.compliance_status;
            let user_set_label = existing.overlay.as_ref().and_then(|o| o.severity_label);
            existing.severity_label = user_set_label.or(nf.severity_label);
            if existing.flight == Flight::Held {
                existing.flight = Flight::Raced;
            }
            return ImportOutcome::Updated;
        }
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        g.insert(
            StoreKey {
                id: nf.key.id.into_boxed_str(),
                product_arn,
            },
            Finding {
                seq,
                account,
                region,
                body: nf.body,
                base_len: nf.base_len,
                updated_at_ms: nf.updated_at_ms,
                workflow_status: nf.workflow_status,
                severity_label: nf.severity_label,
                record_state: nf.record_state,
                compliance_status: nf.compliance_status,
                flight: Flight::Idle,
                update_count: 0,
                history: None,
                overlay: (!nf.overlay.is_empty()).then(|| Box::new(nf.overlay)),
            },
        );
        self.len.fetch_add(1, Ordering::SeqCst);
        ImportOutcome::Created
    }

    fn snapshot_of(k: &StoreKey, f: &Finding) -> Snapshot {
        Snapshot {
            key: FindingKey::new(&*k.id, &*k.product_arn),
            region: f.region.clone(),
            body: f.body.clone(),
            workflow_status: f.workflow_status,
            overlay: f.overlay.as_deref().cloned(),
        }
    }

    /// A copy of one finding.
    pub(crate) fn get(&self, key: &FindingKey) -> Option<Snapshot> {
        let g = self.lock(Self::shard_of(&key.id, &key.product_arn));
        let q = KeyRef {
            id: &key.id,
            product_arn: &key.product_arn,
        };
        g.get_key_value(&q).map(|(k, f)| Self::snapshot_of(k, f))
    }

    /// Successful `BatchUpdateFindings` applications to `key`.
    pub(crate) fn update_count(&self, key: &FindingKey) -> u64 {
        let g = self.lock(Self::shard_of(&key.id, &key.product_arn));
        let q = KeyRef {
            id: &key.id,
            product_arn: &key.product_arn,
        };
        g.get(&q).map_or(0, |f| u64::from(f.update_count))
    }

    /// Whether a `BatchUpdateFindings` request in flight holds `key`.
    pub(crate) fn is_held(&self, key: &FindingKey) -> bool {
        let g = self.lock(Self::shard_of(&key.id, &key.product_arn));
        let q = KeyRef {
            id: &key.id,
            product_arn: &key.product_arn,
        };
        g.get(&q).is_some_and(|f| f.flight != Flight::Idle)
    }

    /// Every finding updated at least once, with its count, in store order.
    pub(crate) fn updated(&self) -> Vec<(FindingKey, u64)> {
        let mut out = Vec::new();
        for s in 0..SHARDS {
            let g = self.lock(s);
            for (k, f) in g.iter().filter(|(_, f)| f.update_count > 0) {
                out.push((
                    f.seq,
                    FindingKey::new(&*k.id, &*k.product_arn),
                    u64::from(f.update_count),
                ));
            }
        }
        out.sort_by_key(|(seq, ..)| *seq);
        out.into_iter().map(|(_, k, n)| (k, n)).collect()
    }

    pub(crate) fn zero_update_counts(&self) {
        for s in 0..SHARDS {
            for f in self.lock(s).values_mut() {
                f.update_count = 0;
                f.history = None;
            }
        }
    }

    /// The members each applied update set on `key`, oldest first (the
    /// first [`MAX_HISTORY`] since the last reset of the counters).
    pub(crate) fn history(&self, key: &FindingKey) -> Vec<Vec<String>> {
        let g = self.lock(Self::shard_of(&key.id, &key.product_arn));
        let q = KeyRef {
            id: &key.id,
            product_arn: &key.product_arn,
        };
        g.get(&q)
            .and_then(|f| f.history.as_deref())
            .map(|h| h.iter().map(Written::members).collect())
            .unwrap_or_default()
    }

    /// Tries to hold `key` for an update. `visible` decides, from the
    /// finding's Region, whether the caller may see it at all.
    pub(crate) fn hold(&self, key: &FindingKey, visible: &dyn Fn(&str) -> bool) -> Hold {
        let generation = self.generation();
        let shard = Self::shard_of(&key.id, &key.product_arn);
        let mut g = self.lock(shard);
        let q = KeyRef {
            id: &key.id,
            product_arn: &key.product_arn,
        };
        let Some((index, _, f)) = g.get_full_mut(&q) else {
            return Hold::NotFound;
        };
        if !visible(&f.region) {
            return Hold::NotFound;
        }
        if f.flight != Flight::Idle {
            return Hold::Busy;
        }
        f.flight = Flight::Held;
        Hold::Held(Slot {
            shard: shard as u16,
            index: index as u32,
            generation,
        })
    }

    fn with_slot<R>(&self, slot: Slot, op: impl FnOnce(&mut Finding) -> R) -> Option<R> {
        let mut g = self.lock(usize::from(slot.shard));
        // Checked under the shard lock: `clear` bumps the generation before
        // taking the locks, so a stale slot can never reach a new finding.
        if self.generation() != slot.generation {
            return None;
        }
        g.get_index_mut(slot.index as usize).map(|(_, f)| op(f))
    }

    /// Releases a held finding without changing it.
    pub(crate) fn release(&self, slot: Slot) {
        self.with_slot(slot, |f| f.flight = Flight::Idle);
    }

    /// Applies an update to a held finding (which stays held; call
    /// [`Store::release`]). Returns the per-finding failure, if any; on
    /// failure the finding is unchanged.
    pub(crate) fn apply(
        &self,
        slot: Slot,
        u: &PreparedUpdate,
        udf_policy: UdfPolicy,
    ) -> Result<(), (&'static str, &'static str)> {
        self.with_slot(slot, |f| {
            if f.flight == Flight::Raced {
                return Err(CONCURRENT_UPDATE);
            }
            // Cheap: scalars and reference counts.
            let mut o = f.overlay.as_deref().cloned().unwrap_or_default();
            if let Some(n) = &u.note {
                // A finding has one note: an update replaces it.
                o.note = Some(n.clone());
            }
            let mut label = f.severity_label;
            if let Some(s) = &u.severity {
                // docs/service-facts.md §8.1: a missing Label derives from Normalized and
                // vice versa; both given are kept as given (UNVERIFIED).
                match (s.label, s.normalized) {
                    (Some(l), Some(n)) => {
                        o.severity_label = Some(l);
                        o.severity_normalized = Some(n);
                    }
                    (Some(l), None) => {
                        o.severity_label = Some(l);
                        o.severity_normalized = Some(l.normalized());
                    }
                    (None, Some(n)) => {
                        o.severity_label = Some(SeverityLabel::from_normalized(n));
                        o.severity_normalized = Some(n);
                    }
                    (None, None) => {}
                }
                if let Some(p) = s.product {
                    o.severity_product = Some(p);
                }
                label = o.severity_label.or(label);
            }
            if let Some(v) = u.verification_state {
                o.verification_state = Some(v);
            }
            if let Some(c) = u.confidence {
                o.confidence = Some(c);
            }
            if let Some(c) = u.criticality {
                o.criticality = Some(c);
            }
            if let Some(t) = &u.types {
                o.types = Some(t.clone());
            }
            if let Some(r) = &u.related_findings {
                o.related_findings = Some(r.clone());
            }
            if let Some(new) = &u.user_defined_fields {
                let merged = match (udf_policy, &o.user_defined_fields) {
                    (UdfPolicy::Replace, _) | (UdfPolicy::Merge, None) => new.clone(),
                    (UdfPolicy::Merge, Some(old)) => {
                        let mut m = BTreeMap::clone(old);
                        m.extend(new.iter().map(|(k, v)| (k.clone(), v.clone())));
                        Arc::new(m)
                    }
                };
                if merged.len() > MAX_USER_DEFINED_FIELDS {
                    // The merged map breaks the ASFF limit: the update is
                    // valid on its own, so this is per-finding.
                    return Err(INVALID_INPUT);
                }
                o.user_defined_fields = Some(merged);
            }
            if f.base_len as usize + o.approx_len() > MAX_FINDING_BYTES {
                return Err(SIZE_EXCEEDED);
            }
            if let Some(w) = u.workflow_status {
                f.workflow_status = w;
            }
            f.severity_label = label;
            match (&mut f.overlay, o.is_empty()) {
                (_, true) => f.overlay = None,
                // Reuse the allocation.
                (Some(b), false) => **b = o,
                (None, false) => f.overlay = Some(Box::new(o)),
            }
            f.update_count = f.update_count.saturating_add(1);
            let h = f.history.get_or_insert_default();
            if h.len() < MAX_HISTORY {
                h.push(Written::of(u));
            }
            Ok(())
        })
        .unwrap_or(Err(NOT_FOUND))
    }

    /// One page of findings in insertion order: those with a sequence number
    /// after `after` that pass `pred`, at most `limit`, and whether more exist.
    pub(crate) fn page(
        &self,
        after: Option<u64>,
        limit: usize,
        pred: &dyn Fn(&FilterView<'_>) -> bool,
    ) -> (Vec<Snapshot>, Option<u64>) {
        let view = |k: &StoreKey, f: &Finding| -> bool {
            pred(&FilterView {
                id: &k.id,
                product_arn: &k.product_arn,
                account: &f.account,
                region: &f.region,
                workflow_status: f.workflow_status.as_str(),
                severity_label: f.severity_label.map(SeverityLabel::as_str),
                record_state: f.record_state.map(RecordState::as_str),
                compliance_status: f.compliance_status.map(ComplianceStatus::as_str),
            })
        };
        // Each shard is in ascending sequence order (sequence numbers are
        // taken under the shard lock), so the first `limit + 1` matches of
        // each shard contain the first `limit + 1` matches overall.
        let mut candidates: Vec<(u64, Snapshot)> = Vec::new();
        for s in 0..SHARDS {
            let g = self.lock(s);
            let start = match after {
                Some(a) => g.partition_point(|_, f| f.seq <= a),
                None => 0,
            };
            let mut taken = 0;
            for (k, f) in g.as_slice()[start..].iter() {
                if taken > limit {
                    break;
                }
                if view(k, f) {
                    candidates.push((f.seq, Self::snapshot_of(k, f)));
                    taken += 1;
                }
            }
        }
        candidates.sort_by_key(|(seq, _)| *seq);
        let more = candidates.len() > limit;
        candidates.truncate(limit);
        let last = candidates.last().map(|(seq, _)| *seq);
        let page = candidates.into_iter().map(|(_, s)| s).collect();
        (page, if more { last } else { None })
    }

    /// One page by offset: the filter is evaluated now, over the whole store
    /// in insertion order, and the page is the matches `offset..offset+limit`;
    /// also whether more matches exist. Findings that stopped matching since
    /// the previous page shift the rest forward, as in a service that pages
    /// by offset.
    pub(crate) fn page_at_offset(
        &self,
        offset: usize,
        limit: usize,
        pred: &dyn Fn(&FilterView<'_>) -> bool,
    ) -> (Vec<Snapshot>, bool) {
        let view = |k: &StoreKey, f: &Finding| -> bool {
            pred(&FilterView {
                id: &k.id,
                product_arn: &k.product_arn,
                account: &f.account,
                region: &f.region,
                workflow_status: f.workflow_status.as_str(),
                severity_label: f.severity_label.map(SeverityLabel::as_str),
                record_state: f.record_state.map(RecordState::as_str),
                compliance_status: f.compliance_status.map(ComplianceStatus::as_str),
            })
        };
        // The first `offset + limit + 1` matches of each shard hold the first
        // `offset + limit + 1` overall; only their sequence numbers are kept.
        let want = offset.saturating_add(limit).saturating_add(1);
        let mut matches: Vec<(u64, usize, usize)> = Vec::new();
        let mut snaps: Vec<(u64, Snapshot)> = Vec::new();
        for s in 0..SHARDS {
            let g = self.lock(s);
            let mut taken = 0;
            for (i, (k, f)) in g.as_slice().iter().enumerate() {
                if taken >= want {
                    break;
                }
                if view(k, f) {
                    matches.push((f.seq, s, i));
                    taken += 1;
                }
            }
        }
        matches.sort_unstable_by_key(|m| m.0);
        let more = matches.len() > offset.saturating_add(limit);
        let chosen: Vec<(u64, usize, usize)> =
            matches.into_iter().skip(offset).take(limit).collect();
        for (seq, s, i) in chosen {
            let g = self.lock(s);
            if let Some((k, f)) = g.as_slice().get_index(i) {
                snaps.push((seq, Self::snapshot_of(k, f)));
            }
        }
        (snaps.into_iter().map(|(_, s)| s).collect(), more)
    }
}

/// Whether the stored provider document has `member` (tests check that
/// customer-owned fields live only in the overlay).
#[cfg(test)]
fn body_has_member(body: &Body, member: &str) -> bool {
    matches!(body.to_value(), Value::Object(m) if m.contains_key(member))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::validate::{NoteUpdate, SeverityUpdate, check_finding};
    use serde_json::Map;

    fn imported(id: &str, updated_at: &str, extra: Value) -> ImportedFinding {
        let mut doc = json!({
            "SchemaVersion": "2018-10-08",
            "Id": id,
            "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/guardduty",
            "GeneratorId": "g",
            "AwsAccountId": "123456789012",
            "CreatedAt": "2026-01-01T00:00:00Z",
            "UpdatedAt": updated_at,
            "Severity": {"Label": "LOW", "Original": "2"},
            "Title": "t",
            "Description": "d",
            "Resources": [{"Type": "Other", "Id": "r"}]
        });
        if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        check_finding(doc.as_object().unwrap().clone()).unwrap()
    }

    fn key(id: &str) -> FindingKey {
        FindingKey::new(id, "arn:aws:securityhub:us-east-1::product/aws/guardduty")
    }

    fn apply(
        s: &Store,
        slot: Slot,
        u: &UpdateFields,
        p: UdfPolicy,
        now: &str,
    ) -> Result<(), (&'static str, &'static str)> {
        s.apply(slot, &PreparedUpdate::new(u.clone(), now), p)
    }

    fn everywhere(_: &str) -> bool {
        true
    }

    fn held(s: &Store, id: &str) -> Slot {
        match s.hold(&key(id), &everywhere) {
            Hold::Held(slot) => slot,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn import_create_update_ignore() {
        let s = Store::new();
        assert_eq!(
            s.import(imported("a", "2026-01-02T00:00:00Z", json!({"Workflow": {"Status": "NOTIFIED"}, "Note": {"Text": "n", "UpdatedBy": "p", "UpdatedAt": "2026-01-02T00:00:00Z"}})), "us-east-1"),
            ImportOutcome::Created
        );
        assert_eq!(s.len(), 1);
        assert_eq!(
            s.import(
                imported("a", "2026-01-02T00:00:00Z", json!({})),
                "us-east-1"
            ),
            ImportOutcome::Ignored
        );
        assert_eq!(
            s.import(
                imported(
                    "a",
                    "2026-01-03T00:00:00Z",
                    json!({"Title": "new title", "Workflow": {"Status": "RESOLVED"}})
                ),
                "us-east-1"
            ),
            ImportOutcome::Updated
        );
        assert_eq!(s.len(), 1);
        let v = s.get(&key("a")).unwrap().render();
        assert_eq!(v["Title"], "new title");
        // Customer-owned fields survive provider updates.
        assert_eq!(v["Workflow"]["Status"], "NOTIFIED");
        assert_eq!(v["Note"]["Text"], "n");
        assert_eq!(v["Region"], "us-east-1");
        assert!(s.get(&key("b")).is_none());
    }

    #[test]
    fn update_semantics() {
        let s = Store::new();
        s.import(
            imported(
                "a",
                "2026-01-02T00:00:00Z",
                json!({"UserDefinedFields": {"keep": "1"}}),
            ),
            "us-east-1",
        );
        let before = s.get(&key("a")).unwrap().render();
        let slot = held(&s, "a");
        let u = UpdateFields {
            note: Some(NoteUpdate {
                text: "first".into(),
                updated_by: "me".into(),
            }),
            severity: Some(SeverityUpdate {
                normalized: Some(75),
                ..Default::default()
            }),
            user_defined_fields: Some([("k".to_owned(), "v".to_owned())].into()),
            workflow_status: Some(WorkflowStatus::Resolved),
            confidence: Some(80),
            types: Some(vec!["TTPs/Discovery".into()]),
            ..Default::default()
        };
        apply(&s, slot, &u, UdfPolicy::Merge, "2026-02-01T00:00:00.000Z").unwrap();
        s.release(slot);
        let v = s.get(&key("a")).unwrap().render();
        assert_eq!(
            v["Note"],
            json!({"Text": "first", "UpdatedBy": "me", "UpdatedAt": "2026-02-01T00:00:00.000Z"})
        );
        assert_eq!(v["Severity"]["Label"], "HIGH");
        assert_eq!(v["Severity"]["Normalized"], 75);
        assert_eq!(v["Severity"]["Original"], "2");
        assert_eq!(v["UserDefinedFields"], json!({"keep": "1", "k": "v"}));
        assert_eq!(v["Workflow"]["Status"], "RESOLVED");
        assert_eq!(v["Confidence"], 80);
        assert_eq!(v["Types"], json!(["TTPs/Discovery"]));
        assert_eq!(v["UpdatedAt"], before["UpdatedAt"]);
        assert_eq!(s.update_count(&key("a")), 1);

        let slot = held(&s, "a");
        let u2 = UpdateFields {
            note: Some(NoteUpdate {
                text: "second".into(),
                updated_by: "you".into(),
            }),
            severity: Some(SeverityUpdate {
                label: Some(SeverityLabel::Low),
                ..Default::default()
            }),
            user_defined_fields: Some([("only".to_owned(), "this".to_owned())].into()),
            ..Default::default()
        };
        apply(
            &s,
            slot,
            &u2,
            UdfPolicy::Replace,
            "2026-02-02T00:00:00.000Z",
        )
        .unwrap();
        s.release(slot);
        let v = s.get(&key("a")).unwrap().render();
        assert_eq!(v["Note"]["Text"], "second");
        assert_eq!(v["Note"]["UpdatedAt"], "2026-02-02T00:00:00.000Z");
        assert_eq!(v["Severity"]["Label"], "LOW");
        assert_eq!(v["Severity"]["Normalized"], 1);
        assert_eq!(v["UserDefinedFields"], json!({"only": "this"}));
        assert_eq!(v["Workflow"]["Status"], "RESOLVED");
        assert_eq!(s.update_count(&key("a")), 2);
        assert!(!body_has_member(
            &s.get(&key("a")).unwrap().body,
            "UserDefinedFields"
        ));
    }

    #[test]
    fn holds_conflict_and_release() {
        let s = Store::new();
        s.import(
            imported("a", "2026-01-02T00:00:00Z", json!({})),
            "us-east-1",
        );
        assert!(matches!(s.hold(&key("zz"), &everywhere), Hold::NotFound));
        assert!(matches!(
            s.hold(&key("a"), &|r: &str| r == "eu-west-1"),
            Hold::NotFound
        ));
        let slot = held(&s, "a");
        assert!(matches!(s.hold(&key("a"), &everywhere), Hold::Busy));
        s.release(slot);
        let slot = held(&s, "a");
        // An import while held makes the holder's update a conflict.
        s.import(
            imported("a", "2026-01-05T00:00:00Z", json!({})),
            "us-east-1",
        );
        assert_eq!(
            apply(&s, slot, &UpdateFields::default(), UdfPolicy::Merge, "x"),
            Err(CONCURRENT_UPDATE)
        );
        s.release(slot);
        assert_eq!(s.update_count(&key("a")), 0);
        // A slot from before a clear is dead.
        let slot = held(&s, "a");
        s.clear();
        assert_eq!(s.len(), 0);
        assert_eq!(
            apply(&s, slot, &UpdateFields::default(), UdfPolicy::Merge, "x"),
            Err(NOT_FOUND)
        );
    }

    #[test]
    fn udf_overflow_and_size_limits_are_per_finding() {
        let s = Store::new();
        let full: Map<String, Value> = (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
        s.import(
            imported(
                "a",
                "2026-01-02T00:00:00Z",
                json!({"UserDefinedFields": full}),
            ),
            "us-east-1",
        );
        let slot = held(&s, "a");
        let u = UpdateFields {
            user_defined_fields: Some([("one-more".to_owned(), "v".to_owned())].into()),
            ..Default::default()
        };
        assert_eq!(
            apply(&s, slot, &u, UdfPolicy::Merge, "x"),
            Err(INVALID_INPUT)
        );
        assert_eq!(apply(&s, slot, &u, UdfPolicy::Replace, "x"), Ok(()));
        s.release(slot);

        let big: Map<String, Value> = (0..45)
            .map(|i| (format!("p{i}"), json!("x".repeat(2000))))
            .collect();
        let mut f = imported("big", "2026-01-02T00:00:00Z", json!({"ProductFields": big}));
        f.doc.insert(
            "Threats".into(),
            json!(vec![json!({"Name": "y".repeat(4000)}); 32]),
        );
        s.import(f, "us-east-1");
        let slot = held(&s, "big");
        let udf: BTreeMap<String, String> = (0..50)
            .map(|i| (format!("u{i}"), "z".repeat(1000)))
            .collect();
        let u = UpdateFields {
            user_defined_fields: Some(udf),
            ..Default::default()
        };
        assert_eq!(
            apply(&s, slot, &u, UdfPolicy::Merge, "x"),
            Err(SIZE_EXCEEDED)
        );
        s.release(slot);
    }

    #[test]
    fn pages_follow_insertion_order_across_shards() {
        let s = Store::new();
        for i in 0..250 {
            s.import(
                imported(&format!("f{i:03}"), "2026-01-02T00:00:00Z", json!({})),
                "us-east-1",
            );
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = s.page(after, 100, &|_| true);
            seen.extend(page.iter().map(|p| p.key().id.clone()));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let want: Vec<String> = (0..250).map(|i| format!("f{i:03}")).collect();
        assert_eq!(seen, want);
        let (page, next) = s.page(None, 10, &|v| v.id.ends_with('7'));
        assert_eq!(page.len(), 10);
        assert_eq!(page[0].key().id, "f007");
        assert!(next.is_some());
        let (page, next) = s.page(None, 100, &|v| v.id == "f249");
        assert_eq!((page.len(), next), (1, None));
    }

    #[test]
    fn offset_pages_shift_when_findings_stop_matching() {
        let s = Store::new();
        for i in 0..250 {
            s.import(
                imported(&format!("f{i:03}"), "2026-01-02T00:00:00Z", json!({})),
                "us-east-1",
            );
        }
        // Unchanged store: offset pages cover everything once, in order.
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let (page, more) = s.page_at_offset(offset, 100, &|_| true);
            offset += page.len();
            seen.extend(page.iter().map(|p| p.key().id.clone()));
            if !more {
                break;
            }
        }
        let want: Vec<String> = (0..250).map(|i| format!("f{i:03}")).collect();
        assert_eq!(seen, want);
        // The first page's findings stop matching (updated on the filtered
        // field): the second page, at offset 100, skips f100..f199.
        let done = Mutex::new(HashSet::<String>::new());
        let pred = |v: &FilterView<'_>| !done.lock().unwrap().contains(v.id);
        let (first, more) = s.page_at_offset(0, 100, &pred);
        assert!(more);
        done.lock()
            .unwrap()
            .extend(first.iter().map(|p| p.key().id.clone()));
        let (second, more) = s.page_at_offset(100, 100, &pred);
        assert_eq!(second[0].key().id, "f200");
        assert_eq!((second.len(), more), (50, false));
        // A cursor after f099 is not shifted.
        let (page, _) = s.page(Some(99), 100, &pred);
        assert_eq!(page[0].key().id, "f100");
    }

    #[test]
    fn synthetic_findings_render_like_the_generator() {
        use crate::emulator::synth::SyntheticSpec;
        let s = Store::new();
        let g = Arc::new(Generator::new(&SyntheticSpec::new(20, 9)));
        for n in 0..20 {
            let f = g.finding(n);
            assert_eq!(s.insert_synthetic(&g, n as u32, &f), ImportOutcome::Created);
        }
        let f = g.finding(3);
        let v = s.get(&f.key()).unwrap().render();
        assert_eq!(v, serde_json::to_value(&f).unwrap());
        assert_eq!(s.insert_synthetic(&g, 3, &f), ImportOutcome::Ignored);
        assert_eq!(s.len(), 20);
    }
}
