//! The V2 half of [`EmulatorState`]'s API: seeding, inspecting and
//! reconfiguring the OCSF store while `serve` runs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::V2Config;
use super::ocsf::{OcsfTriple, Record, from_asff};
use super::store::{Body, Ident};
use crate::emulator::state::EmulatorState;
use crate::emulator::synth::{Generator, SyntheticSpec};

/// Both identifiers of an OCSF finding.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OcsfKey {
    /// `metadata.uid`.
    pub metadata_uid: String,
    /// `{cloud.account.uid, finding_info.uid, metadata.product.uid}`.
    #[serde(flatten)]
    pub triple: OcsfTriple,
}

impl OcsfKey {
    /// The `metadata.uid` form.
    pub fn uid(&self) -> Ident {
        Ident::Uid(self.metadata_uid.clone())
    }

    /// The `FindingIdentifiers` form.
    pub fn finding_identifier(&self) -> Ident {
        Ident::Triple(self.triple.clone())
    }
}

/// The current triage values of an OCSF finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcsfState {
    /// `status_id`.
    pub status_id: Option<i64>,
    /// `status` (filled by the service from `status_id`).
    pub status: Option<String>,
    /// `severity_id`.
    pub severity_id: Option<i64>,
    /// `severity`.
    pub severity: Option<String>,
    /// `comment`.
    pub comment: Option<String>,
}

impl EmulatorState {
    /// Stores an OCSF finding (the shape `GetFindingsV2` returns), replacing
    /// one with the same `metadata.uid`. The service fills `status` and
    /// `severity` from `status_id`/`severity_id`. The error names the field.
    pub fn insert_ocsf_finding(&self, doc: Value) -> Result<OcsfKey, String> {
        let Value::Object(map) = doc else {
            return Err("a finding must be a JSON object".to_owned());
        };
        let rec = Record::from_doc(&map)?;
        let key = OcsfKey {
            metadata_uid: rec.metadata_uid.clone(),
            triple: rec.triple.clone(),
        };
        let text: Arc<str> = Value::Object(map).to_string().into();
        self.inner.v2_store.insert(rec, Body::Json(text))?;
        Ok(key)
    }

    /// Adds `spec.count` synthetic findings to the OCSF store, in the OCSF
    /// form of the ASFF findings [`EmulatorState::seed_synthetic`] makes from
    /// the same spec (`finding_info.uid` = ASFF `Id`, `metadata.product.uid`
    /// = the `productv2` ARN), and returns their keys in order.
    pub fn seed_synthetic_ocsf(&self, spec: &SyntheticSpec) -> Vec<OcsfKey> {
        let g = Arc::new(Generator::new(spec));
        let count = spec.count.min(u32::MAX as usize);
        let mut keys = Vec::with_capacity(count);
        for n in 0..count {
            let asff = serde_json::to_value(g.finding(n as u64)).unwrap_or(Value::Null);
            let doc = from_asff(&asff);
            let Some(Ok(rec)) = doc.as_object().map(Record::from_doc) else {
                continue; // the generator's findings always map (unit-tested)
            };
            let key = OcsfKey {
                metadata_uid: rec.metadata_uid.clone(),
                triple: rec.triple.clone(),
            };
            if self
                .inner
                .v2_store
                .insert(rec, Body::Synthetic(g.clone(), n as u32))
                .is_ok()
            {
                keys.push(key);
            }
        }
        keys
    }

    /// The OCSF document of a finding, as `GetFindingsV2` returns it.
    pub fn ocsf_finding(&self, id: &Ident) -> Option<Value> {
        self.inner.v2_store.get(id).map(|(v, _)| v)
    }

    /// The current `status_id`/`severity_id`/`comment` of a finding.
    pub fn ocsf_state(&self, id: &Ident) -> Option<OcsfState> {
        self.inner.v2_store.record(id).map(|r| OcsfState {
            status_id: r.status_id,
            status: r.status,
            severity_id: r.severity_id,
            severity: r.severity,
            comment: r.comment,
        })
    }

    /// How many times `BatchUpdateFindingsV2` applied an update to the
    /// finding (since the last reset of counters).
    pub fn v2_update_count(&self, id: &Ident) -> u64 {
        self.inner.v2_store.update_count(id)
    }

    /// Every OCSF finding updated at least once, with its count.
    pub fn v2_update_counts(&self) -> Vec<(OcsfKey, u64)> {
        self.inner
            .v2_store
            .updated()
            .into_iter()
            .map(|(metadata_uid, triple, n)| {
                (
                    OcsfKey {
                        metadata_uid,
                        triple,
                    },
                    n,
                )
            })
            .collect()
    }

    /// Whether a `BatchUpdateFindingsV2` in flight holds the finding.
    pub fn v2_is_in_flight(&self, id: &Ident) -> bool {
        self.inner.v2_store.is_held(id)
    }

    /// Number of OCSF findings stored.
    pub fn v2_len(&self) -> usize {
        self.inner.v2_store.len()
    }

    /// The V2 configuration in force.
    pub fn v2_config(&self) -> V2Config {
        self.live().v2
    }

    /// Replaces the V2 configuration; takes effect for the next request.
    /// V2 throttle buckets start full again.
    pub fn set_v2_config(&self, v2: V2Config) {
        self.edit_live(|l| l.v2 = v2.sanitized());
        self.inner.throttler.reset();
    }

    /// Enables or disables the new Security Hub in one Region.
    pub fn set_v2_enabled(&self, region: &str, enabled: bool) {
        self.edit_live(|l| {
            if enabled {
                l.v2.disabled_regions.remove(region);
            } else {
                l.v2.disabled_regions.insert(region.to_owned());
            }
        });
    }
}
