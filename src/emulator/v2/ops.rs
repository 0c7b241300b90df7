//! The three V2 operations, run once a request passed authentication and
//! throttling: the "enabled in this Region" check, validation, conflict
//! holds, injected latency and faults, the store call and the response.
//!
//! Error codes are the V2 model's: `ValidationException` (400),
//! `AccessDeniedException` (403), `ResourceNotFoundException` (404, only
//! `DescribeSecurityHubV2`), `ConflictException` (409),
//! `ThrottlingException` (429, from the HTTP layer) and
//! `InternalServerException` (500).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value, json};

use super::config::{ConflictScope, DisabledError, ResultIdentifiers};
use super::filters::OcsfFilter;
use super::store::{Hold, Ident, V2Store};
use super::validate::{Form, parse_batch_update_v2, parse_get_findings_v2};
use crate::emulator::asff::partition_of_region;
use crate::emulator::config::{DuplicatePolicy, Paging};
use crate::emulator::faults::RequestFault;
use crate::emulator::ops::{ApiError, ApiReply, Caller, visible};
use crate::emulator::state::{EmulatorState, Live};
use crate::emulator::store::CONCURRENT_UPDATE;

pub(crate) const VALIDATION: &str = "ValidationException";
pub(crate) const NOT_FOUND: &str = "ResourceNotFoundException";
pub(crate) const CONFLICT: &str = "ConflictException";
pub(crate) const INTERNAL: &str = "InternalServerException";
/// An entry code the model does not know (injected).
const UNKNOWN: (&str, &str) = ("ServiceUnavailableException", "Service Unavailable");
/// An entry without code or message (injected); counted as `NoErrorCode`.
const MISSING: (&str, &str) = ("NoErrorCode", "");

fn err(status: u16, code: &'static str, message: impl Into<String>) -> ApiReply {
    ApiReply::Err(ApiError {
        status,
        code,
        message: message.into(),
    })
}

fn json_reply(v: &Value) -> ApiReply {
    match serde_json::to_vec(v) {
        Ok(b) => ApiReply::Ok(b),
        Err(e) => err(500, INTERNAL, format!("could not encode the response: {e}")),
    }
}

/// The answer of `BatchUpdateFindingsV2`/`GetFindingsV2` where the new
/// Security Hub is not enabled (UNVERIFIED; see `V2Semantics::disabled_error`).
fn disabled(live: &Live, state: &EmulatorState, caller: &Caller) -> Option<ApiReply> {
    if live.v2.enabled_in(&caller.region) {
        return None;
    }
    let message = format!(
        "Security Hub is not enabled for account {} in Region {}",
        state.inner.account_id, caller.region
    );
    Some(match live.v2.semantics.disabled_error {
        DisabledError::AccessDeniedException => err(403, "AccessDeniedException", message),
        DisabledError::ValidationException => err(400, VALIDATION, message),
    })
}

/// Latency, then a request-level fault (500 → `InternalServerException`,
/// 503, dropped connection), drawn as in V1.
async fn delay_and_fault(state: &EmulatorState, live: &Live) -> Option<ApiReply> {
    let delay = state.inner.rng.latency(&live.faults);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match state.inner.rng.request_fault(&live.faults)? {
        RequestFault::Internal => Some(err(500, INTERNAL, "Internal service failure")),
        RequestFault::Unavailable => Some(err(
            503,
            "ServiceUnavailableException",
            "Service Unavailable",
        )),
        RequestFault::Drop => Some(ApiReply::Drop),
    }
}

/// Releases held findings however the request ends.
struct Holds<'a> {
    store: &'a V2Store,
    slots: Vec<(usize, usize)>, // (entry index in the request, store slot)
}

impl Drop for Holds<'_> {
    fn drop(&mut self) {
        for (_, slot) in self.slots.drain(..) {
            self.store.release(slot);
        }
    }
}

fn triple_json(t: &super::ocsf::OcsfTriple) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// `BatchUpdateFindingsV2`.
pub(crate) async fn batch_update_v2(
    state: &EmulatorState,
    live: &Live,
    caller: &Caller,
    body: &[u8],
) -> ApiReply {
    if let Some(r) = disabled(live, state, caller) {
        return r;
    }
    let sem = &live.v2.semantics;
    let req = match parse_batch_update_v2(body, sem) {
        Ok(r) => r,
        Err(e) => return err(400, VALIDATION, e.0),
    };
    let ids = &req.ids;
    let mut outcome: Vec<Option<(&'static str, &'static str)>> = vec![None; ids.len()];
    let dup = (
        VALIDATION,
        "Finding identifier is duplicated in the request",
    );
    let mut first: HashMap<&Ident, usize> = HashMap::with_capacity(ids.len());
    for (i, k) in ids.iter().enumerate() {
        if let Some(&j) = first.get(k) {
            outcome[i] = Some(dup);
            if sem.duplicates == DuplicatePolicy::AllRejected {
                outcome[j] = Some(dup);
            }
        } else {
            first.insert(k, i);
        }
    }

    let store = &state.inner.v2_store;
    let see = |r: &str| visible(&live.semantics, &caller.region, r);
    let mut holds = Holds {
        store,
        slots: Vec::with_capacity(ids.len()),
    };
    let mut busy = false;
    for (i, k) in ids.iter().enumerate() {
        if outcome[i].is_some() {
            continue;
        }
        match store.hold(k, &see) {
            Hold::NotFound => outcome[i] = Some((NOT_FOUND, "Finding not found")),
            Hold::Busy => {
                busy = true;
                outcome[i] = Some((CONFLICT, "Concurrent finding updates detected"));
            }
            Hold::Held(slot) => holds.slots.push((i, slot)),
        }
    }
    if busy && sem.conflict_scope == ConflictScope::WholeRequest {
        return err(
            409,
            CONFLICT,
            "Another request is updating some of these findings; retry later",
        );
    }

    if let Some(reply) = delay_and_fault(state, live).await {
        return reply; // `holds` releases everything unapplied
    }
    if state.inner.rng.chance(live.v2.faults.request_conflict) {
        return err(409, CONFLICT, "Concurrent finding updates detected");
    }

    let faults = state
        .inner
        .rng
        .finding_faults(&live.faults, holds.slots.len());
    let omit = state
        .inner
        .rng
        .chances(live.v2.faults.omit_result, holds.slots.len());
    let unknown = state
        .inner
        .rng
        .chances(live.v2.faults.unknown_error_code, holds.slots.len());
    let missing = state
        .inner
        .rng
        .chances(live.v2.faults.missing_error_code, holds.slots.len());
    let mut omitted = vec![false; ids.len()];
    for (n, (&(i, slot), fault)) in holds.slots.iter().zip(faults).enumerate() {
        if omit[n] {
            omitted[i] = true;
            continue;
        }
        if unknown[n] {
            outcome[i] = Some(UNKNOWN);
            continue;
        }
        if missing[n] {
            outcome[i] = Some(MISSING);
            continue;
        }
        outcome[i] = match fault {
            Some(f) if f == CONCURRENT_UPDATE => {
                Some((CONFLICT, "Concurrent finding updates detected"))
            }
            Some(_) => Some((INTERNAL, "Internal service failure")),
            None => store
                .apply(slot, &req.update)
                .err()
                .map(|()| (CONFLICT, "Concurrent finding updates detected")),
        };
    }
    let both = sem.result_identifiers == ResultIdentifiers::Both;
    let known: HashMap<usize, usize> = if both {
        holds.slots.iter().copied().collect()
    } else {
        HashMap::new()
    };
    drop(holds);

    let mut processed = Vec::new();
    let mut unprocessed = Vec::new();
    let mut tally: BTreeMap<&'static str, u64> = BTreeMap::new();
    for (i, k) in ids.iter().enumerate() {
        if omitted[i] {
            *tally.entry("Omitted").or_default() += 1;
            continue;
        }
        let mut entry = Map::new();
        match k {
            Ident::Uid(u) => {
                entry.insert("MetadataUid".into(), Value::from(u.as_str()));
            }
            Ident::Triple(t) => {
                entry.insert("FindingIdentifier".into(), triple_json(t));
            }
        }
        if let Some((uid, triple)) = known.get(&i).and_then(|&slot| store.identifiers(slot)) {
            match req.form {
                Form::MetadataUids => {
                    entry.insert("FindingIdentifier".into(), triple_json(&triple))
                }
                Form::FindingIdentifiers => entry.insert("MetadataUid".into(), Value::from(uid)),
            };
        }
        match outcome[i] {
            None => {
                *tally.entry("Processed").or_default() += 1;
                processed.push(Value::Object(entry));
            }
            Some((code, message)) => {
                *tally.entry(code).or_default() += 1;
                if (code, message) != MISSING {
                    entry.insert("ErrorCode".into(), Value::from(code));
                    entry.insert("ErrorMessage".into(), Value::from(message));
                }
                unprocessed.push(Value::Object(entry));
            }
        }
    }
    state.inner.counters.v2_finding_outcomes(tally);
    json_reply(&json!({
        "ProcessedFindings": processed,
        "UnprocessedFindings": unprocessed,
    }))
}

const TOKEN_PREFIX: &str = "sechub-emulator-v2-";

/// Where the next page starts: a store position (cursor paging) or the
/// number of matches returned so far (offset paging, `o` before it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PagePos {
    At(usize),
    Offset(usize),
}

/// A page token bound to the store generation and to the query: a token
/// used with other filters is refused as the service does ("Invalid
/// NextToken: Input Query has changed", docs/service-facts.md §13).
fn encode_token(generation: u64, pos: PagePos, query: u64) -> String {
    match pos {
        PagePos::At(p) => format!("{TOKEN_PREFIX}{generation:x}-{p:x}-{query:x}"),
        PagePos::Offset(n) => format!("{TOKEN_PREFIX}{generation:x}-o{n:x}-{query:x}"),
    }
}

fn decode_token(
    token: &str,
    generation: u64,
    query: u64,
    paging: Paging,
) -> Result<PagePos, String> {
    let bad = || "Invalid NextToken: the token is invalid or has expired".to_owned();
    let rest = token.strip_prefix(TOKEN_PREFIX).ok_or_else(bad)?;
    let mut parts = rest.split('-');
    let (Some(g), Some(p), Some(q), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let num = |s: &str| u64::from_str_radix(s, 16).map_err(|_| bad());
    let (g, q) = (num(g)?, num(q)?);
    // A token from before a reset, or of the other paging mode, is as useless.
    let pos = match (paging, p.strip_prefix('o')) {
        (Paging::Offset, Some(n)) => PagePos::Offset(num(n)? as usize),
        (Paging::Cursor, None) => PagePos::At(num(p)? as usize),
        _ => return Err(bad()),
    };
    if g != generation {
        return Err(bad());
    }
    if q != query {
        return Err("Invalid NextToken: Input Query has changed".to_owned());
    }
    Ok(pos)
}

fn query_hash(filters: Option<&Value>) -> u64 {
    let text = filters.map(Value::to_string).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `GetFindingsV2`.
pub(crate) async fn get_findings_v2(
    state: &EmulatorState,
    live: &Live,
    caller: &Caller,
    body: &[u8],
) -> ApiReply {
    if let Some(r) = disabled(live, state, caller) {
        return r;
    }
    let req = match parse_get_findings_v2(body) {
        Ok(r) => r,
        Err(e) => return err(400, VALIDATION, e.0),
    };
    let filter = match OcsfFilter::compile(req.filters.as_ref()) {
        Ok(f) => f,
        Err(e) => return err(400, VALIDATION, e.0),
    };
    let store = &state.inner.v2_store;
    let generation = store.generation();
    let query = query_hash(req.filters.as_ref());
    let paging = live.semantics.get_findings_paging;
    let from = match req.next_token.as_deref() {
        None => match paging {
            Paging::Cursor => PagePos::At(0),
            Paging::Offset => PagePos::Offset(0),
        },
        Some(t) => match decode_token(t, generation, query, paging) {
            Ok(p) => p,
            Err(m) => return err(400, VALIDATION, m),
        },
    };
    if let Some(reply) = delay_and_fault(state, live).await {
        return reply;
    }
    let pred = |r: &super::ocsf::Record| {
        visible(&live.semantics, &caller.region, &r.region) && filter.matches(r)
    };
    let (page, next) = match from {
        PagePos::At(from) => {
            let (page, next) = store.page(from, req.max_results, &pred);
            (page, next.map(PagePos::At))
        }
        PagePos::Offset(n) => {
            let (page, more) = store.page_at_offset(n, req.max_results, &pred);
            let next = more.then(|| PagePos::Offset(n + page.len()));
            (page, next)
        }
    };
    let mut out = Map::new();
    out.insert("Findings".into(), Value::Array(page));
    if let Some(p) = next {
        out.insert(
            "NextToken".into(),
            Value::from(encode_token(generation, p, query)),
        );
    }
    json_reply(&Value::Object(out))
}

/// When the emulated hub was enabled (any fixed instant will do).
const SUBSCRIBED_AT: &str = "2025-12-02T00:00:00.000Z";

/// `DescribeSecurityHubV2`: 404 `ResourceNotFoundException` where the new
/// Security Hub is not enabled.
pub(crate) async fn describe_hub_v2(
    state: &EmulatorState,
    live: &Live,
    caller: &Caller,
) -> ApiReply {
    if !live.v2.enabled_in(&caller.region) {
        return err(
            404,
            NOT_FOUND,
            format!(
                "Security Hub V2 is not enabled for account {} in Region {}",
                state.inner.account_id, caller.region
            ),
        );
    }
    if let Some(reply) = delay_and_fault(state, live).await {
        return reply;
    }
    let partition = partition_of_region(&caller.region);
    json_reply(&json!({
        "HubV2Arn": format!(
            "arn:{partition}:securityhub:{}:{}:hubv2/default",
            caller.region, state.inner.account_id
        ),
        "SubscribedAt": SUBSCRIBED_AT,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_generation_and_query() {
        let q = query_hash(Some(&json!({"CompositeFilters": []})));
        let (c, o) = (Paging::Cursor, Paging::Offset);
        let t = encode_token(2, PagePos::At(150), q);
        assert_eq!(decode_token(&t, 2, q, c), Ok(PagePos::At(150)));
        assert!(
            decode_token(&t, 3, q, c)
                .unwrap_err()
                .contains("invalid or has expired")
        );
        assert_eq!(
            decode_token(&t, 2, query_hash(None), c).unwrap_err(),
            "Invalid NextToken: Input Query has changed"
        );
        let off = encode_token(2, PagePos::Offset(300), q);
        assert_eq!(decode_token(&off, 2, q, o), Ok(PagePos::Offset(300)));
        // A token of the other paging mode is refused, not misread.
        assert!(decode_token(&off, 2, q, c).is_err());
        assert!(decode_token(&t, 2, q, o).is_err());
        for bad in [
            "",
            "x",
            TOKEN_PREFIX,
            "sechub-emulator-v2-1-2",
            "sechub-emulator-v2-zz-1-1",
            "sechub-emulator-v2-1-ozz-1",
        ] {
            assert!(decode_token(bad, 1, q, c).is_err(), "{bad}");
            assert!(decode_token(bad, 1, q, o).is_err(), "{bad}");
        }
    }
}
