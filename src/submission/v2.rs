//! `BatchUpdateFindingsV2`, the new Security Hub's update operation, as the
//! engine's second [`UpdateOperation`], and the `DescribeSecurityHubV2`
//! preflight.
//!
//! Keys and decisions are the program's own ([`FindingKey`], [`Decision`]),
//! read in V2 terms:
//! - a key with [`FindingKey::account_uid`] is an OCSF triple
//!   (`CloudAccountUid`, `FindingInfoUid` = `id`, `MetadataProductUid` =
//!   `product_arn`); a key without one names the finding by `metadata.uid`
//!   (`id`). [`UpdateOperation::key_kind`] keeps the two forms apart: the
//!   service refuses a request that has both `MetadataUids` and
//!   `FindingIdentifiers`.
//! - a decision's `Comment`, `SeverityId` and `StatusId` are sent, and only
//!   those that are set: a comment-only decision never sends `StatusId`
//!   (the AWS solution that always sent it reset statuses to New).
//!
//! The service's answer names findings by the form they were sent in; every
//! member of a per-entry result is optional, so an entry that names no
//! finding this request sent is ignored and the finding it may have meant
//! counts as missing from the response (retried).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use aws_sdk_securityhub::error::SdkError;
use aws_sdk_securityhub::operation::RequestId;
use aws_sdk_securityhub::types::OcsfFindingIdentifier;

use super::{BatchResult, CallError, Submitter, call_error};
use crate::decision::Decision;
use crate::engine::{Reported, UpdateOperation};
use crate::model::{CurrentState, FindingKey};
use crate::retry::{CallDisposition, CallFailure, EntryDisposition};

/// The most findings one `BatchUpdateFindingsV2` request may name (model:
/// `MetadataUids` and `FindingIdentifiers` 0–100).
pub(crate) const MAX_CHUNK_V2: usize = 100;

/// The code recorded for an unprocessed entry that carries no `ErrorCode`
/// (every member of the V2 result shapes is optional).
pub(crate) const NO_ERROR_CODE: &str = "NoErrorCode";

/// `BatchUpdateFindingsV2`: findings named by OCSF triple or `metadata.uid`,
/// the decision's `Comment`/`SeverityId`/`StatusId`, the V2 per-finding
/// codes of [`crate::retry::classify_unprocessed_v2`].
#[derive(Clone)]
pub struct BatchUpdateFindingsV2 {
    submitter: Arc<Submitter>,
}

impl BatchUpdateFindingsV2 {
    /// The operation, sending through `submitter`'s clients.
    pub fn new(submitter: Arc<Submitter>) -> Self {
        BatchUpdateFindingsV2 { submitter }
    }
}

impl UpdateOperation for BatchUpdateFindingsV2 {
    type Key = FindingKey;
    type Decision = Decision;

    const NAME: &'static str = "BatchUpdateFindingsV2";
    const MAX_CHUNK: usize = MAX_CHUNK_V2;

    fn send(
        &self,
        region: &str,
        decision: &Decision,
        keys: &[FindingKey],
    ) -> impl Future<Output = Result<BatchResult, CallError>> + Send {
        self.submitter.send_v2(region, decision, keys)
    }

    fn classify_entry(code: &str) -> EntryDisposition {
        crate::retry::classify_unprocessed_v2(code)
    }

    fn classify_call(failure: &CallFailure) -> CallDisposition {
        crate::retry::classify_call_v2(failure)
    }

    fn key_kind(key: &FindingKey) -> u8 {
        u8::from(key.account_uid.is_some())
    }

    #[inline]
    fn admit(key: FindingKey, decision: Arc<Decision>) -> (FindingKey, Arc<Decision>) {
        (key, decision)
    }

    fn report(
        key: FindingKey,
        decision: Arc<Decision>,
        current: Option<&CurrentState>,
        updated: bool,
    ) -> Reported {
        let prior = if updated {
            crate::revert::prior_fragment(&decision, current).map(Arc::new)
        } else {
            None
        };
        Reported {
            key,
            applied: Some(decision),
            prior,
        }
    }
}

impl Submitter {
    /// Sends one `BatchUpdateFindingsV2` request for `keys` (all of one
    /// form) to `region`, setting exactly the V2 fields `decision` sets.
    pub(crate) async fn send_v2(
        &self,
        region: &str,
        decision: &Decision,
        keys: &[FindingKey],
    ) -> Result<BatchResult, CallError> {
        let mut request = self.client(region).batch_update_findings_v2();
        // Both forms in one request are refused by the service; the engine
        // never builds one (key_kind), and this keeps it so if it did.
        let triples: Vec<&FindingKey> = keys.iter().filter(|k| k.account_uid.is_some()).collect();
        if triples.len() == keys.len() {
            request = request.set_finding_identifiers(Some(
                triples
                    .iter()
                    .map(|k| {
                        OcsfFindingIdentifier::builder()
                            .cloud_account_uid(k.account_uid.as_deref().unwrap_or_default())
                            .finding_info_uid(&k.id)
                            .metadata_product_uid(&k.product_arn)
                            .build()
                    })
                    .collect(),
            ));
        } else if triples.is_empty() {
            request = request.set_metadata_uids(Some(keys.iter().map(|k| k.id.clone()).collect()));
        } else {
            return Err(CallError {
                failure: CallFailure {
                    status: None,
                    code: None,
                    transport: Some(crate::retry::Transport::Other),
                },
                code: "MixedIdentifierForms".into(),
                message: "one request cannot carry both MetadataUids and FindingIdentifiers".into(),
                request_id: None,
            });
        }
        request = request
            .set_comment(decision.comment.clone())
            .set_severity_id(decision.severity_id)
            .set_status_id(decision.status_id);
        let out = request.send().await.map_err(call_error)?;
        // The answer names findings as they were sent: find the sent key.
        let by_triple: HashMap<(&str, &str, &str), &FindingKey> = keys
            .iter()
            .filter_map(|k| Some(((k.account_uid.as_deref()?, &*k.id, &*k.product_arn), k)))
            .collect();
        let by_uid: HashMap<&str, &FindingKey> = keys
            .iter()
            .filter(|k| k.account_uid.is_none())
            .map(|k| (k.id.as_str(), k))
            .collect();
        let key_of = |ident: Option<&OcsfFindingIdentifier>, uid: Option<&str>| {
            if let Some(i) = ident {
                let t = (
                    i.cloud_account_uid().unwrap_or_default(),
                    i.finding_info_uid().unwrap_or_default(),
                    i.metadata_product_uid().unwrap_or_default(),
                );
                if let Some(k) = by_triple.get(&t) {
                    return Some((*k).clone());
                }
            }
            uid.and_then(|u| by_uid.get(u)).map(|k| (*k).clone())
        };
        Ok(BatchResult {
            processed: out
                .processed_findings()
                .iter()
                .filter_map(|p| key_of(p.finding_identifier(), p.metadata_uid()))
                .collect(),
            unprocessed: out
                .unprocessed_findings()
                .iter()
                .filter_map(|u| {
                    Some((
                        key_of(u.finding_identifier(), u.metadata_uid())?,
                        u.error_code()
                            .map(|c| c.as_str().to_owned())
                            .unwrap_or_else(|| NO_ERROR_CODE.to_owned()),
                        u.error_message().unwrap_or_default().to_owned(),
                    ))
                })
                .collect(),
            request_id: out.request_id().map(str::to_owned),
        })
    }

    /// `DescribeSecurityHubV2` in `region`: whether the new Security Hub is
    /// enabled there (`Ok(false)` on `ResourceNotFoundException`, which is
    /// how the service says it is not).
    pub(crate) async fn security_hub_v2_enabled(&self, region: &str) -> Result<bool, CallError> {
        match self.client(region).describe_security_hub_v2().send().await {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(se)) if se.err().is_resource_not_found_exception() => {
                Ok(false)
            }
            Err(e) => Err(call_error(e)),
        }
    }
}
