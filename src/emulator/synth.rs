//! Synthetic findings: a deterministic generator of realistic ASFF findings
//! (consolidated control findings, GuardDuty, Inspector, Prowler, Tenable and
//! a custom product, across Regions and accounts), used for synthetic seeding
//! and for the committed `samples/`.
//!
//! Finding `n` of a spec is a pure function of (spec, n): the store keeps only
//! the index and regenerates the document when it is read, which is what lets
//! it hold a million findings in a few hundred megabytes. Nothing here touches
//! the store or HTTP.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::asff::{
    ComplianceStatus, RecordState, SeverityLabel, WorkflowStatus, format_timestamp, parse_timestamp,
};
use super::rng::SplitMix64;
use crate::model::FindingKey;

/// What to generate. Defaults: 4 Regions, 3 accounts, partition `aws`.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticSpec {
    /// How many findings.
    pub count: usize,
    /// Seed: the same seed gives the same findings, byte for byte.
    pub seed: u64,
    /// Regions to spread findings over (must not be empty).
    pub regions: Vec<String>,
    /// 12-digit account ids to spread findings over (must not be empty).
    pub accounts: Vec<String>,
    /// ARN partition (`aws`, `aws-cn`, `aws-us-gov`, ...).
    pub partition: String,
    /// The data set's "now": every timestamp is at most this, in Unix ms.
    pub now_ms: i64,
}

/// Number of findings in `samples/findings.json`.
pub(crate) const SAMPLE_COUNT: usize = 1_000;
/// Seed of the committed samples.
pub(crate) const SAMPLE_SEED: u64 = 20_261_121;
const DEFAULT_NOW: &str = "2026-11-01T00:00:00Z";

impl Default for SyntheticSpec {
    fn default() -> Self {
        SyntheticSpec {
            count: SAMPLE_COUNT,
            seed: 0,
            regions: ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"]
                .map(String::from)
                .to_vec(),
            accounts: ["123456789012", "210987654321", "555566667777"]
                .map(String::from)
                .to_vec(),
            partition: "aws".to_owned(),
            now_ms: parse_timestamp(DEFAULT_NOW).unwrap_or(0),
        }
    }
}

impl SyntheticSpec {
    /// `count` findings from `seed`, other settings default.
    pub fn new(count: usize, seed: u64) -> Self {
        SyntheticSpec {
            count,
            seed,
            ..SyntheticSpec::default()
        }
    }

    /// The spec of the committed samples.
    pub fn samples() -> Self {
        SyntheticSpec::new(SAMPLE_COUNT, SAMPLE_SEED)
    }
}

/// Generates finding `n` of a spec.
#[derive(Debug)]
pub(crate) struct Generator {
    spec: SyntheticSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Severity {
    label: &'static str,
    normalized: u8,
    original: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Recommendation {
    text: String,
    url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Remediation {
    recommendation: Recommendation,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Resource {
    #[serde(rename = "Type")]
    kind: &'static str,
    id: String,
    partition: String,
    region: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Standard {
    standards_id: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Compliance {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    security_control_id: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    associated_standards: Vec<Standard>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Workflow {
    status: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Note {
    text: String,
    updated_by: String,
    updated_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProviderSeverity {
    label: &'static str,
    original: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProviderFields {
    severity: ProviderSeverity,
    types: Vec<String>,
}

/// One generated finding, in the member order `aws securityhub
/// get-findings` prints.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SynthFinding {
    schema_version: &'static str,
    id: String,
    product_arn: String,
    product_name: &'static str,
    company_name: &'static str,
    region: String,
    generator_id: String,
    aws_account_id: String,
    types: Vec<String>,
    first_observed_at: String,
    last_observed_at: String,
    created_at: String,
    updated_at: String,
    severity: Severity,
    title: String,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    remediation: Option<Remediation>,
    product_fields: BTreeMap<&'static str, String>,
    resources: Vec<Resource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compliance: Option<Compliance>,
    workflow_state: &'static str,
    workflow: Workflow,
    record_state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<Note>,
    finding_provider_fields: ProviderFields,
    processed_at: String,
    // Typed copies for the store's index (not serialised).
    #[serde(skip)]
    pub(crate) updated_at_ms: i64,
    #[serde(skip)]
    pub(crate) workflow_status: WorkflowStatus,
    #[serde(skip)]
    pub(crate) severity_label: SeverityLabel,
    #[serde(skip)]
    pub(crate) record: RecordState,
    #[serde(skip)]
    pub(crate) compliance_status: Option<ComplianceStatus>,
}

impl SynthFinding {
    pub(crate) fn key(&self) -> FindingKey {
        FindingKey::new(self.id.clone(), self.product_arn.clone())
    }
    pub(crate) fn into_key(self) -> FindingKey {
        FindingKey::new(self.id, self.product_arn)
    }
    pub(crate) fn account(&self) -> &str {
        &self.aws_account_id
    }
    pub(crate) fn region(&self) -> &str {
        &self.region
    }
}

#[derive(Clone, Copy)]
enum Product {
    Control,
    GuardDuty,
    Inspector,
    Prowler,
    Tenable,
    Custom,
}

const PRODUCTS: &[(u32, Product)] = &[
    (45, Product::Control),
    (18, Product::GuardDuty),
    (20, Product::Inspector),
    (8, Product::Prowler),
    (6, Product::Tenable),
    (3, Product::Custom),
];

/// (control id, title, severity, resource type)
const CONTROLS: &[(&str, &str, SeverityLabel, &str)] = &[
    (
        "IAM.1",
        "IAM policies should not allow full \"*\" administrative privileges",
        SeverityLabel::High,
        "AwsIamPolicy",
    ),
    (
        "IAM.6",
        "Hardware MFA should be enabled for the root user",
        SeverityLabel::Critical,
        "AwsAccount",
    ),
    (
        "S3.1",
        "S3 general purpose buckets should have block public access settings enabled",
        SeverityLabel::Medium,
        "AwsAccount",
    ),
    (
        "S3.8",
        "S3 general purpose buckets should block public access",
        SeverityLabel::High,
        "AwsS3Bucket",
    ),
    (
        "EC2.2",
        "VPC default security groups should not allow inbound or outbound traffic",
        SeverityLabel::High,
        "AwsEc2SecurityGroup",
    ),
    (
        "EC2.8",
        "EC2 instances should use Instance Metadata Service Version 2 (IMDSv2)",
        SeverityLabel::High,
        "AwsEc2Instance",
    ),
    (
        "EC2.18",
        "Security groups should only allow unrestricted incoming traffic for authorized ports",
        SeverityLabel::High,
        "AwsEc2SecurityGroup",
    ),
    (
        "EC2.19",
        "Security groups should not allow unrestricted access to ports with high risk",
        SeverityLabel::Critical,
        "AwsEc2SecurityGroup",
    ),
    (
        "CloudTrail.1",
        "CloudTrail should be enabled and configured with at least one multi-Region trail that includes read and write management events",
        SeverityLabel::High,
        "AwsAccount",
    ),
    (
        "Config.1",
        "AWS Config should be enabled and use the service-linked role for resource recording",
        SeverityLabel::Medium,
        "AwsAccount",
    ),
    (
        "GuardDuty.1",
        "GuardDuty should be enabled",
        SeverityLabel::High,
        "AwsAccount",
    ),
    (
        "KMS.4",
        "AWS KMS key rotation should be enabled",
        SeverityLabel::Medium,
        "AwsKmsKey",
    ),
    (
        "Lambda.2",
        "Lambda functions should use supported runtimes",
        SeverityLabel::Medium,
        "AwsLambdaFunction",
    ),
    (
        "RDS.3",
        "RDS DB instances should have encryption at-rest enabled",
        SeverityLabel::Medium,
        "AwsRdsDbInstance",
    ),
    (
        "SSM.1",
        "Amazon EC2 instances should be managed by AWS Systems Manager",
        SeverityLabel::Medium,
        "AwsEc2Instance",
    ),
];

/// (finding type, title template, GuardDuty severity)
const GUARDDUTY: &[(&str, &str, f64)] = &[
    (
        "TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce",
        "198.51.100.23 is performing SSH brute force attacks against {resource}.",
        2.0,
    ),
    (
        "Effects/Resource Consumption/CryptoCurrency:EC2-BitcoinTool.B!DNS",
        "EC2 instance {resource} is querying a domain name that is associated with Bitcoin-related activity.",
        8.0,
    ),
    (
        "Unusual Behaviors/User/Recon:IAMUser-MaliciousIPCaller",
        "Reconnaissance API GetAccountAuthorizationDetails was invoked from a known malicious IP address.",
        5.0,
    ),
    (
        "TTPs/Discovery/Recon:EC2-PortProbeUnprotectedPort",
        "Unprotected port on EC2 instance {resource} is being probed.",
        2.0,
    ),
    (
        "TTPs/Command and Control/Backdoor:EC2-C&CActivity.B!DNS",
        "EC2 instance {resource} is querying a domain name associated with a known Command & Control server.",
        8.0,
    ),
    (
        "Software and Configuration Checks/Policy:S3-BucketBlockPublicAccessDisabled",
        "Amazon S3 Block Public Access was disabled for an S3 bucket.",
        2.0,
    ),
];

/// (CVE, package, CVSS score)
const CVES: &[(&str, &str, f64)] = &[
    ("CVE-2023-4863", "libwebp", 8.8),
    ("CVE-2024-6387", "openssh-server", 8.1),
    ("CVE-2023-44487", "nghttp2", 7.5),
    ("CVE-2022-3602", "openssl", 7.5),
    ("CVE-2024-3094", "xz-utils", 10.0),
    ("CVE-2023-38545", "curl", 9.8),
    ("CVE-2024-2961", "glibc", 7.3),
    ("CVE-2023-5363", "openssl", 5.3),
    ("CVE-2024-0727", "openssl", 3.1),
];

/// (Prowler check id, title, severity)
const PROWLER: &[(&str, &str, SeverityLabel)] = &[
    (
        "iam_root_mfa_enabled",
        "Ensure MFA is enabled for the root account",
        SeverityLabel::Critical,
    ),
    (
        "s3_bucket_default_encryption",
        "Check if S3 buckets have default encryption (SSE) enabled.",
        SeverityLabel::Medium,
    ),
    (
        "ec2_ebs_volume_encryption",
        "Ensure there are no EBS Volumes unencrypted.",
        SeverityLabel::Medium,
    ),
    (
        "cloudtrail_multi_region_enabled",
        "Ensure CloudTrail is enabled in all regions",
        SeverityLabel::High,
    ),
    (
        "vpc_flow_logs_enabled",
        "Ensure VPC Flow Logging is Enabled in all VPCs.",
        SeverityLabel::Medium,
    ),
    (
        "iam_user_accesskey_unused",
        "Ensure Access Keys unused are disabled",
        SeverityLabel::Low,
    ),
];

/// (Tenable plugin id, title, severity)
const TENABLE: &[(u32, &str, SeverityLabel)] = &[
    (
        166797,
        "OpenSSL 3.0.0 < 3.0.7 Multiple Vulnerabilities",
        SeverityLabel::High,
    ),
    (
        132237,
        "SSH Weak Key Exchange Algorithms Enabled",
        SeverityLabel::Low,
    ),
    (
        157288,
        "TLS Version 1.1 Deprecated Protocol",
        SeverityLabel::Medium,
    ),
    (
        51192,
        "SSL Certificate Cannot Be Trusted",
        SeverityLabel::Medium,
    ),
    (
        187315,
        "SSH Terrapin Prefix Truncation Weakness (CVE-2023-48795)",
        SeverityLabel::Medium,
    ),
];

const NOTES: &[&str] = &[
    "Ticket SEC-{n} opened with the owning team",
    "Accepted risk: legacy workload scheduled for decommissioning",
    "False positive: approved vulnerability scanner host",
    "Remediation in progress, see change request CHG{n}",
];

const DAY_MS: i64 = 86_400_000;

/// FNV-1a, for stable per-(account, Region) identifiers.
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

impl Generator {
    pub(crate) fn new(spec: &SyntheticSpec) -> Self {
        let mut spec = spec.clone();
        // Keep the generator total: an empty list would leave nothing to pick.
        if spec.regions.is_empty() {
            spec.regions = SyntheticSpec::default().regions;
        }
        if spec.accounts.is_empty() {
            spec.accounts = SyntheticSpec::default().accounts;
        }
        Generator { spec }
    }

    pub(crate) fn count(&self) -> usize {
        self.spec.count
    }

    /// Finding number `n`.
    pub(crate) fn finding(&self, n: u64) -> SynthFinding {
        let s = &self.spec;
        let p = s.partition.as_str();
        let mut r = SplitMix64::for_index(s.seed, n);
        let product = *r.weighted(PRODUCTS);
        let region = r.pick(&s.regions).clone();
        let account = r.pick(&s.accounts).clone();
        let created = s.now_ms - r.below(90 * DAY_MS as u64) as i64;
        let updated = created + r.below((s.now_ms - created) as u64 + 1) as i64;
        let processed = (updated + r.below(120_000) as i64).min(s.now_ms);
        let mut workflow = *r.weighted(&[
            (70, WorkflowStatus::New),
            (12, WorkflowStatus::Notified),
            (12, WorkflowStatus::Resolved),
            (6, WorkflowStatus::Suppressed),
        ]);
        let record = *r.weighted(&[(90, RecordState::Active), (10, RecordState::Archived)]);
        let with_note = r.chance(0.1);
        let note_n = 1000 + r.below(9000);
        let note_text = r.pick(NOTES).replace("{n}", &note_n.to_string());
        let note_by = if r.chance(0.5) {
            format!("arn:{p}:iam::{account}:user/secops")
        } else {
            "alice@example.com".to_owned()
        };
        let note_at = updated + r.below((s.now_ms - updated) as u64 + 1) as i64;

        let instance = format!("i-{}", r.hex(17));
        let instance_arn = format!("arn:{p}:ec2:{region}:{account}:instance/{instance}");
        let mut f = SynthFinding {
            schema_version: "2018-10-08",
            id: String::new(),
            product_arn: String::new(),
            product_name: "",
            company_name: "",
            region: region.clone(),
            generator_id: String::new(),
            aws_account_id: account.clone(),
            types: Vec::new(),
            first_observed_at: format_timestamp(created),
            last_observed_at: format_timestamp(updated),
            created_at: format_timestamp(created),
            updated_at: format_timestamp(updated),
            severity: Severity {
                label: "",
                normalized: 0,
                original: String::new(),
            },
            title: String::new(),
            description: String::new(),
            remediation: None,
            product_fields: BTreeMap::new(),
            resources: Vec::new(),
            compliance: None,
            workflow_state: "NEW",
            workflow: Workflow { status: "" },
            record_state: record.as_str(),
            note: None,
            finding_provider_fields: ProviderFields {
                severity: ProviderSeverity {
                    label: "",
                    original: String::new(),
                },
                types: Vec::new(),
            },
            processed_at: format_timestamp(processed),
            updated_at_ms: updated,
            workflow_status: workflow,
            severity_label: SeverityLabel::Informational,
            record,
            compliance_status: None,
        };
        let resource = |kind: &'static str, id: String| Resource {
            kind,
            id,
            partition: p.to_owned(),
            region: region.clone(),
        };
        let label: SeverityLabel;
        let original: String;
        match product {
            Product::Control => {
                let (ctl, title, sev, kind) = *r.pick(CONTROLS);
                let status = *r.weighted(&[
                    (30, ComplianceStatus::Passed),
                    (64, ComplianceStatus::Failed),
                    (4, ComplianceStatus::Warning),
                    (2, ComplianceStatus::NotAvailable),
                ]);
                // The service resolves control findings that pass.
                if status == ComplianceStatus::Passed {
                    workflow = WorkflowStatus::Resolved;
                }
                label = if status == ComplianceStatus::Passed {
                    SeverityLabel::Informational
                } else {
                    sev
                };
                original = label.as_str().to_owned();
                f.id = format!(
                    "arn:{p}:securityhub:{region}:{account}:security-control/{ctl}/finding/{}",
                    r.uuid()
                );
                f.product_arn = format!("arn:{p}:securityhub:{region}::product/aws/securityhub");
                f.product_name = "Security Hub";
                f.company_name = "AWS";
                f.generator_id = format!("security-control/{ctl}");
                f.types = vec![
                    "Software and Configuration Checks/Industry and Regulatory Standards".into(),
                ];
                f.title = title.to_owned();
                f.description = format!(
                    "This control checks whether the resource complies with {ctl}. The control \
                     fails if it does not."
                );
                f.remediation = Some(Remediation {
                    recommendation: Recommendation {
                        text: "For information on how to correct this issue, consult the AWS \
                               Security Hub controls documentation."
                            .into(),
                        url: format!(
                            "https://docs.aws.amazon.com/console/securityhub/{ctl}/remediation"
                        ),
                    },
                });
                let rid = match kind {
                    "AwsIamPolicy" => format!("arn:{p}:iam::{account}:policy/admin-{}", r.hex(6)),
                    "AwsAccount" => format!("AWS::::Account:{account}"),
                    "AwsS3Bucket" => format!("arn:{p}:s3:::data-{account}-{}", r.hex(8)),
                    "AwsEc2SecurityGroup" => format!(
                        "arn:{p}:ec2:{region}:{account}:security-group/sg-{}",
                        r.hex(17)
                    ),
                    "AwsKmsKey" => format!("arn:{p}:kms:{region}:{account}:key/{}", r.uuid()),
                    "AwsLambdaFunction" => {
                        format!(
                            "arn:{p}:lambda:{region}:{account}:function:job-{}",
                            r.hex(6)
                        )
                    }
                    "AwsRdsDbInstance" => {
                        format!("arn:{p}:rds:{region}:{account}:db:db-{}", r.hex(6))
                    }
                    _ => instance_arn.clone(),
                };
                f.resources.push(resource(kind, rid));
                f.product_fields
                    .insert("aws/securityhub/ProductName", "Security Hub".to_owned());
                f.product_fields
                    .insert("aws/securityhub/CompanyName", "AWS".to_owned());
                f.compliance = Some(Compliance {
                    status: status.as_str(),
                    security_control_id: Some(ctl),
                    associated_standards: vec![Standard {
                        standards_id: "standards/aws-foundational-security-best-practices/v/1.0.0",
                    }],
                });
                f.compliance_status = Some(status);
            }
            Product::GuardDuty => {
                let (kind, title, sev) = *r.pick(GUARDDUTY);
                let detector = SplitMix64::new(fnv(&[&account, &region]) ^ s.seed).hex(32);
                f.id = format!(
                    "arn:{p}:guardduty:{region}:{account}:detector/{detector}/finding/{}",
                    r.hex(32)
                );
                f.product_arn = format!("arn:{p}:securityhub:{region}::product/aws/guardduty");
                f.product_name = "GuardDuty";
                f.company_name = "Amazon";
                f.generator_id =
                    format!("arn:{p}:guardduty:{region}:{account}:detector/{detector}");
                f.types = vec![kind.to_owned()];
                f.title = title.replace("{resource}", &instance);
                f.description = f.title.clone();
                label = SeverityLabel::from_normalized((sev * 10.0) as u8);
                original = format!("{sev:.0}");
                f.resources
                    .push(resource("AwsEc2Instance", instance_arn.clone()));
                f.product_fields
                    .insert("aws/guardduty/service/count", (1 + r.below(40)).to_string());
                f.product_fields.insert(
                    "aws/guardduty/service/archived",
                    (record == RecordState::Archived).to_string(),
                );
            }
            Product::Inspector => {
                let (cve, package, score) = *r.pick(CVES);
                f.id = format!(
                    "arn:{p}:inspector2:{region}:{account}:finding/{}",
                    r.hex(32)
                );
                f.product_arn = format!("arn:{p}:securityhub:{region}::product/aws/inspector");
                f.product_name = "Inspector";
                f.company_name = "Amazon";
                f.generator_id = "AWSInspector".into();
                f.types = vec!["Software and Configuration Checks/Vulnerabilities/CVE".into()];
                f.title = format!("{cve} - {package}");
                f.description = format!(
                    "A vulnerability ({cve}) was found in package {package}. Update the package \
                     to a fixed version."
                );
                label = match score {
                    s if s >= 9.0 => SeverityLabel::Critical,
                    s if s >= 7.0 => SeverityLabel::High,
                    s if s >= 4.0 => SeverityLabel::Medium,
                    _ => SeverityLabel::Low,
                };
                original = label.as_str().to_owned();
                if r.chance(0.5) {
                    f.resources
                        .push(resource("AwsEc2Instance", instance_arn.clone()));
                } else {
                    f.resources.push(resource(
                        "AwsEcrContainerImage",
                        format!(
                            "arn:{p}:ecr:{region}:{account}:repository/app-{}/sha256:{}",
                            r.hex(4),
                            r.hex(64)
                        ),
                    ));
                }
                f.product_fields
                    .insert("aws/inspector/FindingStatus", "ACTIVE".into());
                f.product_fields
                    .insert("aws/inspector/inspectorScore", format!("{score:.1}"));
            }
            Product::Prowler => {
                let (check, title, sev) = *r.pick(PROWLER);
                let status = if r.chance(0.3) {
                    ComplianceStatus::Passed
                } else {
                    ComplianceStatus::Failed
                };
                f.id = format!("prowler-{check}-{account}-{region}-{}", r.hex(10));
                f.product_arn = format!("arn:{p}:securityhub:{region}::product/prowler/prowler");
                f.product_name = "Prowler";
                f.company_name = "Prowler";
                f.generator_id = format!("prowler-{check}");
                f.types = vec!["Software and Configuration Checks".into()];
                f.title = title.to_owned();
                f.description = format!("{title}. Checked by Prowler ({check}).");
                label = sev;
                original = sev.as_str().to_lowercase();
                f.resources.push(resource(
                    "AwsAccount",
                    format!("arn:{p}:iam::{account}:root"),
                ));
                f.compliance = Some(Compliance {
                    status: status.as_str(),
                    security_control_id: None,
                    associated_standards: Vec::new(),
                });
                f.compliance_status = Some(status);
            }
            Product::Tenable => {
                let (plugin, title, sev) = *r.pick(TENABLE);
                f.id = format!("{region}/{instance}/{plugin}");
                f.product_arn = format!("arn:{p}:securityhub:{region}::product/tenable/tenable-io");
                f.product_name = "Tenable.io";
                f.company_name = "Tenable";
                f.generator_id = format!("tenable-io-{plugin}");
                f.types = vec!["Software and Configuration Checks/Vulnerabilities/CVE".into()];
                f.title = title.to_owned();
                f.description = format!("{title} (plugin {plugin}) on {instance}.");
                label = sev;
                original = sev.as_str().to_lowercase();
                f.resources
                    .push(resource("AwsEc2Instance", instance_arn.clone()));
            }
            Product::Custom => {
                f.id = format!("custom-{}", r.uuid());
                f.product_arn =
                    format!("arn:{p}:securityhub:{region}:{account}:product/{account}/default");
                f.product_name = "Default";
                f.company_name = "Personal";
                f.generator_id = "custom-config-scanner".into();
                f.types =
                    vec!["Software and Configuration Checks/AWS Security Best Practices".into()];
                f.title = "Unencrypted EBS volume attached to production instance".into();
                f.description = format!("Instance {instance} has an unencrypted EBS volume.");
                label = *r.pick(&[SeverityLabel::Low, SeverityLabel::Medium]);
                original = label.normalized().to_string();
                f.resources
                    .push(resource("AwsEc2Instance", instance_arn.clone()));
            }
        }
        f.severity = Severity {
            label: label.as_str(),
            normalized: label.normalized(),
            original: original.clone(),
        };
        f.severity_label = label;
        f.finding_provider_fields = ProviderFields {
            severity: ProviderSeverity {
                label: label.as_str(),
                original,
            },
            types: f.types.clone(),
        };
        f.workflow_status = workflow;
        f.workflow = Workflow {
            status: workflow.as_str(),
        };
        if with_note {
            f.note = Some(Note {
                text: note_text,
                updated_by: note_by,
                updated_at: format_timestamp(note_at),
            });
        }
        f
    }
}

/// Writes `Id,ProductArn` CSV (with that header) for `keys`, in order.
pub fn write_keys_csv(keys: &[FindingKey], w: impl Write) -> io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(["Id", "ProductArn"])?;
    for k in keys {
        out.write_record([k.id.as_str(), k.product_arn.as_str()])?;
    }
    out.flush()
}

/// `samples/findings.json`: the sample findings as `aws securityhub
/// get-findings` prints them (`{"Findings": [...]}`, 4-space indent, final
/// newline).
pub(crate) fn render_sample_json() -> String {
    let g = Generator::new(&SyntheticSpec::samples());
    let findings: Vec<SynthFinding> = (0..g.count() as u64).map(|n| g.finding(n)).collect();
    #[derive(Serialize)]
    struct Export<'a> {
        #[serde(rename = "Findings")]
        findings: &'a [SynthFinding],
    }
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    let export = Export {
        findings: &findings,
    };
    // Serialising plain structs into a Vec cannot fail.
    if export.serialize(&mut ser).is_err() {
        return String::new();
    }
    buf.push(b'\n');
    String::from_utf8(buf).unwrap_or_default()
}

/// `samples/findings.csv`: `Id,ProductArn` of the same findings, same order.
pub(crate) fn render_sample_csv() -> String {
    let g = Generator::new(&SyntheticSpec::samples());
    let keys: Vec<FindingKey> = (0..g.count() as u64)
        .map(|n| g.finding(n).into_key())
        .collect();
    let mut buf = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_keys_csv(&keys, &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// Writes `findings.json` and `findings.csv` into `dir`, and the same
/// findings in OCSF form (`findings-ocsf.jsonl`, `findings-ocsf.csv`).
pub(crate) fn write_samples(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("findings.json"), render_sample_json())?;
    std::fs::write(dir.join("findings.csv"), render_sample_csv())?;
    super::v2::write_ocsf_samples(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::validate::check_finding;
    use std::collections::{BTreeSet, HashSet};

    #[test]
    fn generation_is_deterministic_and_valid_asff() {
        let g = Generator::new(&SyntheticSpec::new(500, 42));
        let mut products = BTreeSet::new();
        let mut regions = BTreeSet::new();
        let mut accounts = BTreeSet::new();
        let mut keys = HashSet::new();
        for n in 0..500 {
            let f = g.finding(n);
            let again = g.finding(n);
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                serde_json::to_string(&again).unwrap()
            );
            let v = serde_json::to_value(&f).unwrap();
            let checked = check_finding(v.as_object().unwrap().clone())
                .unwrap_or_else(|e| panic!("finding {n} invalid: {}", e.message));
            assert_eq!(checked.key, f.key());
            assert_eq!(checked.workflow_status, f.workflow_status);
            assert_eq!(checked.severity_label, Some(f.severity_label));
            assert_eq!(checked.compliance_status, f.compliance_status);
            assert_eq!(checked.updated_at_ms, f.updated_at_ms);
            assert!(
                crate::arn::parse_product_arn(&f.product_arn).is_ok(),
                "{}",
                &f.product_arn
            );
            assert_eq!(crate::arn::region_of(&f.product_arn), Some(f.region()));
            products.insert(f.product_name);
            regions.insert(f.region.clone());
            accounts.insert(f.aws_account_id.clone());
            assert!(keys.insert(f.key()), "duplicate key at {n}");
        }
        assert_eq!(products.len(), 6, "{products:?}");
        assert_eq!(regions.len(), 4);
        assert_eq!(accounts.len(), 3);
        let other = Generator::new(&SyntheticSpec::new(1, 43));
        assert_ne!(other.finding(0).id, g.finding(0).id);
    }

    #[test]
    fn keys_csv_has_header_and_quotes() {
        let mut buf = Vec::new();
        write_keys_csv(
            &[
                FindingKey::new("a", "arn:x"),
                FindingKey::new("b,\"c\"", "arn:y"),
            ],
            &mut buf,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "Id,ProductArn\na,arn:x\n\"b,\"\"c\"\"\",arn:y\n"
        );
    }

    #[test]
    fn committed_samples_match_the_generator() {
        // If this fails, regenerate with
        // `cargo test --lib emulator::synth::tests::regenerate_samples -- --ignored`.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let json = std::fs::read_to_string(dir.join("findings.json")).unwrap();
        let csv = std::fs::read_to_string(dir.join("findings.csv")).unwrap();
        assert!(
            json == render_sample_json(),
            "samples/findings.json drifted from the generator"
        );
        assert!(
            csv == render_sample_csv(),
            "samples/findings.csv drifted from the generator"
        );
        assert!(
            json.len() < 3 * 1024 * 1024,
            "samples/findings.json is {} bytes",
            json.len()
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        let findings = parsed["Findings"].as_array().unwrap();
        assert_eq!(findings.len(), SAMPLE_COUNT);
        assert_eq!(csv.lines().count(), SAMPLE_COUNT + 1);
        assert!(findings.iter().any(|f| f.get("Note").is_some()));
        assert!(findings.iter().any(|f| f.get("Compliance").is_some()));
    }

    #[test]
    #[ignore = "writes samples/; run on purpose to regenerate them"]
    fn regenerate_samples() {
        write_samples(&Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")).unwrap();
    }
}
