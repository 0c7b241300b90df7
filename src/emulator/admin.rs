//! The admin API under `/_emulator/` (a prefix the real service never uses):
//! JSON endpoints for tests and tools in other processes to read counters
//! and per-finding bookkeeping, reset state and change throttling, faults
//! and semantics while the emulator runs. No authentication, not counted,
//! never throttled.
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `GET /_emulator/counters` | | [`Counters`](super::Counters) |
//! | `GET /_emulator/window?operation=BatchUpdateFindings&millis=1000` | | `{"Max": n}` |
//! | `GET /_emulator/findings/updates` | | `{"Findings":[{"Id","ProductArn","UpdateCount"}]}` (updated ones) |
//! | `POST /_emulator/findings/history` | `{"Id","ProductArn"}` | `{"Updates":[["Workflow.Status","Note",...],...]}`: the members each applied update set |
//! | `POST /_emulator/findings/get` | `{"Id","ProductArn"}` | `{"Finding": {...}, "UpdateCount": n}` or 404 |
//! | `POST /_emulator/seed` | `{"count": n, "seed": s}` | `{"Seeded": n, "Total": m}` |
//! | `POST /_emulator/reset` | | store, counters, buckets, fault generator |
//! | `POST /_emulator/reset-counters` | | counters and update counts |
//! | `GET`/`PUT /_emulator/faults` | [`FaultConfig`](super::FaultConfig) | the configuration in force |
//! | `GET`/`PUT /_emulator/throttle` | [`ThrottleConfig`](super::ThrottleConfig) | idem |
//! | `GET`/`PUT /_emulator/semantics` | [`Semantics`](super::Semantics) | idem |
//!
//! `/_emulator/v2/...` (the OCSF store and V2 configuration) is handled by
//! `v2::admin`.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::config::{FaultConfig, Semantics, ThrottleConfig};
use super::counters::Operation;
use super::http::{Body, json_response};
use super::state::EmulatorState;
use super::synth::SyntheticSpec;
use crate::model::FindingKey;

/// Admin bodies are small configuration documents.
const MAX_ADMIN_BODY: usize = 1024 * 1024;

pub(crate) fn reply<T: Serialize>(status: u16, v: &T) -> Response<Body> {
    json_response(
        status,
        serde_json::to_vec(v).unwrap_or_default(),
        "emulator-admin",
    )
}

pub(crate) fn error(status: u16, message: impl Into<String>) -> Response<Body> {
    reply(status, &json!({ "Error": message.into() }))
}

pub(crate) async fn body_json<T: DeserializeOwned>(
    req: Request<Incoming>,
) -> Result<T, Response<Body>> {
    let bytes: Bytes = match Limited::new(req.into_body(), MAX_ADMIN_BODY)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return Err(error(
                413,
                format!("admin request body over {MAX_ADMIN_BODY} bytes or unreadable"),
            ));
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| error(400, format!("invalid JSON body: {e}")))
}

pub(crate) fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(crate) async fn handle(state: &EmulatorState, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let query = req.uri().query().map(str::to_owned);
    if path.starts_with("/_emulator/v2/") {
        return super::v2::admin_handle(state, req, method, &path, query.as_deref()).await;
    }
    match (method, path.as_str()) {
        (Method::GET, "/_emulator/counters") => reply(200, &state.counters()),
        (Method::GET, "/_emulator/window") => {
            let op = query_param(query.as_deref(), "operation").and_then(Operation::from_name);
            let millis =
                query_param(query.as_deref(), "millis").and_then(|m| m.parse::<u64>().ok());
            match (op, millis) {
                (Some(op), Some(ms)) if ms > 0 => reply(
                    200,
                    &json!({"Max": state.max_requests_in_window(op, std::time::Duration::from_millis(ms))}),
                ),
                _ => error(
                    400,
                    "expected ?operation=<BatchUpdateFindings|GetFindings|BatchImportFindings|BatchUpdateFindingsV2|GetFindingsV2|DescribeSecurityHubV2>&millis=<n > 0>",
                ),
            }
        }
        (Method::GET, "/_emulator/findings/updates") => {
            let findings: Vec<_> = state
                .update_counts()
                .into_iter()
                .map(|(k, n)| json!({"Id": k.id, "ProductArn": k.product_arn, "UpdateCount": n}))
                .collect();
            reply(200, &json!({ "Findings": findings }))
        }
        (Method::POST, "/_emulator/findings/get") => match body_json::<FindingKey>(req).await {
            Err(r) => r,
            Ok(key) => match state.finding(&key) {
                Some(f) => reply(
                    200,
                    &json!({"Finding": f, "UpdateCount": state.update_count(&key)}),
                ),
                None => error(404, "no such finding"),
            },
        },
        (Method::POST, "/_emulator/findings/history") => match body_json::<FindingKey>(req).await {
            Err(r) => r,
            Ok(key) => match state.finding(&key) {
                Some(_) => reply(200, &json!({"Updates": state.update_history(&key)})),
                None => error(404, "no such finding"),
            },
        },
        (Method::POST, "/_emulator/seed") => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Seed {
                count: usize,
                #[serde(default)]
                seed: u64,
            }
            match body_json::<Seed>(req).await {
                Err(r) => r,
                Ok(s) => {
                    let keys = state.seed_synthetic(&SyntheticSpec::new(s.count, s.seed));
                    reply(200, &json!({"Seeded": keys.len(), "Total": state.len()}))
                }
            }
        }
        (Method::POST, "/_emulator/reset") => {
            state.reset();
            reply(200, &json!({"Reset": true}))
        }
        (Method::POST, "/_emulator/reset-counters") => {
            state.reset_counters();
            reply(200, &json!({"Reset": true}))
        }
        (Method::GET, "/_emulator/faults") => reply(200, &state.faults()),
        (Method::PUT, "/_emulator/faults") => match body_json::<FaultConfig>(req).await {
            Err(r) => r,
            Ok(f) => match f.validate() {
                Err(e) => error(400, e.to_string()),
                Ok(()) => {
                    state.set_faults(f);
                    reply(200, &state.faults())
                }
            },
        },
        (Method::GET, "/_emulator/throttle") => reply(200, &state.throttle()),
        (Method::PUT, "/_emulator/throttle") => match body_json::<ThrottleConfig>(req).await {
            Err(r) => r,
            Ok(t) => match t.validate() {
                Err(e) => error(400, e.to_string()),
                Ok(()) => {
                    state.set_throttle(t);
                    reply(200, &state.throttle())
                }
            },
        },
        (Method::GET, "/_emulator/semantics") => reply(200, &state.semantics()),
        (Method::PUT, "/_emulator/semantics") => match body_json::<Semantics>(req).await {
            Err(r) => r,
            Ok(s) => match s.validate() {
                Err(e) => error(400, e.to_string()),
                Ok(()) => {
                    state.set_semantics(s);
                    reply(200, &state.semantics())
                }
            },
        },
        (m, p) => error(
            404,
            format!("no admin endpoint {m} {p} (see docs/emulator.md)"),
        ),
    }
}
