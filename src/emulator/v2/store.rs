//! The OCSF finding store of the new Security Hub, beside (and separate
//! from) the ASFF one: docs/service-facts.md §13 says to treat the two services as
//! separate stores.
//!
//! Findings are keyed by `metadata.uid` and also reachable by the triple
//! `{cloud.account.uid, finding_info.uid, metadata.product.uid}`, so both
//! identifier forms of `BatchUpdateFindingsV2` work. Insertion order is the
//! paging order. "In flight" marks give real conflict detection exactly as
//! in V1. One mutex: V2 traffic is quota-bound (10 requests/s), and
//! rendering happens outside the lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use indexmap::IndexMap;
use serde_json::Value;

use super::ocsf::{OcsfTriple, Record, SEVERITY, STATUS, fill, from_asff};
use crate::emulator::synth::Generator;

/// The provider's document.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    /// Compact JSON text of a seeded OCSF finding.
    Json(Arc<str>),
    /// The OCSF form of finding `n` of a synthetic ASFF generator.
    Synthetic(Arc<Generator>, u32),
}

impl Body {
    fn to_value(&self) -> Value {
        match self {
            Body::Json(text) => serde_json::from_str(text).unwrap_or(Value::Null),
            Body::Synthetic(g, n) => {
                let asff = serde_json::to_value(g.finding(u64::from(*n))).unwrap_or(Value::Null);
                from_asff(&asff)
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flight {
    Idle,
    Held,
    /// Held, and re-seeded meanwhile: the holder reports a conflict.
    Raced,
}

struct Entry {
    rec: Record,
    body: Body,
    updates: u64,
    flight: Flight,
}

/// How a request names an OCSF finding (either identifier form of
/// `BatchUpdateFindingsV2`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ident {
    /// `metadata.uid`.
    Uid(String),
    /// `{CloudAccountUid, FindingInfoUid, MetadataProductUid}`.
    Triple(OcsfTriple),
}

/// The result of trying to hold a finding.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Hold {
    NotFound,
    /// Held by another request in flight.
    Busy,
    /// Held by this request; release it with [`V2Store::release`].
    Held(usize),
}

/// What one `BatchUpdateFindingsV2` sets.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Update {
    pub status_id: Option<i64>,
    pub severity_id: Option<i64>,
    pub comment: Option<String>,
}

impl Update {
    pub(crate) fn is_empty(&self) -> bool {
        self.status_id.is_none() && self.severity_id.is_none() && self.comment.is_none()
    }
}

/// Whether a seeded finding was new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seeded {
    Created,
    Replaced,
}

#[derive(Default)]
struct Inner {
    map: IndexMap<String, Entry>,
    by_triple: HashMap<OcsfTriple, usize>,
}

impl Inner {
    fn resolve(&self, id: &Ident) -> Option<usize> {
        match id {
            Ident::Uid(u) => self.map.get_index_of(u.as_str()),
            Ident::Triple(t) => self.by_triple.get(t).copied(),
        }
    }
}

/// The store.
#[derive(Default)]
pub(crate) struct V2Store {
    inner: Mutex<Inner>,
    generation: AtomicU64,
}

impl V2Store {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a finding, replacing one with the same `metadata.uid` (its
    /// update count is kept; if a request holds it, that request reports a
    /// conflict). A triple already used by another `metadata.uid` is an error.
    pub(crate) fn insert(&self, rec: Record, body: Body) -> Result<Seeded, String> {
        let mut g = self.lock();
        let existing = g.map.get_index_of(rec.metadata_uid.as_str());
        if let Some(&i) = g.by_triple.get(&rec.triple)
            && Some(i) != existing
        {
            let other = g
                .map
                .get_index(i)
                .map(|(k, _)| k.clone())
                .unwrap_or_default();
            return Err(format!(
                "the identifier {{cloud.account.uid {:?}, finding_info.uid {:?}, \
                 metadata.product.uid {:?}}} already belongs to the finding with metadata.uid {other:?}",
                rec.triple.cloud_account_uid,
                rec.triple.finding_info_uid,
                rec.triple.metadata_product_uid
            ));
        }
        match existing {
            Some(i) => {
                let triple = rec.triple.clone();
                let (_, e) = g.map.get_index_mut(i).expect("index from get_index_of");
                let old = std::mem::replace(&mut e.rec.triple, triple.clone());
                e.rec = rec;
                e.body = body;
                if e.flight == Flight::Held {
                    e.flight = Flight::Raced;
                }
                g.by_triple.remove(&old);
                g.by_triple.insert(triple, i);
                Ok(Seeded::Replaced)
            }
            None => {
                let triple = rec.triple.clone();
                let (i, _) = g.map.insert_full(
                    rec.metadata_uid.clone(),
                    Entry {
                        rec,
                        body,
                        updates: 0,
                        flight: Flight::Idle,
                    },
                );
                g.by_triple.insert(triple, i);
                Ok(Seeded::Created)
            }
        }
    }

    /// Holds `id` for this request if it exists, is visible and is not held.
    pub(crate) fn hold(&self, id: &Ident, visible: &dyn Fn(&str) -> bool) -> Hold {
        let mut g = self.lock();
        let Some(i) = g.resolve(id) else {
            return Hold::NotFound;
        };
        let (_, e) = g.map.get_index_mut(i).expect("resolved index");
        if !visible(&e.rec.region) {
            return Hold::NotFound;
        }
        if e.flight != Flight::Idle {
            return Hold::Busy;
        }
        e.flight = Flight::Held;
        Hold::Held(i)
    }

    /// Ends a hold.
    pub(crate) fn release(&self, slot: usize) {
        if let Some((_, e)) = self.lock().map.get_index_mut(slot) {
            e.flight = Flight::Idle;
        }
    }

    /// Applies `u` to a held finding. `Err` when it was re-seeded while held.
    pub(crate) fn apply(&self, slot: usize, u: &Update) -> Result<(), ()> {
        let mut g = self.lock();
        let Some((_, e)) = g.map.get_index_mut(slot) else {
            return Err(());
        };
        if e.flight == Flight::Raced {
            return Err(());
        }
        let r = &mut e.rec;
        if let Some(s) = u.status_id {
            r.status_id = Some(s);
            r.status = fill(STATUS, Some(s), None);
        }
        if let Some(s) = u.severity_id {
            r.severity_id = Some(s);
            r.severity = fill(SEVERITY, Some(s), None);
        }
        if let Some(c) = &u.comment {
            r.comment = Some(c.clone());
        }
        e.updates += 1;
        Ok(())
    }

    /// Both identifier forms of a stored finding.
    pub(crate) fn identifiers(&self, slot: usize) -> Option<(String, OcsfTriple)> {
        let g = self.lock();
        let (k, e) = g.map.get_index(slot)?;
        Some((k.clone(), e.rec.triple.clone()))
    }

    /// The finding as `GetFindingsV2` returns it, and its update count.
    pub(crate) fn get(&self, id: &Ident) -> Option<(Value, u64)> {
        let (rec, body, n) = {
            let g = self.lock();
            let i = g.resolve(id)?;
            let (_, e) = g.map.get_index(i)?;
            (e.rec.clone(), e.body.clone(), e.updates)
        };
        Some((render(&rec, &body), n))
    }

    /// The current typed record of a finding.
    pub(crate) fn record(&self, id: &Ident) -> Option<Record> {
        let g = self.lock();
        let i = g.resolve(id)?;
        g.map.get_index(i).map(|(_, e)| e.rec.clone())
    }

    pub(crate) fn update_count(&self, id: &Ident) -> u64 {
        let g = self.lock();
        g.resolve(id)
            .and_then(|i| g.map.get_index(i))
            .map_or(0, |(_, e)| e.updates)
    }

    pub(crate) fn is_held(&self, id: &Ident) -> bool {
        let g = self.lock();
        g.resolve(id)
            .and_then(|i| g.map.get_index(i))
            .is_some_and(|(_, e)| e.flight != Flight::Idle)
    }

    /// Findings updated at least once, in insertion order.
    pub(crate) fn updated(&self) -> Vec<(String, OcsfTriple, u64)> {
        self.lock()
            .map
            .iter()
            .filter(|(_, e)| e.updates > 0)
            .map(|(k, e)| (k.clone(), e.rec.triple.clone(), e.updates))
            .collect()
    }

    /// Up to `max` findings from position `from` on that satisfy `pred`, and
    /// the position to continue from if more match.
    pub(crate) fn page(
        &self,
        from: usize,
        max: usize,
        pred: &dyn Fn(&Record) -> bool,
    ) -> (Vec<Value>, Option<usize>) {
        let mut picked = Vec::with_capacity(max);
        let mut next = None;
        {
            let g = self.lock();
            for i in from..g.map.len() {
                let (_, e) = g.map.get_index(i).expect("in range");
                if !pred(&e.rec) {
                    continue;
                }
                if picked.len() == max {
                    next = Some(i);
                    break;
                }
                picked.push((e.rec.clone(), e.body.clone()));
            }
        }
        (picked.iter().map(|(r, b)| render(r, b)).collect(), next)
    }

    /// Offset paging: skips the first `offset` findings that match `pred`
    /// *now* and returns up to `max` more, and whether any match remains
    /// after them. A finding that stopped matching since the previous page
    /// shifts later ones onto pages already read (docs/service-facts.md
    /// §13: how the service pages is not documented).
    pub(crate) fn page_at_offset(
        &self,
        offset: usize,
        max: usize,
        pred: &dyn Fn(&Record) -> bool,
    ) -> (Vec<Value>, bool) {
        let mut picked = Vec::with_capacity(max);
        let mut more = false;
        {
            let g = self.lock();
            let mut matched = 0usize;
            for (_, e) in g.map.iter() {
                if !pred(&e.rec) {
                    continue;
                }
                matched += 1;
                if matched <= offset {
                    continue;
                }
                if picked.len() == max {
                    more = true;
                    break;
                }
                picked.push((e.rec.clone(), e.body.clone()));
            }
        }
        (picked.iter().map(|(r, b)| render(r, b)).collect(), more)
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Bumped by [`V2Store::clear`], so tokens from before a reset fail.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    pub(crate) fn zero_update_counts(&self) {
        for (_, e) in self.lock().map.iter_mut() {
            e.updates = 0;
        }
    }

    pub(crate) fn clear(&self) {
        let mut g = self.lock();
        *g = Inner::default();
        self.generation.fetch_add(1, Ordering::Relaxed);
    }
}

fn render(rec: &Record, body: &Body) -> Value {
    let mut v = body.to_value();
    if let Value::Object(m) = &mut v {
        rec.overlay(m);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(uid: &str, fid: &str) -> (Record, Body) {
        let d = json!({
            "metadata": {"uid": uid, "product": {"uid": "arn:aws:securityhub:us-east-1::productv2/aws/guardduty"}},
            "finding_info": {"uid": fid},
            "cloud": {"account": {"uid": "111122223333"}, "region": "us-east-1"},
            "status_id": 1, "severity_id": 3, "time": 1,
        });
        let rec = Record::from_doc(d.as_object().unwrap()).unwrap();
        (rec, Body::Json(d.to_string().into()))
    }

    fn triple(fid: &str) -> Ident {
        Ident::Triple(OcsfTriple {
            cloud_account_uid: "111122223333".into(),
            finding_info_uid: fid.into(),
            metadata_product_uid: "arn:aws:securityhub:us-east-1::productv2/aws/guardduty".into(),
        })
    }

    #[test]
    fn both_identifier_forms_reach_one_finding() {
        let s = V2Store::default();
        let (r, b) = doc("m1", "f1");
        assert_eq!(s.insert(r, b).unwrap(), Seeded::Created);
        let (r, b) = doc("m2", "f1");
        assert!(s.insert(r, b).unwrap_err().contains("already belongs"));
        let all = |_: &str| true;
        let Hold::Held(slot) = s.hold(&triple("f1"), &all) else {
            panic!()
        };
        assert_eq!(s.hold(&Ident::Uid("m1".into()), &all), Hold::Busy);
        assert!(s.is_held(&Ident::Uid("m1".into())));
        s.apply(
            slot,
            &Update {
                status_id: Some(4),
                comment: Some("done".into()),
                ..Update::default()
            },
        )
        .unwrap();
        s.release(slot);
        let (v, n) = s.get(&Ident::Uid("m1".into())).unwrap();
        assert_eq!(n, 1);
        assert_eq!(
            (
                &v["status_id"],
                &v["status"],
                &v["severity_id"],
                &v["severity"],
                &v["comment"]
            ),
            (
                &json!(4),
                &json!("Resolved"),
                &json!(3),
                &json!("Medium"),
                &json!("done")
            )
        );
        assert_eq!(s.hold(&triple("nope"), &all), Hold::NotFound);
        assert_eq!(s.hold(&triple("f1"), &|_| false), Hold::NotFound);
    }

    #[test]
    fn offset_paging_shifts_when_a_read_finding_stops_matching() {
        let s = V2Store::default();
        for i in 0..6 {
            let (r, b) = doc(&format!("m{i}"), &format!("f{i}"));
            s.insert(r, b).unwrap();
        }
        let uids = |p: &[Value]| -> Vec<String> {
            p.iter()
                .map(|v| v["metadata"]["uid"].as_str().unwrap().to_owned())
                .collect()
        };
        let new = |r: &Record| r.status_id == Some(1);
        let (p1, more) = s.page_at_offset(0, 2, &new);
        assert_eq!((uids(&p1), more), (vec!["m0".into(), "m1".into()], true));
        // m0 and m1 are updated away from the filter: offset 2 now skips m2, m3.
        for m in ["m0", "m1"] {
            let Hold::Held(slot) = s.hold(&Ident::Uid(m.into()), &|_| true) else {
                panic!()
            };
            s.apply(
                slot,
                &Update {
                    status_id: Some(3),
                    ..Update::default()
                },
            )
            .unwrap();
            s.release(slot);
        }
        let (p2, more) = s.page_at_offset(2, 2, &new);
        assert_eq!((uids(&p2), more), (vec!["m4".into(), "m5".into()], false));
    }

    #[test]
    fn reseeding_a_held_finding_is_a_conflict_and_paging_is_ordered() {
        let s = V2Store::default();
        for i in 0..5 {
            let (r, b) = doc(&format!("m{i}"), &format!("f{i}"));
            s.insert(r, b).unwrap();
        }
        let Hold::Held(slot) = s.hold(&Ident::Uid("m2".into()), &|_| true) else {
            panic!()
        };
        let (r, b) = doc("m2", "f2");
        assert_eq!(s.insert(r, b).unwrap(), Seeded::Replaced);
        assert!(s.apply(slot, &Update::default()).is_err());
        s.release(slot);
        let (p, next) = s.page(0, 2, &|r| r.metadata_uid != "m1");
        assert_eq!(p.len(), 2);
        assert_eq!(p[1]["metadata"]["uid"], "m2");
        let (p, next2) = s.page(next.unwrap(), 2, &|r| r.metadata_uid != "m1");
        assert_eq!(p.len(), 2);
        assert_eq!(next2, None);
        let g = s.generation();
        s.clear();
        assert_eq!((s.len(), s.generation()), (0, g + 1));
    }
}
