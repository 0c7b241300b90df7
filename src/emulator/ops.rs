//! The three operations, run against the state once a request has passed
//! authentication and throttling: validation, conflict holds, injected
//! latency and faults, the store call, and the response document.
//!
//! Returns an [`ApiReply`]; turning it into HTTP is the HTTP module's job.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use serde::Serialize;
use serde_json::Value;

use super::asff::{now_timestamp, partition_of_region};
use super::config::{DuplicatePolicy, Paging, RegionScope, Semantics};
use super::faults::RequestFault;
use super::filters::FindingFilter;
use super::state::{EmulatorState, Live};
use super::store::{
    CONCURRENT_UPDATE, DUPLICATED, Hold, KeyHasher, NOT_FOUND, PreparedUpdate, Slot, Store,
};
use super::validate::{parse_batch_import, parse_batch_update, parse_get_findings};
use crate::model::FindingKey;

/// Who is calling, from the SigV4 `Authorization` header.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub access_key: String,
    pub region: String,
}

/// A modelled (or API Gateway) error: HTTP status, `x-amzn-ErrorType`, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            code: "InvalidInputException",
            message: message.into(),
        }
    }
}

/// What an operation produced.
#[derive(Debug)]
pub(crate) enum ApiReply {
    /// HTTP 200 with this JSON body.
    Ok(Vec<u8>),
    /// An error response.
    Err(ApiError),
    /// Close the connection without answering.
    Drop,
}

fn json_reply<T: Serialize>(v: &T) -> ApiReply {
    match serde_json::to_vec(v) {
        Ok(b) => ApiReply::Ok(b),
        Err(e) => ApiReply::Err(ApiError {
            status: 500,
            code: "InternalException",
            message: format!("could not encode the response: {e}"),
        }),
    }
}

/// Whether a caller in `caller_region` may see a finding of `finding_region`.
pub(crate) fn visible(sem: &Semantics, caller_region: &str, finding_region: &str) -> bool {
    match sem.region_scope {
        RegionScope::Any => true,
        RegionScope::Strict => {
            finding_region == caller_region
                || (sem.home_region.as_deref() == Some(caller_region)
                    && partition_of_region(finding_region) == partition_of_region(caller_region))
        }
    }
}

/// Sleeps the injected latency, then draws a request-level fault. Holds
/// taken before this stay held during the sleep, which is what makes
/// overlapping requests conflict.
async fn delay_and_fault(state: &EmulatorState, live: &Live) -> Option<ApiReply> {
    let delay = state.inner.rng.latency(&live.faults);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match state.inner.rng.request_fault(&live.faults)? {
        RequestFault::Internal => Some(ApiReply::Err(ApiError {
            status: 500,
            code: "InternalException",
            message: "Internal service failure".to_owned(),
        })),
        RequestFault::Unavailable => Some(ApiReply::Err(ApiError {
            status: 503,
            code: "ServiceUnavailableException",
            message: "Service Unavailable".to_owned(),
        })),
        RequestFault::Drop => Some(ApiReply::Drop),
    }
}

/// Releases held findings when the request ends, however it ends (including
/// the client going away during the injected latency).
struct Holds<'a> {
    store: &'a Store,
    slots: Vec<(usize, Slot)>,
}

impl Drop for Holds<'_> {
    fn drop(&mut self) {
        for (_, slot) in self.slots.drain(..) {
            self.store.release(slot);
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Unprocessed<'a> {
    finding_identifier: &'a FindingKey,
    error_code: &'static str,
    error_message: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BatchUpdateResponse<'a> {
    processed_findings: Vec<&'a FindingKey>,
    unprocessed_findings: Vec<Unprocessed<'a>>,
}

/// `BatchUpdateFindings`.
pub(crate) async fn batch_update(
    state: &EmulatorState,
    live: &Live,
    caller: &Caller,
    body: &[u8],
) -> ApiReply {
    let req = match parse_batch_update(body, &live.semantics) {
        Ok(r) => r,
        Err(e) => return ApiReply::Err(ApiError::invalid_input(e.0)),
    };
    let ids = &req.identifiers;
    let mut outcome: Vec<Option<(&'static str, &'static str)>> = vec![None; ids.len()];

    // Duplicates are per-finding outcomes, decided before touching the store.
    let mut first: HashMap<&FindingKey, usize, BuildHasherDefault<KeyHasher>> =
        HashMap::with_capacity_and_hasher(ids.len(), BuildHasherDefault::default());
    for (i, k) in ids.iter().enumerate() {
        if let Some(&j) = first.get(k) {
            outcome[i] = Some(DUPLICATED);
            if live.semantics.duplicates == DuplicatePolicy::AllRejected {
                outcome[j] = Some(DUPLICATED);
            }
        } else {
            first.insert(k, i);
        }
    }

    let store = &state.inner.store;
    let see = |r: &str| visible(&live.semantics, &caller.region, r);
    let mut holds = Holds {
        store,
        slots: Vec::with_capacity(ids.len()),
    };
    for (i, k) in ids.iter().enumerate() {
        if outcome[i].is_some() {
            continue;
        }
        match store.hold(k, &see) {
            Hold::NotFound => outcome[i] = Some(NOT_FOUND),
            // Another request in flight holds it: a real conflict.
            Hold::Busy => outcome[i] = Some(CONCURRENT_UPDATE),
            Hold::Held(slot) => holds.slots.push((i, slot)),
        }
    }

    if let Some(reply) = delay_and_fault(state, live).await {
        return reply; // `holds` releases everything unapplied
    }

    let faults = state
        .inner
        .rng
        .finding_faults(&live.faults, holds.slots.len());
    let update = PreparedUpdate::new(req.fields, &now_timestamp());
    for (&(i, slot), fault) in holds.slots.iter().zip(faults) {
        outcome[i] = match fault {
            Some(f) => Some(f),
            None => store
                .apply(slot, &update, live.semantics.user_defined_fields)
                .err(),
        };
    }
    drop(holds);

    let mut resp = BatchUpdateResponse {
        processed_findings: Vec::new(),
        unprocessed_findings: Vec::new(),
    };
    let mut tally: HashMap<&'static str, u64> = HashMap::new();
    for (k, o) in ids.iter().zip(&outcome) {
        match o {
            None => {
                resp.processed_findings.push(k);
                *tally.entry("Processed").or_default() += 1;
            }
            Some((code, message)) => {
                resp.unprocessed_findings.push(Unprocessed {
                    finding_identifier: k,
                    error_code: code,
                    error_message: message,
                });
                *tally.entry(code).or_default() += 1;
            }
        }
    }
    state.inner.counters.finding_outcomes(tally);
    // Applied, but the answer is lost: the client cannot tell.
    if state.inner.rng.chance(live.faults.drop_after_apply) {
        return ApiReply::Drop;
    }
    json_reply(&resp)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ImportFailed {
    id: String,
    error_code: &'static str,
    error_message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct BatchImportResponse {
    failed_count: u64,
    success_count: u64,
    failed_findings: Vec<ImportFailed>,
}

/// `BatchImportFindings`.
pub(crate) async fn batch_import(
    state: &EmulatorState,
    live: &Live,
    caller: &Caller,
    body: &[u8],
) -> ApiReply {
    let items = match parse_batch_import(body) {
        Ok(r) => r,
        Err(e) => return ApiReply::Err(ApiError::invalid_input(e.0)),
    };
    if let Some(reply) = delay_and_fault(state, live).await {
        return reply;
    }
    let mut resp = BatchImportResponse {
        failed_count: 0,
        success_count: 0,
        failed_findings: Vec::new(),
    };
    let mut tally: HashMap<&'static str, u64> = HashMap::new();
    for item in items {
        match item {
            Ok(f) => {
                let o = state.inner.store.import(f, &caller.region);
                *tally.entry(o.as_str()).or_default() += 1;
                resp.success_count += 1;
            }
            Err(fail) => {
                *tally.entry(fail.code).or_default() += 1;
                resp.failed_count += 1;
                resp.failed_findings.push(ImportFailed {
                    id: fail.id,
                    error_code: fail.code,
                    error_message: fail.message,
                });
            }
        }
    }
    state.inner.counters.import_outcomes(tally);
    json_reply(&resp)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetFindingsResponse {
    findings: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// A `NextToken`: the last sequence number returned (cursor paging) or the
/// number of matches returned so far (offset paging, `o` before it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PageToken {
    After(u64),
    Offset(u64),
}

fn encode_token(generation: u64, t: PageToken) -> String {
    match t {
        PageToken::After(seq) => format!("sechub-emulator-{generation:x}-{seq:x}"),
        PageToken::Offset(n) => format!("sechub-emulator-{generation:x}-o{n:x}"),
    }
}

fn decode_token(token: &str, generation: u64, paging: Paging) -> Result<PageToken, ApiError> {
    let bad = || ApiError::invalid_input("NextToken: the token is invalid or has expired");
    let rest = token.strip_prefix("sechub-emulator-").ok_or_else(bad)?;
    let (g, s) = rest.split_once('-').ok_or_else(bad)?;
    let g = u64::from_str_radix(g, 16).map_err(|_| bad())?;
    // A token from before a reset would point into a different store; one
    // of the other paging mode (changed while paging) is as useless.
    if g != generation {
        return Err(bad());
    }
    match (paging, s.strip_prefix('o')) {
        (Paging::Offset, Some(n)) => u64::from_str_radix(n, 16)
            .map(PageToken::Offset)
            .map_err(|_| bad()),
        (Paging::Cursor, None) => u64::from_str_radix(s, 16)
            .map(PageToken::After)
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// `GetFindings`.
pub(crate) async fn get_findings(
    state: &EmulatorState,
    live: &Live,
    caller: &Caller,
    body: &[u8],
) -> ApiReply {
    let req = match parse_get_findings(body) {
        Ok(r) => r,
        Err(e) => return ApiReply::Err(ApiError::invalid_input(e.0)),
    };
    let filter = match FindingFilter::compile(req.filters) {
        Ok(f) => f,
        Err(e) => return ApiReply::Err(ApiError::invalid_input(e.0)),
    };
    let store = &state.inner.store;
    let generation = store.generation();
    let paging = live.semantics.get_findings_paging;
    let token = match req
        .next_token
        .as_deref()
        .map(|t| decode_token(t, generation, paging))
    {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => return ApiReply::Err(e),
    };
    if let Some(reply) = delay_and_fault(state, live).await {
        return reply;
    }
    let pred = |v: &super::filters::FilterView<'_>| {
        visible(&live.semantics, &caller.region, v.region) && filter.matches(v)
    };
    let (page, next) = match (paging, token) {
        (Paging::Offset, t) => {
            let offset = match t {
                Some(PageToken::Offset(n)) => n,
                _ => 0,
            };
            let (page, more) = store.page_at_offset(
                usize::try_from(offset).unwrap_or(usize::MAX),
                req.max_results,
                &pred,
            );
            let next = more.then(|| PageToken::Offset(offset + page.len() as u64));
            (page, next)
        }
        (Paging::Cursor, t) => {
            let after = match t {
                Some(PageToken::After(seq)) => Some(seq),
                _ => None,
            };
            let (page, next) = store.page(after, req.max_results, &pred);
            (page, next.map(PageToken::After))
        }
    };
    json_reply(&GetFindingsResponse {
        findings: page.iter().map(|s| s.render()).collect(),
        next_token: next.map(|t| encode_token(generation, t)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_visibility() {
        let strict = Semantics::default();
        assert!(visible(&strict, "us-east-1", "us-east-1"));
        assert!(!visible(&strict, "us-east-1", "us-west-2"));
        let home = Semantics {
            home_region: Some("us-east-1".into()),
            ..Semantics::default()
        };
        assert!(visible(&home, "us-east-1", "eu-west-1"));
        assert!(!visible(&home, "us-east-1", "cn-north-1"));
        assert!(!visible(&home, "eu-west-1", "us-east-1"));
        let any = Semantics {
            region_scope: RegionScope::Any,
            ..Semantics::default()
        };
        assert!(visible(&any, "us-east-1", "cn-north-1"));
    }

    #[test]
    fn tokens_round_trip_within_a_generation() {
        let c = Paging::Cursor;
        let o = Paging::Offset;
        let after = PageToken::After(77);
        assert_eq!(decode_token(&encode_token(3, after), 3, c), Ok(after));
        assert!(decode_token(&encode_token(3, after), 4, c).is_err());
        let off = PageToken::Offset(200);
        assert_eq!(decode_token(&encode_token(3, off), 3, o), Ok(off));
        // A token of the other paging mode is refused, not misread.
        assert!(decode_token(&encode_token(3, off), 3, c).is_err());
        assert!(decode_token(&encode_token(3, after), 3, o).is_err());
        for bad in [
            "",
            "x",
            "sechub-emulator-",
            "sechub-emulator-1",
            "sechub-emulator-zz-1",
            "sechub-emulator-1-ozz",
        ] {
            assert!(decode_token(bad, 1, c).is_err(), "{bad}");
            assert!(decode_token(bad, 1, o).is_err(), "{bad}");
        }
    }
}
