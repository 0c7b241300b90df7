//! The emulator over real HTTP on 127.0.0.1, driven by the real
//! `aws-sdk-securityhub` client (and a raw HTTP/1.1 client where the SDK
//! cannot send what we need to test: missing headers, broken JSON, ...).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_sdk_securityhub::Client;
use aws_sdk_securityhub::config::http::HttpResponse;
use aws_sdk_securityhub::config::retry::RetryConfig;
use aws_sdk_securityhub::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_securityhub::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_securityhub::operation::RequestId;
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, AwsSecurityFindingFilters, AwsSecurityFindingIdentifier, NoteUpdate,
    Resource, Severity, SeverityLabel, SeverityUpdate, StringFilter, StringFilterComparison,
    WorkflowStatus, WorkflowUpdate,
};
use sechub_triage::emulator::{
    Bucket, Counters, DuplicatePolicy, EmulatorConfig, EmulatorState, FaultConfig, LocalEmulator,
    Operation, Semantics, SyntheticSpec, ThrottleCode, ThrottleConfig, UdfPolicy,
};
use sechub_triage::model::FindingKey;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------- harness

/// The library's [`LocalEmulator`] with the fields these tests read, and
/// SDK clients with retries off.
struct Emu {
    addr: SocketAddr,
    state: EmulatorState,
    server: LocalEmulator,
}

impl Emu {
    async fn start(config: EmulatorConfig) -> Emu {
        Emu::with_state(EmulatorState::new(config)).await
    }

    async fn with_state(state: EmulatorState) -> Emu {
        let server = LocalEmulator::start_with_state(state).await.unwrap();
        Emu {
            addr: server.addr(),
            state: server.state().clone(),
            server,
        }
    }

    fn client(&self) -> Client {
        self.client_as("AKIDTEST", "us-east-1")
    }

    fn client_as(&self, access_key: &str, region: &str) -> Client {
        client_for(self.addr, access_key, region)
    }

    async fn stop(self) {
        self.server.shutdown().await.unwrap();
    }
}

/// An SDK client (retries off) for the emulator at `addr`, signing as
/// `access_key` in `region`.
fn client_for(addr: SocketAddr, access_key: &str, region: &str) -> Client {
    let config = aws_sdk_securityhub::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(access_key, "secret", None, None, "test"))
        .endpoint_url(format!("http://{addr}"))
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

fn unthrottled() -> EmulatorConfig {
    EmulatorConfig::unthrottled()
}

const GD: &str = "arn:aws:securityhub:us-east-1::product/aws/guardduty";

fn asff(id: &str, updated_at: &str) -> Value {
    json!({
        "SchemaVersion": "2018-10-08",
        "Id": id,
        "ProductArn": GD,
        "GeneratorId": "gen",
        "AwsAccountId": "123456789012",
        "CreatedAt": "2026-01-01T00:00:00Z",
        "UpdatedAt": updated_at,
        "Severity": {"Label": "LOW", "Normalized": 1, "Original": "2"},
        "Title": "title",
        "Description": "description",
        "Resources": [{"Type": "Other", "Id": "r"}],
        "WorkflowState": "NEW",
        "RecordState": "ACTIVE"
    })
}

fn seed(state: &EmulatorState, n: usize) -> Vec<FindingKey> {
    (0..n)
        .map(|i| {
            state
                .insert_finding(asff(&format!("finding-{i:04}"), "2026-01-02T00:00:00Z"))
                .unwrap()
        })
        .collect()
}

fn ident(k: &FindingKey) -> AwsSecurityFindingIdentifier {
    AwsSecurityFindingIdentifier::builder()
        .id(&k.id)
        .product_arn(&k.product_arn)
        .build()
}

fn resolve(
    client: &Client,
    keys: &[FindingKey],
) -> aws_sdk_securityhub::operation::batch_update_findings::builders::BatchUpdateFindingsFluentBuilder
{
    keys.iter().fold(
        client.batch_update_findings().workflow(
            WorkflowUpdate::builder()
                .status(WorkflowStatus::Resolved)
                .build(),
        ),
        |b, k| b.finding_identifiers(ident(k)),
    )
}

/// (processed ids, unprocessed (id, code, message)).
type Outcome = (Vec<String>, Vec<(String, String, String)>);

fn outcome(
    o: &aws_sdk_securityhub::operation::batch_update_findings::BatchUpdateFindingsOutput,
) -> Outcome {
    (
        o.processed_findings()
            .iter()
            .map(|p| p.id().unwrap_or_default().to_owned())
            .collect(),
        o.unprocessed_findings()
            .iter()
            .map(|u| {
                (
                    u.finding_identifier()
                        .and_then(|f| f.id())
                        .unwrap_or_default()
                        .to_owned(),
                    u.error_code().unwrap_or_default().to_owned(),
                    u.error_message().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    )
}

/// HTTP status, error code and request id of an SDK error.
fn err_parts<E: ProvideErrorMetadata>(
    e: &SdkError<E, HttpResponse>,
) -> (u16, Option<String>, Option<String>) {
    (
        e.raw_response().map_or(0, |r| r.status().as_u16()),
        e.code().map(str::to_owned),
        e.request_id().map(str::to_owned),
    )
}

struct Raw {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDRAW/20261121/us-east-1/securityhub/aws4_request, SignedHeaders=host;x-amz-date, Signature=0123";

/// One request on a fresh connection (`Connection: close`). `body` None sends
/// no body; `content_length` overrides the header.
async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Raw {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let mut has_len = false;
    for (k, v) in headers {
        has_len |= k.eq_ignore_ascii_case("content-length");
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_len {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes).await.unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.unwrap();
    parse_response(&resp)
}

fn parse_response(resp: &[u8]) -> Raw {
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(resp)));
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Raw {
        status,
        headers,
        body: resp[split + 4..].to_vec(),
    }
}

fn api_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Authorization", AUTH),
        ("Content-Type", "application/json"),
    ]
}

/// Runs a test body on a thread with a large stack. The SDK's generated
/// `AwsSecurityFinding` deserializer needs more than the default 2 MiB test
/// thread stack in unoptimised builds when a page holds many findings.
fn with_big_stack<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let t = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(body());
        })
        .unwrap();
    if let Err(panic) = t.join() {
        std::panic::resume_unwind(panic);
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------- seeding

#[tokio::test]
async fn batch_import_findings_seeds_and_validates() {
    let emu = Emu::start(unthrottled()).await;
    let client = emu.client();
    let good = |id: &str, updated: &str, title: &str| {
        AwsSecurityFinding::builder()
            .schema_version("2018-10-08")
            .id(id)
            .product_arn(GD)
            .generator_id("gen")
            .aws_account_id("123456789012")
            .created_at("2026-01-01T00:00:00Z")
            .updated_at(updated)
            .severity(Severity::builder().label(SeverityLabel::High).build())
            .title(title)
            .description("d")
            .resources(Resource::builder().r#type("Other").id("r").build())
            .build()
    };
    let mut no_title = good("bad", "2026-01-01T00:00:00Z", "x");
    no_title.title = None;
    let out = client
        .batch_import_findings()
        .findings(good("a", "2026-01-02T00:00:00Z", "first"))
        .findings(good("b", "2026-01-02T00:00:00Z", "first"))
        .findings(no_title)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (out.success_count(), out.failed_count()),
        (Some(2), Some(1))
    );
    let failed = &out.failed_findings()[0];
    assert_eq!(failed.id(), Some("bad"));
    assert_eq!(failed.error_code(), Some("InvalidInput"));
    assert_eq!(
        failed.error_message(),
        Some(
            "Finding does not adhere to Amazon Finding Format. data should have required property 'Title'."
        )
    );
    assert_eq!(emu.state.len(), 2);
    let a = FindingKey::new("a", GD);
    let stored = emu.state.finding(&a).unwrap();
    assert_eq!(stored["Region"], "us-east-1"); // from the credential scope
    assert_eq!(stored["Workflow"]["Status"], "NEW");

    // The customer resolves it; a newer provider import changes provider
    // content but not the workflow; an older one is ignored.
    resolve(&client, std::slice::from_ref(&a))
        .send()
        .await
        .unwrap();
    client
        .batch_import_findings()
        .findings(good("a", "2026-01-03T00:00:00Z", "second"))
        .findings(good("b", "2026-01-01T00:00:00Z", "older"))
        .send()
        .await
        .unwrap();
    let stored = emu.state.finding(&a).unwrap();
    assert_eq!(stored["Title"], "second");
    assert_eq!(stored["Workflow"]["Status"], "RESOLVED");
    assert_eq!(
        emu.state.finding(&FindingKey::new("b", GD)).unwrap()["Title"],
        "first"
    );
    let c = emu.state.counters();
    assert_eq!(c.import_outcomes.get("Created"), Some(&2));
    assert_eq!(c.import_outcomes.get("Updated"), Some(&1));
    assert_eq!(c.import_outcomes.get("Ignored"), Some(&1));
    assert_eq!(c.import_outcomes.get("InvalidInput"), Some(&1));

    // Request-level: an empty list is InvalidInputException.
    let e = client.batch_import_findings().send().await.unwrap_err();
    assert_eq!(err_parts(&e).1.as_deref(), Some("InvalidInputException"));
    assert!(e.into_service_error().is_invalid_input_exception());
    emu.stop().await;
}

#[tokio::test]
async fn samples_seed_through_the_state_api() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/findings.json"
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let state = EmulatorState::new(unthrottled());
    for f in doc["Findings"].as_array().unwrap() {
        state.insert_finding(f.clone()).unwrap();
    }
    assert_eq!(state.len(), 1000);
    let csv = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/findings.csv"))
        .unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let mut n = 0;
    for r in rows.records() {
        let r = r.unwrap();
        let key = FindingKey::new(&r[0], &r[1]);
        let f = state
            .finding(&key)
            .unwrap_or_else(|| panic!("{key} from the CSV is not in the JSON"));
        assert_eq!(
            f, doc["Findings"][n],
            "finding {n} renders as it was imported"
        );
        n += 1;
    }
    assert_eq!(n, 1000);
}

// ---------------------------------------------------------------- GetFindings

fn sfilter(value: &str, cmp: StringFilterComparison) -> StringFilter {
    StringFilter::builder().value(value).comparison(cmp).build()
}

#[test]
fn get_findings_paginates_and_filters() {
    with_big_stack(get_findings_paginates_and_filters_body);
}

async fn get_findings_paginates_and_filters_body() {
    let emu = Emu::start(unthrottled()).await;
    let spec = SyntheticSpec {
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::new(250, 5)
    };
    let keys = emu.state.seed_synthetic(&spec);
    let client = emu.client();

    // Pagination: 100 + 100 + 50, in insertion order, each finding once.
    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let out = client
            .get_findings()
            .max_results(100)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        pages.push(out.findings().len());
        let ids: Vec<FindingKey> = out
            .findings()
            .iter()
            .map(|f| FindingKey::new(f.id().unwrap(), f.product_arn().unwrap()))
            .collect();
        let start: usize = pages[..pages.len() - 1].iter().sum();
        assert_eq!(ids, keys[start..start + ids.len()].to_vec());
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, vec![100, 100, 50]);
    // The SDK paginator sees the same.
    let all: Vec<_> = client
        .get_findings()
        .max_results(37)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(all.len(), 250);

    // Ground truth for filters comes from the stored documents.
    let docs: Vec<Value> = keys.iter().map(|k| emu.state.finding(k).unwrap()).collect();
    let field = |d: &Value, name: &str| -> Option<String> {
        let v = match name {
            "Id" => &d["Id"],
            "ProductArn" => &d["ProductArn"],
            "AwsAccountId" => &d["AwsAccountId"],
            "Region" => &d["Region"],
            "WorkflowStatus" => &d["Workflow"]["Status"],
            "SeverityLabel" => &d["Severity"]["Label"],
            "RecordState" => &d["RecordState"],
            "ComplianceStatus" => &d["Compliance"]["Status"],
            _ => unreachable!(),
        };
        v.as_str().map(str::to_owned)
    };
    let count = |filters: AwsSecurityFindingFilters| {
        let client = client.clone();
        async move {
            client
                .get_findings()
                .filters(filters)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .unwrap()
                .len()
        }
    };
    let probe = &docs[7];
    for name in [
        "Id",
        "ProductArn",
        "AwsAccountId",
        "Region",
        "WorkflowStatus",
        "SeverityLabel",
        "RecordState",
        "ComplianceStatus",
    ] {
        let value = field(probe, name).unwrap_or_else(|| "FAILED".to_owned());
        let prefix: String = value.chars().take(value.len().min(12)).collect();
        let want_eq = docs
            .iter()
            .filter(|d| field(d, name).as_deref() == Some(&value))
            .count();
        let want_ne = docs
            .iter()
            .filter(|d| field(d, name).as_deref() != Some(&value))
            .count();
        let want_prefix = docs
            .iter()
            .filter(|d| field(d, name).is_some_and(|v| v.starts_with(&prefix)))
            .count();
        let build = |f: StringFilter| {
            let b = AwsSecurityFindingFilters::builder();
            match name {
                "Id" => b.id(f),
                "ProductArn" => b.product_arn(f),
                "AwsAccountId" => b.aws_account_id(f),
                "Region" => b.region(f),
                "WorkflowStatus" => b.workflow_status(f),
                "SeverityLabel" => b.severity_label(f),
                "RecordState" => b.record_state(f),
                _ => b.compliance_status(f),
            }
            .build()
        };
        assert!(
            want_eq > 0 && want_eq < 250 || name == "Region",
            "{name}: {want_eq}"
        );
        assert_eq!(
            count(build(sfilter(&value, StringFilterComparison::Equals))).await,
            want_eq,
            "{name} EQUALS"
        );
        assert_eq!(
            count(build(sfilter(&value, StringFilterComparison::NotEquals))).await,
            want_ne,
            "{name} NOT_EQUALS"
        );
        assert_eq!(
            count(build(sfilter(&prefix, StringFilterComparison::Prefix))).await,
            want_prefix,
            "{name} PREFIX"
        );
    }

    // Region isolation: a client in another Region sees nothing.
    let eu = emu.client_as("AKIDTEST", "eu-west-1");
    assert_eq!(eu.get_findings().send().await.unwrap().findings().len(), 0);

    // Bad requests.
    for e in [
        client
            .get_findings()
            .max_results(0)
            .send()
            .await
            .unwrap_err(),
        client
            .get_findings()
            .max_results(101)
            .send()
            .await
            .unwrap_err(),
        client
            .get_findings()
            .next_token("forged")
            .send()
            .await
            .unwrap_err(),
        client
            .get_findings()
            .filters(
                AwsSecurityFindingFilters::builder()
                    .title(sfilter("x", StringFilterComparison::Equals))
                    .build(),
            )
            .send()
            .await
            .unwrap_err(),
    ] {
        let (status, code, rid) = err_parts(&e);
        assert_eq!(
            (status, code.as_deref()),
            (400, Some("InvalidInputException")),
            "{e:?}"
        );
        assert!(rid.is_some());
    }
    // A token does not survive a reset.
    let t = client
        .get_findings()
        .max_results(1)
        .send()
        .await
        .unwrap()
        .next_token()
        .unwrap()
        .to_owned();
    emu.state.reset();
    emu.state.seed_synthetic(&spec);
    let e = client
        .get_findings()
        .next_token(t)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_input_exception());
    emu.stop().await;
}

/// GetFindings takes EQUALS, PREFIX, NOT_EQUALS and PREFIX_NOT_EQUALS only
/// (docs/service-facts.md §6): CONTAINS and NOT_CONTAINS, which the model
/// lists, are refused with a 400 InvalidInputException that says where they
/// work, through the real SDK client, like the service.
#[tokio::test]
async fn get_findings_refuses_contains_comparisons() {
    let emu = Emu::start(unthrottled()).await;
    emu.state.seed_synthetic(&SyntheticSpec {
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::new(20, 3)
    });
    let client = emu.client();
    for cmp in [
        StringFilterComparison::Contains,
        StringFilterComparison::NotContains,
    ] {
        let e = client
            .get_findings()
            .filters(
                AwsSecurityFindingFilters::builder()
                    .product_arn(sfilter("guardduty", cmp.clone()))
                    .build(),
            )
            .send()
            .await
            .unwrap_err();
        let (status, code, _) = err_parts(&e);
        assert_eq!(
            (status, code.as_deref()),
            (400, Some("InvalidInputException")),
            "{e:?}"
        );
        let message = e
            .into_service_error()
            .message()
            .unwrap_or_default()
            .to_owned();
        assert!(
            message.contains(&format!(
                "Filters.ProductArn[0].Comparison: {} is not valid in GetFindings",
                cmp.as_str()
            )) && message.contains("automation rules"),
            "{message}"
        );
    }
    // The four valid comparisons still answer.
    let ok = client
        .get_findings()
        .filters(
            AwsSecurityFindingFilters::builder()
                .product_arn(sfilter(
                    "arn:aws:securityhub:",
                    StringFilterComparison::Prefix,
                ))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(ok.findings().len(), 20);
    emu.stop().await;
}

// ---------------------------------------------------------------- updates

#[tokio::test]
async fn batch_update_findings_semantics() {
    let emu = Emu::start(unthrottled()).await;
    let keys = seed(&emu.state, 3);
    let a = &keys[0];
    emu.state
        .insert_finding({
            let mut f = asff("with-udf", "2026-01-02T00:00:00Z");
            f["UserDefinedFields"] = json!({"Owner": "provider"});
            f
        })
        .unwrap();
    let before = emu.state.finding(a).unwrap();
    let client = emu.client();

    let t0 = std::time::SystemTime::now();
    let out = client
        .batch_update_findings()
        .finding_identifiers(ident(a))
        .note(
            NoteUpdate::builder()
                .text("first note")
                .updated_by("alice")
                .build(),
        )
        .severity(SeverityUpdate::builder().normalized(75).build())
        .workflow(
            WorkflowUpdate::builder()
                .status(WorkflowStatus::Notified)
                .build(),
        )
        .confidence(80)
        .criticality(20)
        .types("TTPs/Discovery")
        .user_defined_fields("Ticket", "SEC-1")
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(&out), (vec![a.id.clone()], vec![]));
    let f = emu.state.finding(a).unwrap();
    assert_eq!(f["Note"]["Text"], "first note");
    assert_eq!(f["Note"]["UpdatedBy"], "alice");
    let note_at = f["Note"]["UpdatedAt"].as_str().unwrap().to_owned();
    let stamped = humantime::parse_rfc3339(&note_at).unwrap();
    assert!(stamped + Duration::from_secs(1) >= t0, "{note_at}");
    assert_eq!(
        f["Severity"]["Label"], "HIGH",
        "Label derived from Normalized 75"
    );
    assert_eq!(f["Severity"]["Normalized"], 75);
    assert_eq!(f["Severity"]["Original"], "2", "provider's Original kept");
    assert_eq!(f["Workflow"]["Status"], "NOTIFIED");
    assert_eq!(f["WorkflowState"], "NEW", "WorkflowState is left alone");
    assert_eq!(
        f["UpdatedAt"], before["UpdatedAt"],
        "UpdatedAt never changes"
    );
    assert_eq!(
        (f["Confidence"].clone(), f["Criticality"].clone()),
        (json!(80), json!(20))
    );
    assert_eq!(f["Types"], json!(["TTPs/Discovery"]));
    assert_eq!(f["UserDefinedFields"], json!({"Ticket": "SEC-1"}));
    assert_eq!(emu.state.update_count(a), 1);

    // The second note replaces the first and gets its own UpdatedAt; a Label
    // alone sets Normalized.
    tokio::time::sleep(Duration::from_millis(5)).await;
    client
        .batch_update_findings()
        .finding_identifiers(ident(a))
        .note(
            NoteUpdate::builder()
                .text("second")
                .updated_by("bob")
                .build(),
        )
        .severity(
            SeverityUpdate::builder()
                .label(SeverityLabel::Medium)
                .build(),
        )
        .types("Effects/Data Exposure")
        .send()
        .await
        .unwrap();
    let f = emu.state.finding(a).unwrap();
    assert_eq!(f["Note"]["Text"], "second");
    assert!(f["Note"]["UpdatedAt"].as_str().unwrap() > note_at.as_str());
    assert_eq!(
        (
            f["Severity"]["Label"].clone(),
            f["Severity"]["Normalized"].clone()
        ),
        (json!("MEDIUM"), json!(40))
    );
    assert_eq!(
        f["Types"],
        json!(["Effects/Data Exposure"]),
        "Types are replaced"
    );
    assert_eq!(f["Workflow"]["Status"], "NOTIFIED", "untouched fields stay");
    assert_eq!(emu.state.update_count(a), 2);
    assert_eq!(emu.state.update_count(&keys[1]), 0);

    // UserDefinedFields: merge by default, replace when configured.
    let u = FindingKey::new("with-udf", GD);
    client
        .batch_update_findings()
        .finding_identifiers(ident(&u))
        .user_defined_fields("Ticket", "SEC-2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        emu.state.finding(&u).unwrap()["UserDefinedFields"],
        json!({"Owner": "provider", "Ticket": "SEC-2"})
    );
    emu.state.set_semantics(Semantics {
        user_defined_fields: UdfPolicy::Replace,
        ..Semantics::default()
    });
    client
        .batch_update_findings()
        .finding_identifiers(ident(&u))
        .user_defined_fields("Only", "this")
        .send()
        .await
        .unwrap();
    assert_eq!(
        emu.state.finding(&u).unwrap()["UserDefinedFields"],
        json!({"Only": "this"})
    );

    // An update naming no field is accepted by default, rejected when configured.
    let out = client
        .batch_update_findings()
        .finding_identifiers(ident(&keys[2]))
        .send()
        .await
        .unwrap();
    assert_eq!(out.processed_findings().len(), 1);
    emu.state.set_semantics(Semantics {
        reject_no_update_fields: true,
        ..Semantics::default()
    });
    let e = client
        .batch_update_findings()
        .finding_identifiers(ident(&keys[2]))
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_input_exception());
    emu.stop().await;
}

#[tokio::test]
async fn per_finding_codes() {
    let emu = Emu::start(unthrottled()).await;
    let keys = seed(&emu.state, 4);
    let client = emu.client();
    let missing = FindingKey::new("no-such-finding", GD);
    let other_region = FindingKey::new(
        &keys[0].id,
        "arn:aws:securityhub:eu-west-1::product/aws/guardduty",
    );

    // Duplicates (first processed) and unknown findings.
    let out = resolve(
        &client,
        &[
            keys[0].clone(),
            missing.clone(),
            keys[0].clone(),
            keys[1].clone(),
            other_region.clone(),
        ],
    )
    .send()
    .await
    .unwrap();
    let (processed, unprocessed) = outcome(&out);
    assert_eq!(processed, vec![keys[0].id.clone(), keys[1].id.clone()]);
    assert_eq!(
        unprocessed,
        vec![
            (
                missing.id.clone(),
                "FindingNotFound".into(),
                "Finding Not Found".into()
            ),
            (
                keys[0].id.clone(),
                "DuplicatedFindingIdentifier".into(),
                "Finding Identifier is duplicated".into()
            ),
            (
                other_region.id.clone(),
                "FindingNotFound".into(),
                "Finding Not Found".into()
            ),
        ]
    );
    assert_eq!(
        emu.state.update_count(&keys[0]),
        1,
        "a duplicate is applied once"
    );

    // Duplicates, all rejected.
    emu.state.set_semantics(Semantics {
        duplicates: DuplicatePolicy::AllRejected,
        ..Semantics::default()
    });
    let out = resolve(&client, &[keys[2].clone(), keys[2].clone()])
        .send()
        .await
        .unwrap();
    let (processed, unprocessed) = outcome(&out);
    assert!(processed.is_empty());
    assert_eq!(unprocessed.len(), 2);
    assert!(
        unprocessed
            .iter()
            .all(|u| u.1 == "DuplicatedFindingIdentifier")
    );
    assert_eq!(emu.state.update_count(&keys[2]), 0);
    emu.state.set_semantics(Semantics::default());

    // Injected ConcurrentUpdateError and InternalFailure.
    for (faults, code, message) in [
        (
            FaultConfig {
                concurrent_update_error: 1.0,
                ..FaultConfig::default()
            },
            "ConcurrentUpdateError",
            "Concurrent finding updates detected",
        ),
        (
            FaultConfig {
                internal_failure: 1.0,
                ..FaultConfig::default()
            },
            "InternalFailure",
            "Internal service failure",
        ),
    ] {
        emu.state.set_faults(faults);
        let out = resolve(&client, &keys[2..4]).send().await.unwrap();
        let (processed, unprocessed) = outcome(&out);
        assert!(processed.is_empty());
        assert_eq!(
            unprocessed,
            keys[2..4]
                .iter()
                .map(|k| (k.id.clone(), code.to_owned(), message.to_owned()))
                .collect::<Vec<_>>()
        );
        assert_eq!(emu.state.update_count(&keys[2]), 0);
    }
    emu.state.set_faults(FaultConfig::default());

    // InvalidInput: the merged UserDefinedFields would exceed 50 pairs.
    let mut f = asff("udf-full", "2026-01-02T00:00:00Z");
    f["UserDefinedFields"] =
        Value::Object((0..50).map(|i| (format!("k{i}"), json!("v"))).collect());
    let full = emu.state.insert_finding(f).unwrap();
    let out = client
        .batch_update_findings()
        .finding_identifiers(ident(&full))
        .user_defined_fields("k50", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(
        outcome(&out).1,
        vec![(
            full.id.clone(),
            "InvalidInput".into(),
            "Invalid Input".into()
        )]
    );

    // FindingSizeExceeded: a finding near 240 KB cannot take 50 KB more.
    let mut f = asff("huge", "2026-01-02T00:00:00Z");
    f["ProductFields"] = Value::Object(
        (0..45)
            .map(|i| (format!("p{i}"), json!("x".repeat(2000))))
            .collect(),
    );
    f["Threats"] = json!(vec![json!({"Name": "y".repeat(4000)}); 32]);
    let huge = emu.state.insert_finding(f).unwrap();
    let mut b = client
        .batch_update_findings()
        .finding_identifiers(ident(&huge));
    for i in 0..50 {
        b = b.user_defined_fields(format!("u{i}"), "z".repeat(1000));
    }
    let out = b.send().await.unwrap();
    assert_eq!(
        outcome(&out).1,
        vec![(
            huge.id.clone(),
            "FindingSizeExceeded".into(),
            "Finding size exceeded 240 KB".into()
        )]
    );
    let c = emu.state.counters();
    for code in [
        "FindingNotFound",
        "DuplicatedFindingIdentifier",
        "ConcurrentUpdateError",
        "InternalFailure",
        "InvalidInput",
        "FindingSizeExceeded",
    ] {
        assert!(
            c.finding_outcome(code) > 0,
            "{code} counted: {:?}",
            c.finding_outcomes
        );
    }
    emu.stop().await;
}

#[tokio::test]
async fn a_finding_in_two_requests_in_flight_conflicts() {
    let emu = Emu::start(EmulatorConfig {
        // Long enough that the second request surely arrives while the first
        // is held, even on a loaded machine.
        faults: FaultConfig {
            latency: Duration::from_secs(3),
            ..FaultConfig::default()
        },
        ..unthrottled()
    })
    .await;
    let keys = seed(&emu.state, 3);
    let client = emu.client();
    let first = tokio::spawn(resolve(&client, &keys[0..2]).send());
    // Wait until the first request holds its findings (it then sleeps the
    // injected latency), so the second one certainly overlaps it.
    let state = emu.state.clone();
    let k1 = keys[1].clone();
    wait_until("the first request to hold its findings", || {
        state.is_in_flight(&k1)
    })
    .await;
    let second = resolve(&client, &keys[1..3]).send().await.unwrap();
    let first = first.await.unwrap().unwrap();
    assert_eq!(
        outcome(&first),
        (vec![keys[0].id.clone(), keys[1].id.clone()], vec![])
    );
    assert_eq!(
        outcome(&second),
        (
            vec![keys[2].id.clone()],
            vec![(
                keys[1].id.clone(),
                "ConcurrentUpdateError".into(),
                "Concurrent finding updates detected".into()
            )]
        )
    );
    assert_eq!(emu.state.update_count(&keys[1]), 1);
    assert!(!emu.state.is_in_flight(&keys[1]), "holds are released");
    assert!(emu.state.counters().max_in_flight >= 2);
    emu.stop().await;
}

// ---------------------------------------------------------------- request-level errors

#[tokio::test]
async fn validation_errors_are_invalid_input_exception() {
    let emu = Emu::start(unthrottled()).await;
    let keys = seed(&emu.state, 101);
    let client = emu.client();
    let one = || {
        client
            .batch_update_findings()
            .finding_identifiers(ident(&keys[0]))
    };
    let mut many = client.batch_update_findings().workflow(
        WorkflowUpdate::builder()
            .status(WorkflowStatus::Resolved)
            .build(),
    );
    for k in &keys {
        many = many.finding_identifiers(ident(k));
    }
    let cases = vec![
        (
            "no identifiers",
            client
                .batch_update_findings()
                .confidence(1)
                .send()
                .await
                .unwrap_err(),
        ),
        ("101 identifiers", many.clone().send().await.unwrap_err()),
        (
            "Confidence 101",
            one().confidence(101).send().await.unwrap_err(),
        ),
        (
            "Criticality -1",
            one().criticality(-1).send().await.unwrap_err(),
        ),
        (
            "Normalized 101",
            one()
                .severity(SeverityUpdate::builder().normalized(101).build())
                .send()
                .await
                .unwrap_err(),
        ),
        (
            "Note without UpdatedBy",
            one()
                .note(NoteUpdate::builder().text("t").build())
                .send()
                .await
                .unwrap_err(),
        ),
        (
            "blank Note.Text",
            one()
                .note(NoteUpdate::builder().text("  ").updated_by("me").build())
                .send()
                .await
                .unwrap_err(),
        ),
        (
            "unknown Workflow.Status",
            one()
                .workflow(
                    WorkflowUpdate::builder()
                        .status(WorkflowStatus::from("BOGUS"))
                        .build(),
                )
                .send()
                .await
                .unwrap_err(),
        ),
        (
            "empty Id",
            client
                .batch_update_findings()
                .finding_identifiers(
                    AwsSecurityFindingIdentifier::builder()
                        .id("")
                        .product_arn(GD)
                        .build(),
                )
                .confidence(1)
                .send()
                .await
                .unwrap_err(),
        ),
        (
            "missing ProductArn",
            client
                .batch_update_findings()
                .finding_identifiers(AwsSecurityFindingIdentifier::builder().id("x").build())
                .confidence(1)
                .send()
                .await
                .unwrap_err(),
        ),
    ];
    for (what, e) in cases {
        let (status, code, rid) = err_parts(&e);
        assert_eq!(
            (status, code.as_deref()),
            (400, Some("InvalidInputException")),
            "{what}: {e:?}"
        );
        assert!(rid.is_some(), "{what}: request id");
        let msg = e.message().unwrap_or_default().to_owned();
        assert!(!msg.is_empty(), "{what}");
        assert!(
            e.into_service_error().is_invalid_input_exception(),
            "{what}"
        );
    }
    assert!(emu.state.update_counts().is_empty(), "nothing applied");
    // 0 and 101 identifiers become acceptable when configured.
    emu.state.set_semantics(Semantics {
        max_identifiers: 200,
        allow_empty_identifiers: true,
        ..Semantics::default()
    });
    assert_eq!(many.send().await.unwrap().processed_findings().len(), 101);
    emu.stop().await;
}

#[tokio::test]
async fn request_level_faults_apply_nothing() {
    let emu = Emu::start(unthrottled()).await;
    let keys = seed(&emu.state, 2);
    let client = emu.client();
    let before = emu.state.finding(&keys[0]).unwrap();

    let expect = |f: FaultConfig| {
        emu.state.set_faults(f);
        resolve(&client, &keys)
    };
    let e = expect(FaultConfig {
        http_500: 1.0,
        ..FaultConfig::default()
    })
    .send()
    .await
    .unwrap_err();
    assert_eq!(err_parts(&e).0, 500);
    assert!(e.into_service_error().is_internal_exception());

    let e = expect(FaultConfig {
        http_503: 1.0,
        ..FaultConfig::default()
    })
    .send()
    .await
    .unwrap_err();
    let (status, code, _) = err_parts(&e);
    assert_eq!(
        (status, code.as_deref()),
        (503, Some("ServiceUnavailableException"))
    );

    let e = expect(FaultConfig {
        invalid_access: true,
        ..FaultConfig::default()
    })
    .send()
    .await
    .unwrap_err();
    let (status, _, _) = err_parts(&e);
    assert_eq!(status, 401);
    assert_eq!(
        e.message(),
        Some("Account 123456789012 is not subscribed to AWS Security Hub")
    );
    assert!(e.into_service_error().is_invalid_access_exception());

    let e = expect(FaultConfig {
        access_denied: true,
        ..FaultConfig::default()
    })
    .send()
    .await
    .unwrap_err();
    let (status, code, _) = err_parts(&e);
    assert_eq!(
        (status, code.as_deref()),
        (403, Some("AccessDeniedException"))
    );

    let e = expect(FaultConfig {
        drop_connection: 1.0,
        ..FaultConfig::default()
    })
    .send()
    .await
    .unwrap_err();
    assert!(matches!(e, SdkError::DispatchFailure(_)), "{e:?}");

    emu.state.set_faults(FaultConfig::default());
    assert_eq!(
        emu.state.finding(&keys[0]).unwrap(),
        before,
        "no fault applied anything"
    );
    assert!(emu.state.update_counts().is_empty());
    assert!(!emu.state.is_in_flight(&keys[0]));
    let c = emu.state.counters();
    let op = Operation::BatchUpdateFindings;
    assert_eq!(c.outcome(op, "500 InternalException"), 1);
    assert_eq!(c.outcome(op, "503 ServiceUnavailableException"), 1);
    assert_eq!(c.outcome(op, "401 InvalidAccessException"), 1);
    assert_eq!(c.outcome(op, "403 AccessDeniedException"), 1);
    assert_eq!(c.outcome(op, "dropped"), 1);
    // And the emulator still works afterwards.
    assert_eq!(
        resolve(&client, &keys)
            .send()
            .await
            .unwrap()
            .processed_findings()
            .len(),
        2
    );
    emu.stop().await;
}

#[tokio::test]
async fn malformed_http_requests_get_documented_errors() {
    let emu = Emu::start(EmulatorConfig {
        max_body_bytes: 64 * 1024,
        ..unthrottled()
    })
    .await;
    let keys = seed(&emu.state, 2);
    let before = emu.state.finding(&keys[0]).unwrap();
    let a = emu.addr;
    let h = api_headers();
    let patch = "/findings/batchupdate";
    let valid = serde_json::to_vec(
        &json!({"FindingIdentifiers": [{"Id": keys[0].id, "ProductArn": GD}], "Confidence": 5}),
    )
    .unwrap();
    let huge = vec![b' '; 200 * 1024];
    let cases: Vec<(&str, Raw, u16, &str)> = vec![
        ("bad JSON", raw(a, "PATCH", patch, &h, b"{\"FindingIdentifiers\": [").await, 400, "InvalidInputException"),
        ("not an object", raw(a, "PATCH", patch, &h, b"[]").await, 400, "InvalidInputException"),
        ("wrong type", raw(a, "PATCH", patch, &h, br#"{"FindingIdentifiers": "all"}"#).await, 400, "InvalidInputException"),
        ("wrong nested type", raw(a, "PATCH", patch, &h, br#"{"FindingIdentifiers": [{"Id": 1, "ProductArn": true}]}"#).await, 400, "InvalidInputException"),
        ("not UTF-8", raw(a, "PATCH", patch, &h, b"\xff\xfe{}").await, 400, "InvalidInputException"),
        ("empty body", raw(a, "PATCH", patch, &h, b"").await, 400, "InvalidInputException"),
        ("huge body", raw(a, "PATCH", patch, &h, &huge).await, 413, "RequestEntityTooLargeException"),
        ("huge declared length", raw(a, "PATCH", patch, &[("Authorization", AUTH), ("Content-Length", "999999999")], b"").await, 413, "RequestEntityTooLargeException"),
        ("no Authorization", raw(a, "PATCH", patch, &[("Content-Type", "application/json")], &valid).await, 403, "MissingAuthenticationTokenException"),
        ("bad Authorization", raw(a, "PATCH", patch, &[("Authorization", "Bearer abc")], &valid).await, 403, "IncompleteSignatureException"),
        ("wrong service", raw(a, "PATCH", patch, &[("Authorization", "AWS4-HMAC-SHA256 Credential=AK/20261121/us-east-1/s3/aws4_request, Signature=1")], &valid).await, 403, "InvalidSignatureException"),
        ("unknown path", raw(a, "POST", "/findings/nope", &h, b"{}").await, 404, "UnknownOperationException"),
        ("wrong method", raw(a, "GET", "/findings", &h, b"").await, 404, "UnknownOperationException"),
        ("GetFindings bad filter", raw(a, "POST", "/findings", &h, br#"{"Filters": {"Region": [{"Value": 5, "Comparison": "EQUALS"}]}}"#).await, 400, "InvalidInputException"),
        ("import no Findings", raw(a, "POST", "/findings/import", &h, b"{}").await, 400, "InvalidInputException"),
    ];
    for (what, r, status, code) in cases {
        assert_eq!(
            r.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.header("x-amzn-ErrorType"), Some(code), "{what}");
        assert!(
            r.header("x-amzn-RequestId").is_some_and(|v| v.len() == 36),
            "{what}"
        );
        assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
        let body = r.json();
        assert_eq!(body["Code"], code, "{what}");
        assert!(
            body["Message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
        assert!(
            !String::from_utf8_lossy(&r.body).contains("0123"),
            "{what}: signature echoed"
        );
    }
    // A chunked body over the limit is refused too, and the answer arrives.
    let mut s = tokio::net::TcpStream::connect(a).await.unwrap();
    let mut req = format!("PATCH {patch} HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").into_bytes();
    for _ in 0..4 {
        req.extend_from_slice(format!("{:x}\r\n", 32 * 1024).as_bytes());
        req.extend(std::iter::repeat_n(b' ', 32 * 1024));
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    s.write_all(&req).await.unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.unwrap();
    assert_eq!(parse_response(&resp).status, 413);

    // Nothing was applied, the store is intact, and a valid request works.
    assert_eq!(emu.state.len(), 2);
    assert_eq!(emu.state.finding(&keys[0]).unwrap(), before);
    assert!(emu.state.update_counts().is_empty());
    let ok = raw(a, "PATCH", patch, &h, &valid).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["ProcessedFindings"][0]["Id"], keys[0].id.as_str());
    assert_eq!(ok.json()["UnprocessedFindings"], json!([]));
    assert!(ok.header("x-amzn-RequestId").is_some());
    assert_eq!(emu.state.counters().unknown_routes, 2);
    emu.stop().await;
}

// ---------------------------------------------------------------- throttling

fn throttle(rate: f64, burst: u32) -> ThrottleConfig {
    ThrottleConfig {
        enabled: true,
        batch_update: Bucket::new(rate, burst),
        get_findings: Bucket::new(rate, burst),
        batch_import: Bucket::new(rate, burst),
        code: ThrottleCode::LimitExceededException,
    }
}

#[tokio::test]
async fn throttling_per_key_region_and_operation() {
    // A rate so low that no token comes back during the test: exact counts.
    let emu = Emu::start(EmulatorConfig {
        throttle: throttle(0.000_1, 5),
        ..EmulatorConfig::default()
    })
    .await;
    let keys = seed(&emu.state, 1);
    let client = emu.client();
    let mut ok = 0;
    let mut throttled = 0;
    for _ in 0..8 {
        match resolve(&client, &keys).send().await {
            Ok(_) => ok += 1,
            Err(e) => {
                let (status, code, rid) = err_parts(&e);
                assert_eq!(
                    (status, code.as_deref()),
                    (429, Some("LimitExceededException"))
                );
                assert!(rid.is_some());
                assert!(e.into_service_error().is_limit_exceeded_exception());
                throttled += 1;
            }
        }
    }
    assert_eq!((ok, throttled), (5, 3));
    assert_eq!(
        emu.state.update_count(&keys[0]),
        5,
        "throttled requests apply nothing"
    );
    // Other access key, other Region, other operation: their own buckets.
    assert!(
        resolve(&emu.client_as("AKIDOTHER", "us-east-1"), &keys)
            .send()
            .await
            .is_ok()
    );
    assert!(
        emu.client_as("AKIDTEST", "eu-west-1")
            .get_findings()
            .send()
            .await
            .is_ok()
    );
    assert!(client.get_findings().send().await.is_ok());
    let c = emu.state.counters();
    assert_eq!(c.throttled, 3);
    assert_eq!(
        c.outcome(Operation::BatchUpdateFindings, "429 LimitExceededException"),
        3
    );

    // The API Gateway flavour.
    emu.state.set_throttle(ThrottleConfig {
        code: ThrottleCode::TooManyRequestsException,
        ..throttle(0.000_1, 0)
    });
    let e = resolve(&client, &keys).send().await.unwrap_err();
    let (status, code, _) = err_parts(&e);
    assert_eq!(
        (status, code.as_deref()),
        (429, Some("TooManyRequestsException"))
    );
    // Not a modelled error: the SDK surfaces it as unhandled, with its code.
    let svc = e.into_service_error();
    assert!(!svc.is_limit_exceeded_exception());
    assert_eq!(svc.code(), Some("TooManyRequestsException"));
    emu.stop().await;
}

#[tokio::test]
async fn throttling_follows_the_configured_rate() {
    let rate = 20.0;
    let burst = 3;
    let emu = Emu::start(EmulatorConfig {
        throttle: throttle(rate, burst),
        ..EmulatorConfig::default()
    })
    .await;
    let keys = seed(&emu.state, 1);
    let client = emu.client();
    let start = Instant::now();
    let mut ok = 0u32;
    for _ in 0..60 {
        if resolve(&client, &keys).send().await.is_ok() {
            ok += 1;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    // Whatever the machine's speed: at least the burst, at most the burst
    // plus what the rate refilled in the elapsed time.
    assert!(ok >= burst, "{ok}");
    assert!(
        f64::from(ok) <= f64::from(burst) + rate * elapsed + 1.0,
        "{ok} in {elapsed:.3}s"
    );
    // Drained bucket, then a wait longer than one refill: a token is back.
    emu.state.set_throttle(throttle(5.0, 1));
    assert!(resolve(&client, &keys).send().await.is_ok());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(resolve(&client, &keys).send().await.is_ok());
    // Arrival times are recorded for rate checks.
    let n = emu
        .state
        .counters()
        .requests_for(Operation::BatchUpdateFindings);
    assert_eq!(n, 62);
    assert!(
        emu.state
            .max_requests_in_window(Operation::BatchUpdateFindings, Duration::from_secs(3600))
            == n
    );
    assert!(
        emu.state
            .max_requests_in_window(Operation::BatchUpdateFindings, Duration::from_nanos(1))
            >= 1
    );
    emu.stop().await;
}

// ---------------------------------------------------------------- fault reproducibility

async fn fault_run(seed: u64) -> Vec<String> {
    let emu = Emu::start(EmulatorConfig {
        random_seed: seed,
        faults: FaultConfig {
            concurrent_update_error: 0.2,
            internal_failure: 0.1,
            http_500: 0.1,
            http_503: 0.1,
            ..FaultConfig::default()
        },
        ..unthrottled()
    })
    .await;
    let keys = seed_keys(&emu.state);
    let client = emu.client();
    let mut log = Vec::new();
    for round in 0..2 {
        for chunk in keys.chunks(4) {
            match resolve(&client, chunk).send().await {
                Ok(o) => {
                    let (p, u) = outcome(&o);
                    log.push(format!(
                        "ok {} {:?}",
                        p.len(),
                        u.iter().map(|x| (&x.0, &x.1)).collect::<Vec<_>>()
                    ));
                }
                Err(e) => log.push(format!("err {:?}", err_parts(&e).1)),
            }
        }
        if round == 0 {
            // reset() reseeds: the second round must replay the first.
            emu.state.reset();
            seed_keys(&emu.state);
        }
    }
    let (first, second) = log.split_at(log.len() / 2);
    assert_eq!(first, second, "reset replays the same faults");
    emu.stop().await;
    first.to_vec()
}

fn seed_keys(state: &EmulatorState) -> Vec<FindingKey> {
    state.seed_synthetic(&SyntheticSpec {
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::new(200, 1)
    })
}

#[tokio::test]
async fn fault_injection_is_reproducible_by_seed() {
    let a = fault_run(42).await;
    let b = fault_run(42).await;
    let c = fault_run(43).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    let joined = a.join("\n");
    for needle in [
        "ConcurrentUpdateError",
        "InternalFailure",
        "InternalException",
        "ServiceUnavailableException",
    ] {
        assert!(joined.contains(needle), "{needle} never drawn:\n{joined}");
    }
}

// ---------------------------------------------------------------- admin & counters

#[tokio::test]
async fn admin_interface() {
    let emu = Emu::start(unthrottled()).await;
    let a = emu.addr;
    let keys = seed(&emu.state, 3);
    let client = emu.client();
    resolve(&client, &keys[0..2]).send().await.unwrap();
    resolve(&client, &keys[0..1]).send().await.unwrap();

    let r = raw(a, "GET", "/_emulator/counters", &[], b"").await;
    assert_eq!(r.status, 200);
    let c: Counters = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(c.requests_for(Operation::BatchUpdateFindings), 2);
    assert_eq!(c.outcome(Operation::BatchUpdateFindings, "200"), 2);
    assert_eq!(c.finding_outcome("Processed"), 3);
    assert_eq!(
        c.requests_per_second[&Operation::BatchUpdateFindings]
            .iter()
            .sum::<u64>(),
        2
    );

    let r = raw(a, "GET", "/_emulator/findings/updates", &[], b"").await;
    assert_eq!(
        r.json(),
        json!({"Findings": [
            {"Id": keys[0].id, "ProductArn": GD, "UpdateCount": 2},
            {"Id": keys[1].id, "ProductArn": GD, "UpdateCount": 1}
        ]})
    );
    let r = raw(
        a,
        "POST",
        "/_emulator/findings/get",
        &[],
        &serde_json::to_vec(&keys[0]).unwrap(),
    )
    .await;
    assert_eq!(r.json()["Finding"]["Workflow"]["Status"], "RESOLVED");
    assert_eq!(r.json()["UpdateCount"], 2);
    assert_eq!(
        raw(
            a,
            "POST",
            "/_emulator/findings/get",
            &[],
            br#"{"Id":"x","ProductArn":"y"}"#
        )
        .await
        .status,
        404
    );
    let r = raw(
        a,
        "GET",
        "/_emulator/window?operation=BatchUpdateFindings&millis=60000",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.json(), json!({"Max": 2}));
    assert_eq!(
        raw(
            a,
            "GET",
            "/_emulator/window?operation=Nope&millis=1",
            &[],
            b""
        )
        .await
        .status,
        400
    );

    // Faults and throttling change while running.
    let r = raw(
        a,
        "PUT",
        "/_emulator/faults",
        &[],
        br#"{"internal_failure": 1.0}"#,
    )
    .await;
    assert_eq!(
        (r.status, r.json()["internal_failure"].clone()),
        (200, json!(1.0))
    );
    let out = resolve(&client, &keys[2..3]).send().await.unwrap();
    assert_eq!(outcome(&out).1[0].1, "InternalFailure");
    assert_eq!(
        raw(a, "PUT", "/_emulator/faults", &[], br#"{"http_500": 2}"#)
            .await
            .status,
        400
    );
    assert_eq!(
        raw(a, "PUT", "/_emulator/faults", &[], br#"{"nonsense": 1}"#)
            .await
            .status,
        400
    );
    assert_eq!(
        raw(a, "PUT", "/_emulator/faults", &[], b"{}").await.status,
        200
    );
    let r = raw(
        a,
        "PUT",
        "/_emulator/throttle",
        &[],
        br#"{"enabled": true, "batch_update": {"rate": 0.0001, "burst": 0}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["get_findings"],
        json!({"rate": 3.0, "burst": 6}),
        "unset members keep defaults"
    );
    assert!(
        resolve(&client, &keys[2..3])
            .send()
            .await
            .unwrap_err()
            .into_service_error()
            .is_limit_exceeded_exception()
    );
    assert_eq!(
        raw(
            a,
            "PUT",
            "/_emulator/throttle",
            &[],
            br#"{"enabled": false}"#
        )
        .await
        .status,
        200
    );
    let r = raw(
        a,
        "PUT",
        "/_emulator/semantics",
        &[],
        br#"{"duplicates": "AllRejected"}"#,
    )
    .await;
    assert_eq!(r.json()["duplicates"], "AllRejected");
    assert_eq!(
        emu.state.semantics().duplicates,
        DuplicatePolicy::AllRejected
    );

    // Reset counters (and update counts), then everything.
    assert_eq!(
        raw(a, "POST", "/_emulator/reset-counters", &[], b"")
            .await
            .status,
        200
    );
    assert_eq!(
        emu.state
            .counters()
            .requests_for(Operation::BatchUpdateFindings),
        0
    );
    assert_eq!(emu.state.update_count(&keys[0]), 0);
    assert_eq!(emu.state.len(), 3);
    let r = raw(
        a,
        "POST",
        "/_emulator/seed",
        &[],
        br#"{"count": 10, "seed": 3}"#,
    )
    .await;
    assert_eq!(r.json(), json!({"Seeded": 10, "Total": 13}));
    assert_eq!(
        raw(a, "POST", "/_emulator/reset", &[], b"").await.status,
        200
    );
    assert_eq!(emu.state.len(), 0);
    assert_eq!(raw(a, "GET", "/_emulator/nope", &[], b"").await.status, 404);
    // Admin calls are not API requests.
    assert!(emu.state.counters().requests.is_empty());
    emu.stop().await;
}

#[tokio::test]
async fn counters_see_concurrency() {
    let emu = Emu::start(EmulatorConfig {
        // Long enough that all four overlap even on a loaded machine.
        faults: FaultConfig {
            latency: Duration::from_secs(3),
            ..FaultConfig::default()
        },
        ..unthrottled()
    })
    .await;
    let keys = seed(&emu.state, 4);
    let client = emu.client();
    let tasks: Vec<_> = keys
        .iter()
        .map(|k| tokio::spawn(resolve(&client, std::slice::from_ref(k)).send()))
        .collect();
    let state = emu.state.clone();
    wait_until("four requests in flight", || state.in_flight() == 4).await;
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let c = emu.state.counters();
    assert_eq!(c.max_in_flight, 4);
    assert_eq!(c.in_flight, 0);
    assert_eq!(c.finding_outcome("Processed"), 4);
    assert_eq!(emu.state.arrivals(Operation::BatchUpdateFindings).len(), 4);
    emu.state.reset_counters();
    assert_eq!(emu.state.counters().max_in_flight, 0);
    emu.stop().await;
}

#[tokio::test]
async fn shutdown_lets_requests_in_progress_finish() {
    let emu = Emu::start(EmulatorConfig {
        faults: FaultConfig {
            latency: Duration::from_millis(400),
            ..FaultConfig::default()
        },
        ..unthrottled()
    })
    .await;
    let keys = seed(&emu.state, 1);
    let client = emu.client();
    let pending = tokio::spawn(resolve(&client, &keys).send());
    let state = emu.state.clone();
    let k = keys[0].clone();
    wait_until("the request to be in flight", || state.is_in_flight(&k)).await;
    let addr = emu.addr;
    emu.stop().await; // returns only once the request in progress is answered
    assert_eq!(
        pending.await.unwrap().unwrap().processed_findings().len(),
        1
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

// ---------------------------------------------------------------- robustness

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "[ -~]{0,12}".prop_map(Value::from),
            prop::sample::select(vec![
                "NEW",
                "RESOLVED",
                "HIGH",
                "",
                " ",
                GD,
                "finding-0000",
                "EQUALS",
                "PREFIX"
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            let keys = prop::sample::select(vec![
                "FindingIdentifiers",
                "Id",
                "ProductArn",
                "Note",
                "Text",
                "UpdatedBy",
                "Severity",
                "Label",
                "Normalized",
                "Product",
                "Workflow",
                "Status",
                "Confidence",
                "Criticality",
                "Types",
                "UserDefinedFields",
                "RelatedFindings",
                "VerificationState",
                "Filters",
                "Region",
                "Value",
                "Comparison",
                "MaxResults",
                "NextToken",
                "Findings",
                "x",
            ]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(keys, inner, 0..6).prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            prop::collection::vec(any::<u8>(), 0..64),
            json_value().prop_map(|v| {
                let mut b = serde_json::to_vec(&v).unwrap();
                b.truncate(b.len() / 2);
                b
            }),
        ]
    }

    #[test]
    fn arbitrary_bodies_never_break_the_emulator() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let emu = rt.block_on(Emu::start(unthrottled()));
        let keys = seed(&emu.state, 5);
        let before: Vec<Value> = keys.iter().map(|k| emu.state.finding(k).unwrap()).collect();
        let addr = emu.addr;
        let routes = [
            ("PATCH", "/findings/batchupdate"),
            ("POST", "/findings"),
            ("POST", "/findings/import"),
        ];
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 300,
            ..ProptestConfig::default()
        });
        runner
            .run(&(body(), 0..3usize), |(body, r)| {
                let (method, path) = routes[r];
                let resp = rt.block_on(raw(addr, method, path, &api_headers(), &body));
                prop_assert!(
                    matches!(resp.status, 200 | 400),
                    "{} for {}",
                    resp.status,
                    String::from_utf8_lossy(&body)
                );
                prop_assert!(resp.header("x-amzn-RequestId").is_some());
                if resp.status == 400 {
                    prop_assert_eq!(
                        resp.header("x-amzn-ErrorType"),
                        Some("InvalidInputException")
                    );
                }
                Ok(())
            })
            .unwrap();
        // Fuzzed imports may add findings, but the seeded ones are untouched
        // unless a fuzzed update validly named them; either way each still
        // renders and the server still answers.
        for (k, b) in keys.iter().zip(&before) {
            let now = emu.state.finding(k).unwrap();
            assert_eq!(now["Id"], b["Id"]);
            assert_eq!(now["Title"], b["Title"]);
        }
        let c = emu.state.counters();
        assert_eq!(c.in_flight, 0);
        assert!(
            c.error_codes.keys().all(|k| k == "InvalidInputException"),
            "{:?}",
            c.error_codes
        );
        let ok = rt.block_on(emu.client().get_findings().send());
        assert!(ok.is_ok());
        let seen: HashSet<String> = rt
            .block_on(async {
                emu.client()
                    .get_findings()
                    .max_results(5)
                    .send()
                    .await
                    .unwrap()
            })
            .findings()
            .iter()
            .map(|f| f.id().unwrap().to_owned())
            .collect();
        assert!(seen.contains(&keys[0].id));
        rt.block_on(emu.stop());
    }
}

// ---------------------------------------------------------------- the command

#[test]
fn the_emulator_command_prints_its_address_and_stops_on_sigterm() {
    // A plain thread with a large stack: GetFindings pages of 100 findings
    // need it in unoptimised builds (see `with_big_stack`).
    let t = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(command_test)
        .unwrap();
    if let Err(panic) = t.join() {
        std::panic::resume_unwind(panic);
    }
}

fn command_test() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let keys_csv = dir.path().join("keys.csv");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sechub-triage"))
        .args([
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--no-throttle",
            "--seed-file",
        ])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/samples/findings.json"
        ))
        .args([
            "--synthetic",
            "30",
            "--synthetic-regions",
            "eu-north-1",
            "--keys-out",
        ])
        .arg(&keys_csv)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Never leave the emulator running if an assertion below fails.
    struct KillOnDrop(Option<std::process::Child>);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            if let Some(c) = self.0.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let stdout = child.stdout.take().unwrap();
    let mut guard = KillOnDrop(Some(child));
    let mut stdout = std::io::BufReader::new(stdout);
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr: SocketAddr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| {
            let mut err = String::new();
            if let Some(c) = guard.0.as_mut() {
                let _ = c.kill();
                if let Some(mut e) = c.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
            }
            panic!("first stdout line was {first:?}; stderr: {err}")
        })
        .parse()
        .unwrap();
    assert_ne!(addr.port(), 0);

    let keys = std::fs::read_to_string(&keys_csv).unwrap();
    assert_eq!(keys.lines().next(), Some("Id,ProductArn"));
    assert_eq!(keys.lines().count(), 31);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let count = |region: &'static str| {
        rt.block_on(async move {
            client_for(addr, "AKIDTEST", region)
                .get_findings()
                .max_results(100)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .unwrap()
                .len()
        })
    };
    // The samples spread over four Regions; the synthetic ones are all in eu-north-1.
    let sample_text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/findings.json"
    ))
    .unwrap();
    let in_us_west_2 = serde_json::from_str::<Value>(&sample_text).unwrap()["Findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["Region"] == "us-west-2")
        .count();
    assert!(in_us_west_2 > 0);
    assert_eq!(count("us-west-2"), in_us_west_2);
    assert_eq!(count("eu-north-1"), 30);

    let mut child = guard.0.take().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit}");
}
