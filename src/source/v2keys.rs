//! Identifiers for `BatchUpdateFindingsV2` (the new Security Hub): every
//! record's [`FindingKey`], as the readers made it (`finding_info.uid` or
//! ASFF `Id`, the product ARN in `::product/` form), becomes one of the two
//! forms the V2 operation takes.
//!
//! - The OCSF triple `{cloud.account.uid, finding_info.uid,
//!   metadata.product.uid}` when the record has all three (an ASFF record's
//!   `AwsAccountId`, `Id` and `ProductArn`, the product ARN turned into its
//!   `::productv2/` form, with a notice: the two services hold separate
//!   copies of a finding, and the mapping is the one AWS's own solution
//!   uses).
//! - Else `metadata.uid`, when the record has it.
//! - Else the record is invalid, saying what is missing.
//!
//! Keys already in V2 form (from a `batch-update-findings-v2`
//! `--cli-input-json`) pass unchanged. The engine keeps the two forms in
//! separate requests (`UpdateOperation::key_kind`).

use std::sync::Arc;

use crate::arn::to_v2_product_arn;
use crate::model::{FindingKey, InvalidRecord, SourceItem};

use super::{Notice, Notices};

/// What an invalid record says when it has neither V2 form.
pub(crate) const NO_V2_IDENTIFIERS: &str = "no identifiers for BatchUpdateFindingsV2: expected \
     cloud.account.uid with finding_info.uid and metadata.product.uid (or AwsAccountId, Id and \
     ProductArn), or metadata.uid";

/// Turns every record's key into a `BatchUpdateFindingsV2` key (see the
/// module's documentation). `notices` hears once per input that ASFF
/// identifiers were mapped.
pub fn v2_keys<E>(
    input: impl Iterator<Item = Result<SourceItem, E>>,
    notices: Notices,
) -> impl Iterator<Item = Result<SourceItem, E>> {
    let mut told: Vec<Arc<str>> = Vec::new();
    input.map(move |item| {
        let Ok(SourceItem::Record(mut r)) = item else {
            return item;
        };
        if r.key.account_uid.is_some() || r.key.product_arn.is_empty() {
            // Already a V2 key (--cli-input-json's triples and MetadataUids).
            return Ok(SourceItem::Record(r));
        }
        let cur = r.current.as_deref();
        let account = cur.and_then(|c| c.account_id.as_deref());
        match account {
            Some(account) if !r.key.id.is_empty() => {
                if !cur.is_some_and(|c| c.ocsf) && !told.contains(&r.location.file) {
                    told.push(r.location.file.clone());
                    notices.send(Notice::AsffForV2 {
                        input: r.location.file.clone(),
                    });
                }
                let product = to_v2_product_arn(&r.key.product_arn).into_owned();
                r.key = FindingKey::ocsf(account, std::mem::take(&mut r.key.id), product);
                Ok(SourceItem::Record(r))
            }
            _ => match cur.and_then(|c| c.metadata_uid.clone()) {
                Some(uid) => {
                    let product = to_v2_product_arn(&r.key.product_arn).into_owned();
                    r.key = FindingKey::new(uid, product);
                    Ok(SourceItem::Record(r))
                }
                None => Ok(SourceItem::Invalid(InvalidRecord {
                    location: r.location,
                    column: Some("cloud.account.uid".into()),
                    reason: NO_V2_IDENTIFIERS.into(),
                    key: Some(r.key),
                })),
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CurrentState, Location, SourceRecord};
    use std::convert::Infallible;

    fn record(key: FindingKey, cur: Option<CurrentState>) -> Result<SourceItem, Infallible> {
        let mut r = SourceRecord::new(
            Location {
                file: "in".into(),
                row: 1,
                detail: None,
            },
            key,
        );
        r.current = cur.map(Arc::new);
        Ok(SourceItem::Record(r))
    }

    fn keys(items: Vec<Result<SourceItem, Infallible>>) -> (Vec<FindingKey>, usize, Vec<String>) {
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let h = heard.clone();
        let notices = Notices::to(move |n| h.lock().unwrap().push(n.to_string()));
        let mut out = Vec::new();
        let mut invalid = 0;
        for item in v2_keys(items.into_iter(), notices) {
            match item.unwrap() {
                SourceItem::Record(r) => out.push(r.key),
                SourceItem::Invalid(_) => invalid += 1,
            }
        }
        let heard = heard.lock().unwrap().clone();
        (out, invalid, heard)
    }

    const V1: &str = "arn:aws:securityhub:us-east-1::product/aws/guardduty";
    const V2: &str = "arn:aws:securityhub:us-east-1::productv2/aws/guardduty";

    #[test]
    fn the_triple_is_preferred_then_metadata_uid() {
        let ocsf = CurrentState {
            account_id: Some("111122223333".into()),
            metadata_uid: Some("m-1".into()),
            ocsf: true,
            ..CurrentState::default()
        };
        let only_uid = CurrentState {
            metadata_uid: Some("m-2".into()),
            ocsf: true,
            ..CurrentState::default()
        };
        let (k, invalid, heard) = keys(vec![
            record(FindingKey::new("f-1", V1), Some(ocsf)),
            record(FindingKey::new("f-2", V1), Some(only_uid)),
            record(FindingKey::new("f-3", V1), None),
        ]);
        assert_eq!(k[0], FindingKey::ocsf("111122223333", "f-1", V2));
        assert_eq!(k[1], FindingKey::new("m-2", V2));
        assert_eq!(invalid, 1);
        assert!(heard.is_empty(), "OCSF input: no notice ({heard:?})");
    }

    #[test]
    fn asff_identifiers_are_mapped_with_one_notice() {
        let asff = CurrentState {
            account_id: Some("111122223333".into()),
            ..CurrentState::default()
        };
        let (k, invalid, heard) = keys(vec![
            record(FindingKey::new("a-1", V1), Some(asff.clone())),
            record(FindingKey::new("a-2", V1), Some(asff)),
        ]);
        assert_eq!(invalid, 0);
        assert_eq!(k[1], FindingKey::ocsf("111122223333", "a-2", V2));
        assert_eq!(heard.len(), 1, "{heard:?}");
        assert!(heard[0].contains("productv2"), "{}", heard[0]);
    }

    #[test]
    fn v2_keys_pass_unchanged() {
        let t = FindingKey::ocsf("1", "f", V2);
        let m = FindingKey::new("m-9", "");
        let (k, invalid, _) = keys(vec![record(t.clone(), None), record(m.clone(), None)]);
        assert_eq!((k, invalid), (vec![t, m], 0));
    }
}
