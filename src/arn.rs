//! Product ARN parsing: the Region a finding must be updated in comes from
//! its `ProductArn` (field 4), never from its `Id` (third-party Ids are free
//! text). See docs/service-facts.md §10.

use std::borrow::Cow;

/// The parts of a Security Hub product ARN that routing needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductArn<'a> {
    /// `aws`, `aws-cn`, `aws-us-gov`, ...
    pub partition: &'a str,
    /// The Region the product (and so the finding) lives in.
    pub region: &'a str,
    /// The account part; empty for AWS-integrated products.
    pub account: &'a str,
    /// `product/<company>/<product>` (or `productv2/...`).
    pub resource: &'a str,
}

/// Why a string is not a usable Security Hub product ARN.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ArnError {
    /// Does not have the six `:`-separated fields of an ARN.
    #[error("not an ARN (expected arn:<partition>:securityhub:<region>:<account>:product/...)")]
    NotAnArn,
    /// An ARN, but of another service.
    #[error("not a Security Hub ARN (service is {0:?}, expected \"securityhub\")")]
    WrongService(String),
    /// A Security Hub ARN, but not of a product.
    #[error("not a product ARN (resource must start with product/ or productv2/)")]
    NotAProduct,
    /// The Region field does not look like a Region of a known partition.
    #[error("Region {0:?} is not a valid Region name for partition {1:?}")]
    BadRegion(String, String),
}

/// Parses a product ARN such as
/// `arn:aws:securityhub:us-east-1::product/aws/guardduty`.
pub(crate) fn parse_product_arn(s: &str) -> Result<ProductArn<'_>, ArnError> {
    let mut parts = s.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(ArnError::NotAnArn);
    };
    if service != "securityhub" {
        return Err(ArnError::WrongService(service.to_owned()));
    }
    if !(resource.starts_with("product/") || resource.starts_with("productv2/")) {
        return Err(ArnError::NotAProduct);
    }
    if !is_region_of_partition(region, partition) {
        return Err(ArnError::BadRegion(region.to_owned(), partition.to_owned()));
    }
    Ok(ProductArn {
        partition,
        region,
        account,
        resource,
    })
}

/// The Region of a product ARN, if it parses.
pub(crate) fn region_of(product_arn: &str) -> Option<&str> {
    parse_product_arn(product_arn).ok().map(|a| a.region)
}

/// Converts the new Security Hub's `::productv2/` product UIDs to the
/// `::product/` form that `BatchUpdateFindings` needs (docs/service-facts.md §7.1, §9).
pub(crate) fn to_v1_product_arn(s: &str) -> Cow<'_, str> {
    // Only the resource (sixth field, as parse_product_arn splits it) is
    // converted: a ":productv2/" elsewhere, e.g. in the account field, must
    // not be mistaken for it (found by fuzzing the readers).
    match s.splitn(6, ':').nth(5) {
        Some(resource) if resource.starts_with("productv2/") => {
            let prefix = &s[..s.len() - resource.len()];
            Cow::Owned(format!(
                "{prefix}product/{}",
                &resource["productv2/".len()..]
            ))
        }
        _ => Cow::Borrowed(s),
    }
}

/// Converts a `::product/` product ARN to the new Security Hub's
/// `::productv2/` form (what `BatchUpdateFindingsV2`'s `MetadataProductUid`
/// takes); the inverse of [`to_v1_product_arn`]. Other values are kept.
pub(crate) fn to_v2_product_arn(s: &str) -> Cow<'_, str> {
    match s.splitn(6, ':').nth(5) {
        Some(resource) if resource.starts_with("product/") => {
            let prefix = &s[..s.len() - resource.len()];
            Cow::Owned(format!(
                "{prefix}productv2/{}",
                &resource["product/".len()..]
            ))
        }
        _ => Cow::Borrowed(s),
    }
}

/// Region name shapes per partition (docs/service-facts.md §10, from botocore partitions.json).
fn is_region_of_partition(region: &str, partition: &str) -> bool {
    let prefixes: &[&str] = match partition {
        "aws" => &["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"],
        "aws-cn" => &["cn"],
        "aws-us-gov" => &["us-gov"],
        "aws-iso" => &["us-iso"],
        "aws-iso-b" => &["us-isob"],
        "aws-iso-e" => &["eu-isoe"],
        "aws-iso-f" => &["us-isof"],
        "aws-eusc" => &["eusc-de"],
        _ => return false,
    };
    prefixes.iter().any(|p| {
        // <prefix>-<word>-<digits>, where the prefix itself may contain '-'.
        let Some(rest) = region.strip_prefix(p).and_then(|r| r.strip_prefix('-')) else {
            return false;
        };
        let Some((word, digits)) = rest.rsplit_once('-') else {
            return false;
        };
        !word.is_empty()
            && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !word.contains('-')
            && !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aws_integrated_and_custom_products() {
        let a = parse_product_arn("arn:aws:securityhub:us-west-2::product/aws/guardduty").unwrap();
        assert_eq!((a.partition, a.region, a.account), ("aws", "us-west-2", ""));
        let c = parse_product_arn(
            "arn:aws:securityhub:us-east-1:111111111111:product/111111111111/default",
        )
        .unwrap();
        assert_eq!(c.account, "111111111111");
        assert_eq!(c.resource, "product/111111111111/default");
    }

    #[test]
    fn partitions_are_checked() {
        assert_eq!(
            region_of("arn:aws-cn:securityhub:cn-north-1::product/aws/securityhub"),
            Some("cn-north-1")
        );
        assert_eq!(
            region_of("arn:aws-us-gov:securityhub:us-gov-west-1::product/aws/securityhub"),
            Some("us-gov-west-1")
        );
        // A China Region under the aws partition is a mistake in the export.
        assert!(matches!(
            parse_product_arn("arn:aws:securityhub:cn-north-1::product/aws/securityhub"),
            Err(ArnError::BadRegion(..))
        ));
        assert!(matches!(
            parse_product_arn("arn:aws:securityhub:us-gov-west-1::product/aws/x"),
            Err(ArnError::BadRegion(..))
        ));
    }

    #[test]
    fn rejects_non_product_arns() {
        assert_eq!(parse_product_arn("guardduty"), Err(ArnError::NotAnArn));
        assert!(matches!(
            parse_product_arn("arn:aws:guardduty:us-east-1:1:detector/x"),
            Err(ArnError::WrongService(_))
        ));
        assert_eq!(
            parse_product_arn(
                "arn:aws:securityhub:us-east-1:123456789012:security-control/IAM.1/finding/x"
            ),
            Err(ArnError::NotAProduct)
        );
        assert!(parse_product_arn("arn:aws:securityhub:::product/aws/x").is_err());
    }

    #[test]
    fn converts_productv2() {
        assert_eq!(
            to_v1_product_arn("arn:aws:securityhub:us-east-1::productv2/aws/guardduty"),
            "arn:aws:securityhub:us-east-1::product/aws/guardduty"
        );
        let v1 = "arn:aws:securityhub:us-east-1::product/aws/guardduty";
        assert!(matches!(to_v1_product_arn(v1), Cow::Borrowed(_)));
        // Only the resource field is converted.
        assert_eq!(
            to_v1_product_arn("arn:aws:securityhub:us-east-1:productv2/:productv2/aws/x"),
            "arn:aws:securityhub:us-east-1:productv2/:product/aws/x"
        );
        let odd = "arn:aws:securityhub:us-east-1::product/aws/x:productv2/y";
        assert!(matches!(to_v1_product_arn(odd), Cow::Borrowed(_)));
        assert_eq!(to_v1_product_arn("productv2/x"), "productv2/x");
    }
}
