//! Admin views of the V2 (OCSF) store, under `/_emulator/v2/` (dispatched
//! from the main admin handler). Same conventions: JSON, no auth, not
//! counted, never throttled.
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `GET /_emulator/v2/findings/updates` | | `{"Findings":[{"MetadataUid","CloudAccountUid","FindingInfoUid","MetadataProductUid","UpdateCount"}]}` |
//! | `POST /_emulator/v2/findings/get` | `{"MetadataUid"}` or `{"CloudAccountUid","FindingInfoUid","MetadataProductUid"}` | `{"Finding": {...}, "UpdateCount": n, "InFlight": bool}` or 404 |
//! | `GET /_emulator/v2/findings?max=N` | | `{"Count": total, "Findings": [first N keys]}` |
//! | `POST /_emulator/v2/seed` | `{"count": n, "seed": s}` | `{"Seeded": n, "Total": m}` |
//! | `GET`/`PUT /_emulator/v2/config` | [`V2Config`](super::V2Config) | the configuration in force |
//! | `PUT /_emulator/v2/regions/<region>` | `{"enabled": bool}` | the configuration in force |

use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde::Deserialize;
use serde_json::json;

use super::config::V2Config;
use super::ocsf::OcsfTriple;
use super::store::Ident;
use crate::emulator::admin::{body_json, error, query_param, reply};
use crate::emulator::http::Body;
use crate::emulator::state::EmulatorState;
use crate::emulator::synth::SyntheticSpec;

#[derive(Deserialize)]
#[serde(untagged)]
enum IdBody {
    #[serde(rename_all = "PascalCase")]
    Uid {
        metadata_uid: String,
    },
    Triple(OcsfTriple),
}

/// Handles `/_emulator/v2/...`; `path` has no trailing slash.
pub(crate) async fn handle(
    state: &EmulatorState,
    req: Request<Incoming>,
    method: Method,
    path: &str,
    query: Option<&str>,
) -> Response<Body> {
    match (method, path) {
        (Method::GET, "/_emulator/v2/findings/updates") => {
            let findings: Vec<_> = state
                .v2_update_counts()
                .into_iter()
                .map(|(k, n)| {
                    json!({
                        "MetadataUid": k.metadata_uid,
                        "CloudAccountUid": k.triple.cloud_account_uid,
                        "FindingInfoUid": k.triple.finding_info_uid,
                        "MetadataProductUid": k.triple.metadata_product_uid,
                        "UpdateCount": n,
                    })
                })
                .collect();
            reply(200, &json!({ "Findings": findings }))
        }
        (Method::GET, "/_emulator/v2/findings") => {
            let max = query_param(query, "max")
                .and_then(|m| m.parse::<usize>().ok())
                .unwrap_or(100);
            let (page, _) = state.inner.v2_store.page(0, max, &|_| true);
            let keys: Vec<_> = page
                .iter()
                .map(|f| {
                    json!({
                        "MetadataUid": f["metadata"]["uid"],
                        "CloudAccountUid": f["cloud"]["account"]["uid"],
                        "FindingInfoUid": f["finding_info"]["uid"],
                        "MetadataProductUid": f["metadata"]["product"]["uid"],
                        "StatusId": f["status_id"],
                        "SeverityId": f["severity_id"],
                    })
                })
                .collect();
            reply(200, &json!({"Count": state.v2_len(), "Findings": keys}))
        }
        (Method::POST, "/_emulator/v2/findings/get") => match body_json::<IdBody>(req).await {
            Err(r) => r,
            Ok(b) => {
                let id = match b {
                    IdBody::Uid { metadata_uid } => Ident::Uid(metadata_uid),
                    IdBody::Triple(t) => Ident::Triple(t),
                };
                match state.ocsf_finding(&id) {
                    Some(f) => reply(
                        200,
                        &json!({
                            "Finding": f,
                            "UpdateCount": state.v2_update_count(&id),
                            "InFlight": state.v2_is_in_flight(&id),
                        }),
                    ),
                    None => error(404, "no such OCSF finding"),
                }
            }
        },
        (Method::POST, "/_emulator/v2/seed") => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Seed {
                count: usize,
                #[serde(default)]
                seed: u64,
            }
            match body_json::<Seed>(req).await {
                Err(r) => r,
                Ok(s) => {
                    let keys = state.seed_synthetic_ocsf(&SyntheticSpec::new(s.count, s.seed));
                    reply(200, &json!({"Seeded": keys.len(), "Total": state.v2_len()}))
                }
            }
        }
        (Method::GET, "/_emulator/v2/config") => reply(200, &state.v2_config()),
        (Method::PUT, "/_emulator/v2/config") => match body_json::<V2Config>(req).await {
            Err(r) => r,
            Ok(c) => match c.validate() {
                Err(e) => error(400, e.to_string()),
                Ok(()) => {
                    state.set_v2_config(c);
                    reply(200, &state.v2_config())
                }
            },
        },
        (Method::PUT, p) if p.starts_with("/_emulator/v2/regions/") => {
            let region = &p["/_emulator/v2/regions/".len()..];
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Switch {
                enabled: bool,
            }
            if region.is_empty() || region.contains('/') {
                return error(400, "expected PUT /_emulator/v2/regions/<region>");
            }
            match body_json::<Switch>(req).await {
                Err(r) => r,
                Ok(s) => {
                    state.set_v2_enabled(region, s.enabled);
                    reply(200, &state.v2_config())
                }
            }
        }
        (m, p) => error(
            404,
            format!("no admin endpoint {m} {p} (see docs/emulator.md)"),
        ),
    }
}
