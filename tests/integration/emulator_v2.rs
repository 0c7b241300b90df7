//! The new Security Hub (V2, OCSF) half of the emulator over real HTTP on
//! 127.0.0.1, driven by the real `aws-sdk-securityhub` client:
//! `BatchUpdateFindingsV2`, `GetFindingsV2` and `DescribeSecurityHubV2`,
//! their per-entry outcomes and request errors, throttling, faults, real
//! conflicts between requests in flight and the admin views.

use std::net::SocketAddr;
use std::time::Duration;

use aws_sdk_securityhub::Client;
use aws_sdk_securityhub::config::http::HttpResponse;
use aws_sdk_securityhub::config::retry::RetryConfig;
use aws_sdk_securityhub::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_securityhub::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_securityhub::operation::batch_update_findings_v2::BatchUpdateFindingsV2Output;
use aws_sdk_securityhub::types::{
    AllowedOperators, BatchUpdateFindingsV2UnprocessedFindingErrorCode as V2Code, CompositeFilter,
    NumberFilter, OcsfFindingFilters, OcsfFindingIdentifier, OcsfNumberField, OcsfNumberFilter,
    OcsfStringField, OcsfStringFilter, StringFilter, StringFilterComparison,
};
use aws_smithy_types::{Document, Number};
use sechub_triage::emulator::{
    Bucket, ConflictScope, EmulatorConfig, EmulatorState, FaultConfig, OcsfKey, Operation,
    SyntheticSpec, ThrottleConfig, V2Config, V2Faults, serve,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

// ---------------------------------------------------------------- harness

struct Emu {
    addr: SocketAddr,
    state: EmulatorState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Emu {
    async fn start(config: EmulatorConfig) -> Emu {
        let state = EmulatorState::new(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        Emu {
            addr,
            state,
            stop: Some(tx),
            task: Some(task),
        }
    }

    fn client(&self) -> Client {
        self.client_as("AKIDTEST", "us-east-1")
    }

    fn client_as(&self, access_key: &str, region: &str) -> Client {
        let config = aws_sdk_securityhub::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(Credentials::new(access_key, "secret", None, None, "test"))
            .endpoint_url(format!("http://{}", self.addr))
            .retry_config(RetryConfig::disabled())
            .build();
        Client::from_conf(config)
    }

    /// An admin request; returns (status, JSON body).
    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.unwrap();
        let text = String::from_utf8(resp).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

/// Synthetic OCSF findings all in us-east-1.
fn seed(state: &EmulatorState, n: usize, seed: u64) -> Vec<OcsfKey> {
    state.seed_synthetic_ocsf(&SyntheticSpec {
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::new(n, seed)
    })
}

fn ident(k: &OcsfKey) -> OcsfFindingIdentifier {
    OcsfFindingIdentifier::builder()
        .cloud_account_uid(&k.triple.cloud_account_uid)
        .finding_info_uid(&k.triple.finding_info_uid)
        .metadata_product_uid(&k.triple.metadata_product_uid)
        .build()
}

fn by_uid(
    c: &Client,
    keys: &[&OcsfKey],
) -> aws_sdk_securityhub::operation::batch_update_findings_v2::builders::BatchUpdateFindingsV2FluentBuilder
{
    keys.iter().fold(c.batch_update_findings_v2(), |b, k| {
        b.metadata_uids(&k.metadata_uid)
    })
}

fn by_triple(
    c: &Client,
    keys: &[&OcsfKey],
) -> aws_sdk_securityhub::operation::batch_update_findings_v2::builders::BatchUpdateFindingsV2FluentBuilder
{
    keys.iter().fold(c.batch_update_findings_v2(), |b, k| {
        b.finding_identifiers(ident(k))
    })
}

/// (processed metadata uids or finding_info uids, unprocessed (id, code, message)).
type Outcome = (Vec<String>, Vec<(String, String, String)>);

fn outcome(o: &BatchUpdateFindingsV2Output) -> Outcome {
    let id = |uid: Option<&str>, fi: Option<&OcsfFindingIdentifier>| {
        uid.map(str::to_owned)
            .or_else(|| fi.and_then(|f| f.finding_info_uid()).map(str::to_owned))
            .unwrap_or_default()
    };
    (
        o.processed_findings()
            .iter()
            .map(|p| id(p.metadata_uid(), p.finding_identifier()))
            .collect(),
        o.unprocessed_findings()
            .iter()
            .map(|u| {
                (
                    id(u.metadata_uid(), u.finding_identifier()),
                    u.error_code()
                        .map(|c| c.as_str().to_owned())
                        .unwrap_or_default(),
                    u.error_message().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    )
}

fn err_parts<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> (u16, String, String) {
    (
        e.raw_response().map_or(0, |r| r.status().as_u16()),
        e.code().unwrap_or_default().to_owned(),
        e.message().unwrap_or_default().to_owned(),
    )
}

fn to_json(d: &Document) -> Value {
    match d {
        Document::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        Document::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Document::Number(Number::PosInt(n)) => json!(n),
        Document::Number(Number::NegInt(n)) => json!(n),
        Document::Number(Number::Float(f)) => json!(f),
        Document::String(s) => json!(s),
        Document::Bool(b) => json!(b),
        Document::Null => Value::Null,
    }
}

/// (status_id, status, severity_id, severity, comment).
type Triage = (
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn state_of(emu: &Emu, k: &OcsfKey) -> Triage {
    let s = emu.state.ocsf_state(&k.uid()).unwrap();
    (s.status_id, s.status, s.severity_id, s.severity, s.comment)
}

fn str_filter(
    field: OcsfStringField,
    cmp: StringFilterComparison,
    value: &str,
) -> OcsfStringFilter {
    OcsfStringFilter::builder()
        .field_name(field)
        .filter(StringFilter::builder().comparison(cmp).value(value).build())
        .build()
}

/// Every finding of a query, page by page; returns the documents.
async fn all_pages(c: &Client, filters: Option<OcsfFindingFilters>, page: i32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let r = c
            .get_findings_v2()
            .set_filters(filters.clone())
            .max_results(page)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        assert!(r.findings().len() <= page as usize);
        out.extend(r.findings().iter().map(to_json));
        match r.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => return out,
        }
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn describe_security_hub_v2_answers_404_where_v2_is_not_enabled() {
    let emu = Emu::start(EmulatorConfig::unthrottled()).await;
    let hub = emu
        .client()
        .describe_security_hub_v2()
        .send()
        .await
        .unwrap();
    assert_eq!(
        hub.hub_v2_arn(),
        Some("arn:aws:securityhub:us-east-1:123456789012:hubv2/default")
    );
    assert!(hub.subscribed_at().is_some());

    // The per-Region switch, through the admin API.
    let (status, cfg) = emu
        .admin(
            "PUT",
            "/_emulator/v2/regions/eu-west-1",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(cfg["disabled_regions"], json!(["eu-west-1"]));
    let eu = emu.client_as("AKIDTEST", "eu-west-1");
    let e = eu.describe_security_hub_v2().send().await.unwrap_err();
    assert!(
        e.as_service_error()
            .unwrap()
            .is_resource_not_found_exception()
    );
    assert_eq!(err_parts(&e).0, 404);
    assert!(err_parts(&e).2.contains("eu-west-1"), "{:?}", err_parts(&e));
    // The other V2 operations there: 403 AccessDeniedException (the default choice).
    let e = eu
        .batch_update_findings_v2()
        .metadata_uids("x")
        .status_id(4)
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_access_denied_exception());
    let e = eu.get_findings_v2().send().await.unwrap_err();
    assert_eq!(err_parts(&e).0, 403);
    // us-east-1 still answers; and back on in eu-west-1.
    emu.client()
        .describe_security_hub_v2()
        .send()
        .await
        .unwrap();
    emu.state.set_v2_enabled("eu-west-1", true);
    eu.describe_security_hub_v2().send().await.unwrap();
    emu.stop().await;
}

#[tokio::test]
async fn batch_update_by_metadata_uid_and_by_triple_sets_ids_and_fills_strings() {
    let emu = Emu::start(EmulatorConfig::unthrottled()).await;
    let keys = seed(&emu.state, 10, 1);
    let before: Vec<_> = keys.iter().map(|k| state_of(&emu, k)).collect();
    let c = emu.client();

    let r = by_uid(&c, &[&keys[0], &keys[1]])
        .status_id(4)
        .comment("fixed in CHG-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        outcome(&r),
        (
            vec![keys[0].metadata_uid.clone(), keys[1].metadata_uid.clone()],
            vec![]
        )
    );
    // The requested form only (the default choice).
    assert!(r.processed_findings()[0].finding_identifier().is_none());

    let r = by_triple(&c, &[&keys[2], &keys[3]])
        .severity_id(5)
        .send()
        .await
        .unwrap();
    assert_eq!(r.processed_findings().len(), 2);
    let fi = r.processed_findings()[0].finding_identifier().unwrap();
    assert_eq!(
        fi.cloud_account_uid(),
        Some(keys[2].triple.cloud_account_uid.as_str())
    );
    assert_eq!(
        fi.metadata_product_uid(),
        Some(keys[2].triple.metadata_product_uid.as_str())
    );
    assert!(r.processed_findings()[0].metadata_uid().is_none());

    for k in &keys[..2] {
        let (sid, s, sev_id, sev, comment) = state_of(&emu, k);
        assert_eq!(
            (sid, s.as_deref(), comment.as_deref()),
            (Some(4), Some("Resolved"), Some("fixed in CHG-1"))
        );
        let b = &before[keys.iter().position(|x| x == k).unwrap()];
        assert_eq!((sev_id, &sev), (b.2, &b.3), "severity untouched");
        assert_eq!(emu.state.v2_update_count(&k.finding_identifier()), 1);
    }
    for (i, k) in keys[2..4].iter().enumerate() {
        let (sid, s, sev_id, sev, comment) = state_of(&emu, k);
        assert_eq!((sev_id, sev.as_deref()), (Some(5), Some("Critical")));
        assert_eq!(
            (sid, s, comment),
            (
                before[i + 2].0,
                before[i + 2].1.clone(),
                before[i + 2].4.clone()
            )
        );
    }
    // Untouched findings are untouched; counters say what happened.
    for (k, b) in keys[4..].iter().zip(&before[4..]) {
        assert_eq!(&state_of(&emu, k), b);
        assert_eq!(emu.state.v2_update_count(&k.uid()), 0);
    }
    let counters = emu.state.counters();
    assert_eq!(counters.v2_finding_outcome("Processed"), 4);
    assert_eq!(counters.requests_for(Operation::BatchUpdateFindingsV2), 2);
    assert_eq!(counters.outcome(Operation::BatchUpdateFindingsV2, "200"), 2);
    assert_eq!(emu.state.v2_update_counts().len(), 4);
    // The V1 store is a different store.
    assert!(emu.state.is_empty());

    // GetFindingsV2 shows the new values in the document.
    let docs = all_pages(&c, None, 100).await;
    let d = docs
        .iter()
        .find(|d| d["metadata"]["uid"] == keys[0].metadata_uid.as_str())
        .unwrap();
    assert_eq!(
        (&d["status_id"], &d["status"], &d["comment"]),
        (&json!(4), &json!("Resolved"), &json!("fixed in CHG-1"))
    );
    emu.stop().await;
}

#[tokio::test]
async fn a_comment_only_update_leaves_every_status_id_as_it_was() {
    let emu = Emu::start(EmulatorConfig::unthrottled()).await;
    let keys = seed(&emu.state, 60, 2);
    let before: Vec<_> = keys.iter().map(|k| state_of(&emu, k)).collect();
    let statuses: std::collections::BTreeSet<_> = before.iter().map(|b| b.0).collect();
    assert!(
        statuses.len() >= 3,
        "varied statuses to start with: {statuses:?}"
    );
    let refs: Vec<&OcsfKey> = keys.iter().collect();
    let r = by_uid(&emu.client(), &refs)
        .comment("seen by secops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.processed_findings().len(), 60);
    for (k, b) in keys.iter().zip(&before) {
        let now = state_of(&emu, k);
        assert_eq!((now.0, &now.1, now.2, &now.3), (b.0, &b.1, b.2, &b.3));
        assert_eq!(now.4.as_deref(), Some("seen by secops"));
    }
    emu.stop().await;
}

#[tokio::test]
async fn per_entry_outcomes_not_found_duplicate_other_region_and_injected() {
    let emu = Emu::start(EmulatorConfig::unthrottled()).await;
    let keys = seed(&emu.state, 6, 3);
    // One finding in another Region: not visible from us-east-1.
    let eu = emu.state.seed_synthetic_ocsf(&SyntheticSpec {
        regions: vec!["eu-west-1".into()],
        ..SyntheticSpec::new(1, 99)
    });
    let c = emu.client();
    let r = c
        .batch_update_findings_v2()
        .metadata_uids(&keys[0].metadata_uid)
        .metadata_uids("no-such-finding")
        .metadata_uids(&keys[0].metadata_uid)
        .metadata_uids(&eu[0].metadata_uid)
        .status_id(2)
        .send()
        .await
        .unwrap();
    let (processed, unprocessed) = outcome(&r);
    assert_eq!(processed, vec![keys[0].metadata_uid.clone()]);
    let codes: Vec<(&str, &str)> = unprocessed
        .iter()
        .map(|(id, c, _)| (id.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("no-such-finding", "ResourceNotFoundException"),
            (keys[0].metadata_uid.as_str(), "ValidationException"),
            (eu[0].metadata_uid.as_str(), "ResourceNotFoundException"),
        ]
    );
    assert!(matches!(
        r.unprocessed_findings()[0].error_code(),
        Some(V2Code::ResourceNotFoundException)
    ));
    assert_eq!(
        emu.state.v2_update_count(&keys[0].uid()),
        1,
        "duplicate applied once"
    );
    assert_eq!(emu.state.v2_update_count(&eu[0].uid()), 0);
    // Seen from its own Region it is there.
    let r = emu
        .client_as("AKIDTEST", "eu-west-1")
        .batch_update_findings_v2()
        .finding_identifiers(ident(&eu[0]))
        .status_id(2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.processed_findings().len(), 1);

    // Injected per-finding faults: shared with V1, mapped to V2 codes.
    for (faults, code) in [
        (
            FaultConfig {
                concurrent_update_error: 1.0,
                ..FaultConfig::default()
            },
            V2Code::ConflictException,
        ),
        (
            FaultConfig {
                internal_failure: 1.0,
                ..FaultConfig::default()
            },
            V2Code::InternalServerException,
        ),
    ] {
        emu.state.set_faults(faults);
        let r = by_triple(&c, &[&keys[1], &keys[2]])
            .status_id(3)
            .send()
            .await
            .unwrap();
        assert!(r.processed_findings().is_empty());
        assert_eq!(r.unprocessed_findings().len(), 2);
        for u in r.unprocessed_findings() {
            assert_eq!(u.error_code(), Some(&code));
            assert!(u.finding_identifier().is_some());
        }
    }
    emu.state.set_faults(FaultConfig::default());
    assert_eq!(emu.state.v2_update_count(&keys[1].uid()), 0);

    // An entry in neither list (the model makes nothing required).
    emu.state.set_v2_config(V2Config {
        faults: V2Faults {
            omit_result: 1.0,
            ..V2Faults::default()
        },
        ..EmulatorConfig::unthrottled().v2
    });
    let r = by_uid(&c, &[&keys[3]]).status_id(3).send().await.unwrap();
    assert!(r.processed_findings().is_empty() && r.unprocessed_findings().is_empty());
    assert_eq!(emu.state.v2_update_count(&keys[3].uid()), 0);
    // A code the model does not know, and no code at all.
    emu.state.set_v2_config(V2Config {
        faults: V2Faults {
            unknown_error_code: 1.0,
            ..V2Faults::default()
        },
        ..V2Config::default()
    });
    let r = by_uid(&c, &[&keys[3]]).status_id(3).send().await.unwrap();
    let u = &r.unprocessed_findings()[0];
    let code = u.error_code().unwrap().as_str();
    assert_eq!(code, "ServiceUnavailableException");
    assert!(
        !V2Code::values().contains(&code),
        "a code the model does not know"
    );
    emu.state.set_v2_config(V2Config {
        faults: V2Faults {
            missing_error_code: 1.0,
            ..V2Faults::default()
        },
        ..V2Config::default()
    });
    let r = by_uid(&c, &[&keys[3]]).status_id(3).send().await.unwrap();
    let u = &r.unprocessed_findings()[0];
    assert_eq!((u.error_code(), u.error_message()), (None, None));
    assert_eq!(u.metadata_uid(), Some(keys[3].metadata_uid.as_str()));
    assert_eq!(emu.state.v2_update_count(&keys[3].uid()), 0);
    emu.state.set_v2_config(V2Config::default());

    let c2 = emu.state.counters();
    assert_eq!(c2.v2_finding_outcome("ResourceNotFoundException"), 2);
    assert_eq!(c2.v2_finding_outcome("ValidationException"), 1);
    assert_eq!(c2.v2_finding_outcome("ConflictException"), 2);
    assert_eq!(c2.v2_finding_outcome("InternalServerException"), 2);
    assert_eq!(c2.v2_finding_outcome("Omitted"), 1);
    assert_eq!(c2.v2_finding_outcome("ServiceUnavailableException"), 1);
    assert_eq!(c2.v2_finding_outcome("NoErrorCode"), 1);
    assert_eq!(c2.v2_finding_outcome("Processed"), 2);
    emu.stop().await;
}

#[tokio::test]
async fn request_errors_carry_the_v2_codes_and_apply_nothing() {
    let emu = Emu::start(EmulatorConfig::unthrottled()).await;
    let keys = seed(&emu.state, 101, 4);
    let c = emu.client();
    let refs: Vec<&OcsfKey> = keys.iter().collect();

    // 400 ValidationException: both forms, 101 findings, bad values, none named.
    let both = by_uid(&c, &[&keys[0]])
        .finding_identifiers(ident(&keys[1]))
        .status_id(1);
    let cases = [
        (both, "cannot be used together"),
        (by_uid(&c, &refs).status_id(1), "at most 100"),
        (by_uid(&c, &[&keys[0]]).status_id(6), "StatusId: 6"),
        (by_uid(&c, &[&keys[0]]).severity_id(98), "SeverityId: 98"),
        (
            by_uid(&c, &[&keys[0]]).comment("x".repeat(513)),
            "at most 512",
        ),
        (c.batch_update_findings_v2().status_id(1), "is required"),
    ];
    for (req, msg) in cases {
        let e = req.send().await.unwrap_err();
        assert!(
            e.as_service_error().unwrap().is_validation_exception(),
            "{e:?}"
        );
        let (status, code, message) = err_parts(&e);
        assert_eq!((status, code.as_str()), (400, "ValidationException"));
        assert!(message.contains(msg), "{message:?} should contain {msg:?}");
    }
    // 100 is fine; 512 characters are fine.
    by_uid(&c, &refs[..100])
        .comment("é".repeat(512))
        .send()
        .await
        .unwrap();
    emu.state.reset_counters();

    // 500 InternalServerException, 403 AccessDeniedException, 409 ConflictException.
    emu.state.set_faults(FaultConfig {
        http_500: 1.0,
        ..FaultConfig::default()
    });
    let e = by_uid(&c, &[&keys[0]])
        .status_id(4)
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_internal_server_exception());
    assert_eq!(err_parts(&e).0, 500);
    emu.state.set_faults(FaultConfig {
        access_denied: true,
        ..FaultConfig::default()
    });
    let e = by_uid(&c, &[&keys[0]])
        .status_id(4)
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_access_denied_exception());
    assert_eq!(err_parts(&e).0, 403);
    emu.state.set_faults(FaultConfig::default());
    emu.state.set_v2_config(V2Config {
        faults: V2Faults {
            request_conflict: 1.0,
            ..V2Faults::default()
        },
        ..V2Config::default()
    });
    let e = by_uid(&c, &[&keys[0]])
        .status_id(4)
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_conflict_exception());
    assert_eq!(err_parts(&e).0, 409);
    emu.state.set_v2_config(V2Config::default());
    // Invalid filters and tokens on GetFindingsV2 are ValidationExceptions too.
    let e = c
        .get_findings_v2()
        .next_token("garbage")
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_validation_exception());
    let e = c
        .get_findings_v2()
        .max_results(101)
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_validation_exception());

    assert!(emu.state.v2_update_counts().is_empty(), "nothing applied");
    emu.stop().await;
}

#[tokio::test]
async fn throttling_per_key_region_and_v2_operation_answers_throttling_exception() {
    let mut config = EmulatorConfig::default();
    config.v2.throttle.batch_update_v2 = Bucket::new(0.001, 2);
    config.v2.throttle.get_findings_v2 = Bucket::new(0.001, 1);
    let emu = Emu::start(config).await;
    let keys = seed(&emu.state, 1, 5);
    let c = emu.client();
    for _ in 0..2 {
        by_uid(&c, &[&keys[0]]).status_id(2).send().await.unwrap();
    }
    let e = by_uid(&c, &[&keys[0]])
        .status_id(2)
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_throttling_exception());
    assert_eq!(err_parts(&e).0, 429);
    assert_eq!(
        emu.state.v2_update_count(&keys[0].uid()),
        2,
        "a throttled request applies nothing"
    );
    // Other operation, other key, other Region: their own buckets.
    c.get_findings_v2().send().await.unwrap();
    let e = c.get_findings_v2().send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_throttling_exception());
    c.describe_security_hub_v2().send().await.unwrap();
    by_uid(&emu.client_as("AKIDOTHER", "us-east-1"), &[&keys[0]])
        .status_id(2)
        .send()
        .await
        .unwrap();
    emu.client_as("AKIDTEST", "eu-west-1")
        .batch_update_findings_v2()
        .metadata_uids("x")
        .status_id(2)
        .send()
        .await
        .unwrap();
    // The V1 switch turns V2 throttling off too.
    emu.state.set_throttle(ThrottleConfig {
        enabled: false,
        ..ThrottleConfig::default()
    });
    by_uid(&c, &[&keys[0]]).status_id(2).send().await.unwrap();
    let counters = emu.state.counters();
    assert_eq!(counters.throttled, 2);
    assert_eq!(counters.error_code("ThrottlingException"), 2);
    emu.stop().await;
}

#[tokio::test]
async fn a_finding_in_two_requests_in_flight_conflicts() {
    let emu = Emu::start(EmulatorConfig {
        faults: FaultConfig {
            latency: Duration::from_secs(3),
            ..FaultConfig::default()
        },
        ..EmulatorConfig::unthrottled()
    })
    .await;
    let keys = seed(&emu.state, 3, 6);
    let first = {
        let c = emu.client();
        let k = keys[0].clone();
        tokio::spawn(async move { by_uid(&c, &[&k]).status_id(4).send().await })
    };
    // Wait until the first request holds its finding.
    let t0 = std::time::Instant::now();
    while !emu.state.v2_is_in_flight(&keys[0].finding_identifier()) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "first request never arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The same finding by its other identifier form conflicts; the other is applied.
    let r = by_triple(&emu.client(), &[&keys[0], &keys[1]])
        .status_id(3)
        .send()
        .await
        .unwrap();
    let (processed, unprocessed) = outcome(&r);
    assert_eq!(processed, vec![keys[1].triple.finding_info_uid.clone()]);
    assert_eq!(unprocessed.len(), 1);
    assert_eq!(unprocessed[0].0, keys[0].triple.finding_info_uid);
    assert_eq!(unprocessed[0].1, "ConflictException");
    let r = first.await.unwrap().unwrap();
    assert_eq!(r.processed_findings().len(), 1);
    assert_eq!(emu.state.v2_update_count(&keys[0].uid()), 1);
    assert_eq!(state_of(&emu, &keys[0]).0, Some(4));
    assert!(!emu.state.v2_is_in_flight(&keys[0].uid()), "released");

    // Whole-request scope: the second request gets 409 and applies nothing.
    emu.state.set_v2_config(V2Config {
        semantics: sechub_triage::emulator::V2Semantics {
            conflict_scope: ConflictScope::WholeRequest,
            ..Default::default()
        },
        ..V2Config::default()
    });
    let first = {
        let c = emu.client();
        let k = keys[0].clone();
        tokio::spawn(async move { by_uid(&c, &[&k]).status_id(1).send().await })
    };
    while !emu.state.v2_is_in_flight(&keys[0].uid()) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let e = by_uid(&emu.client(), &[&keys[2], &keys[0]])
        .status_id(3)
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_conflict_exception());
    assert_eq!(emu.state.v2_update_count(&keys[2].uid()), 0);
    first.await.unwrap().unwrap();
    assert_eq!(emu.state.v2_update_count(&keys[0].uid()), 2);
    emu.stop().await;
}

#[tokio::test]
async fn get_findings_v2_filters_with_and_or_composites_and_pages() {
    let emu = Emu::start(EmulatorConfig::unthrottled()).await;
    let keys = emu.state.seed_synthetic_ocsf(&SyntheticSpec {
        regions: vec!["us-east-1".into()],
        accounts: vec!["111111111111".into(), "222222222222".into()],
        ..SyntheticSpec::new(250, 7)
    });
    let c = emu.client();
    // Everything, in pages of 100 (and of 7): each finding once, in order.
    for page in [100, 7] {
        let docs = all_pages(&c, None, page).await;
        let uids: Vec<&str> = docs
            .iter()
            .map(|d| d["metadata"]["uid"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = keys.iter().map(|k| k.metadata_uid.as_str()).collect();
        assert_eq!(uids, want);
    }
    // Comment a few findings, then query by account AND (status OR comment).
    let chosen: Vec<&OcsfKey> = keys
        .iter()
        .filter(|k| k.triple.cloud_account_uid == "222222222222")
        .take(5)
        .collect();
    by_uid(&c, &chosen)
        .comment("CHG-42 accepted risk")
        .status_id(3)
        .send()
        .await
        .unwrap();
    let filters = OcsfFindingFilters::builder()
        .composite_operator(AllowedOperators::And)
        .composite_filters(
            CompositeFilter::builder()
                .string_filters(str_filter(
                    OcsfStringField::CloudAccountUid,
                    StringFilterComparison::Equals,
                    "222222222222",
                ))
                .string_filters(str_filter(
                    OcsfStringField::CloudRegion,
                    StringFilterComparison::Equals,
                    "us-east-1",
                ))
                .build(),
        )
        .composite_filters(
            CompositeFilter::builder()
                .operator(AllowedOperators::Or)
                .string_filters(str_filter(
                    OcsfStringField::Comment,
                    StringFilterComparison::Contains,
                    "CHG-42",
                ))
                .nested_composite_filters(
                    CompositeFilter::builder()
                        .number_filters(
                            OcsfNumberFilter::builder()
                                .field_name(OcsfNumberField::SeverityId)
                                .filter(NumberFilter::builder().gte(5.0).build())
                                .build(),
                        )
                        .string_filters(str_filter(
                            OcsfStringField::Status,
                            StringFilterComparison::Equals,
                            "New",
                        ))
                        .build(),
                )
                .build(),
        )
        .build();
    let docs = all_pages(&c, Some(filters.clone()), 10).await;
    let mut expected = 0;
    for k in &keys {
        let d = emu.state.ocsf_finding(&k.uid()).unwrap();
        let in_account = d["cloud"]["account"]["uid"] == "222222222222";
        let commented = d["comment"].as_str().is_some_and(|c| c.contains("CHG-42"));
        let critical_new = d["severity_id"].as_i64().unwrap() >= 5 && d["status"] == "New";
        if in_account && (commented || critical_new) {
            expected += 1;
        }
    }
    assert!(
        expected > 5,
        "the OR branch matches more than the commented ones: {expected}"
    );
    assert_eq!(docs.len(), expected);
    for d in &docs {
        assert_eq!(d["cloud"]["account"]["uid"], "222222222222");
    }
    for k in &chosen {
        assert!(
            docs.iter()
                .any(|d| d["metadata"]["uid"] == k.metadata_uid.as_str())
        );
    }
    // Product and uid fields, and a number filter on status_id.
    let one = OcsfFindingFilters::builder()
        .composite_filters(
            CompositeFilter::builder()
                .string_filters(str_filter(
                    OcsfStringField::FindingInfoUid,
                    StringFilterComparison::Equals,
                    &keys[9].triple.finding_info_uid,
                ))
                .string_filters(str_filter(
                    OcsfStringField::MetadataProductUid,
                    StringFilterComparison::Prefix,
                    "arn:aws:securityhub:us-east-1:",
                ))
                .build(),
        )
        .build();
    let docs = all_pages(&c, Some(one), 100).await;
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["metadata"]["uid"], keys[9].metadata_uid.as_str());
    let suppressed = OcsfFindingFilters::builder()
        .composite_filters(
            CompositeFilter::builder()
                .number_filters(
                    OcsfNumberFilter::builder()
                        .field_name(OcsfNumberField::StatusId)
                        .filter(NumberFilter::builder().eq(3.0).build())
                        .build(),
                )
                .build(),
        )
        .build();
    let docs = all_pages(&c, Some(suppressed), 100).await;
    assert!(docs.len() >= 5);
    assert!(
        docs.iter()
            .all(|d| d["status"] == "Suppressed" && d["status_id"] == 3)
    );

    // A token is bound to its query.
    let r = c
        .get_findings_v2()
        .filters(filters)
        .max_results(1)
        .send()
        .await
        .unwrap();
    let token = r.next_token().unwrap().to_owned();
    let e = c
        .get_findings_v2()
        .next_token(token)
        .max_results(1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_parts(&e).2,
        "Invalid NextToken: Input Query has changed"
    );
    // An unsupported field is refused, never ignored.
    let e = c
        .get_findings_v2()
        .filters(
            OcsfFindingFilters::builder()
                .composite_filters(
                    CompositeFilter::builder()
                        .string_filters(str_filter(
                            OcsfStringField::ResourcesUid,
                            StringFilterComparison::Equals,
                            "x",
                        ))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(
        err_parts(&e)
            .2
            .contains("\"resources.uid\" is not supported by the emulator"),
        "{:?}",
        err_parts(&e)
    );
    emu.stop().await;
}

#[tokio::test]
async fn admin_views_of_the_v2_store() {
    let emu = Emu::start(EmulatorConfig::unthrottled()).await;
    let (status, seeded) = emu
        .admin(
            "POST",
            "/_emulator/v2/seed",
            Some(json!({"count": 12, "seed": 8})),
        )
        .await;
    assert_eq!(
        (status, &seeded),
        (200, &json!({"Seeded": 12, "Total": 12}))
    );
    let (_, list) = emu.admin("GET", "/_emulator/v2/findings?max=3", None).await;
    assert_eq!(list["Count"], 12);
    assert_eq!(list["Findings"].as_array().unwrap().len(), 3);
    // One in us-east-1 (the client's Region): synthetic findings span 4 Regions.
    let (_, list) = emu
        .admin("GET", "/_emulator/v2/findings?max=12", None)
        .await;
    let first = list["Findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["MetadataProductUid"]
                .as_str()
                .unwrap()
                .contains(":us-east-1:")
        })
        .unwrap()
        .clone();
    let uid = first["MetadataUid"].as_str().unwrap().to_owned();
    emu.client()
        .batch_update_findings_v2()
        .metadata_uids(&uid)
        .comment("hello")
        .send()
        .await
        .unwrap();
    let (_, updates) = emu
        .admin("GET", "/_emulator/v2/findings/updates", None)
        .await;
    assert_eq!(
        updates,
        json!({"Findings": [{
            "MetadataUid": uid,
            "CloudAccountUid": first["CloudAccountUid"],
            "FindingInfoUid": first["FindingInfoUid"],
            "MetadataProductUid": first["MetadataProductUid"],
            "UpdateCount": 1,
        }]})
    );
    // Get by either form.
    let (status, got) = emu
        .admin(
            "POST",
            "/_emulator/v2/findings/get",
            Some(json!({"MetadataUid": uid})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            &got["Finding"]["comment"],
            &got["UpdateCount"],
            &got["InFlight"]
        ),
        (&json!("hello"), &json!(1), &json!(false))
    );
    let triple = json!({
        "CloudAccountUid": first["CloudAccountUid"],
        "FindingInfoUid": first["FindingInfoUid"],
        "MetadataProductUid": first["MetadataProductUid"],
    });
    let (status, got2) = emu
        .admin("POST", "/_emulator/v2/findings/get", Some(triple))
        .await;
    assert_eq!((status, &got2["Finding"]), (200, &got["Finding"]));
    let (status, _) = emu
        .admin(
            "POST",
            "/_emulator/v2/findings/get",
            Some(json!({"MetadataUid": "nope"})),
        )
        .await;
    assert_eq!(status, 404);
    // Config: read, change, refuse bad values.
    let (_, cfg) = emu.admin("GET", "/_emulator/v2/config", None).await;
    assert_eq!(
        cfg["throttle"]["batch_update_v2"],
        json!({"rate": 10.0, "burst": 30})
    );
    let (status, cfg) = emu
        .admin(
            "PUT",
            "/_emulator/v2/config",
            Some(json!({"semantics": {"result_identifiers": "Both"}})),
        )
        .await;
    assert_eq!(
        (status, &cfg["semantics"]["result_identifiers"]),
        (200, &json!("Both"))
    );
    let r = emu
        .client()
        .batch_update_findings_v2()
        .metadata_uids(&uid)
        .status_id(2)
        .send()
        .await
        .unwrap();
    assert!(
        r.processed_findings()[0].finding_identifier().is_some(),
        "both forms now"
    );
    let (status, _) = emu
        .admin(
            "PUT",
            "/_emulator/v2/config",
            Some(json!({"faults": {"omit_result": 3}})),
        )
        .await;
    assert_eq!(status, 400);
    // The window view knows the V2 operations; reset empties the V2 store.
    let (status, w) = emu
        .admin(
            "GET",
            "/_emulator/window?operation=BatchUpdateFindingsV2&millis=60000",
            None,
        )
        .await;
    assert_eq!((status, &w), (200, &json!({"Max": 2})));
    emu.admin("POST", "/_emulator/reset", None).await;
    assert_eq!(emu.state.v2_len(), 0);
    emu.stop().await;
}

#[tokio::test]
async fn seeded_ocsf_documents_come_back_with_strings_filled() {
    let emu = Emu::start(EmulatorConfig::unthrottled()).await;
    let doc = json!({
        "metadata": {"uid": "m-1", "version": "1.6.0", "product": {"uid": "arn:aws:securityhub:us-east-1::productv2/aws/guardduty", "name": "GuardDuty"}},
        "finding_info": {"uid": "gd-1", "title": "Recon"},
        "cloud": {"account": {"uid": "123456789012"}, "region": "us-east-1"},
        "class_uid": 2004, "severity_id": 4, "severity": "wrong", "status_id": 1,
        "unmapped": {"anything": [1, 2]},
    });
    emu.state.insert_ocsf_finding(doc).unwrap();
    let r = emu.client().get_findings_v2().send().await.unwrap();
    let d = to_json(&r.findings()[0]);
    assert_eq!(
        (&d["severity"], &d["status"]),
        (&json!("High"), &json!("New"))
    );
    assert_eq!(
        d["unmapped"],
        json!({"anything": [1, 2]}),
        "the provider document is kept"
    );
    let err = emu
        .state
        .insert_ocsf_finding(json!({"metadata": {"uid": "m-2"}}))
        .unwrap_err();
    assert_eq!(err, "cloud.account.uid: required field is missing");
    emu.stop().await;
}

/// `--get-findings-paging offset` applies to GetFindingsV2 too: the token
/// counts matches, so findings updated off the filter between pages shift
/// later ones onto pages already read (a pager that updates while paging
/// skips them); by cursor, nothing shifts.
#[tokio::test]
async fn get_findings_v2_pages_by_offset_or_cursor_as_configured() {
    use sechub_triage::emulator::Paging;
    for paging in [Paging::Offset, Paging::Cursor] {
        let mut config = EmulatorConfig::unthrottled();
        config.semantics.get_findings_paging = paging;
        let emu = Emu::start(config).await;
        let keys: Vec<OcsfKey> = (0..6)
            .map(|i| {
                emu.state
                    .insert_ocsf_finding(json!({
                        "metadata": {"uid": format!("m{i}"), "product": {"uid": "arn:aws:securityhub:us-east-1::productv2/aws/guardduty"}},
                        "finding_info": {"uid": format!("f{i}")},
                        "cloud": {"account": {"uid": "111122223333"}, "region": "us-east-1"},
                        "status_id": 1,
                    }))
                    .unwrap()
            })
            .collect();
        let c = emu.client();
        let new = OcsfFindingFilters::builder()
            .composite_filters(
                CompositeFilter::builder()
                    .number_filters(
                        OcsfNumberFilter::builder()
                            .field_name(OcsfNumberField::StatusId)
                            .filter(NumberFilter::builder().eq(1.0).build())
                            .build(),
                    )
                    .build(),
            )
            .build();
        let uids = |r: &aws_sdk_securityhub::operation::get_findings_v2::GetFindingsV2Output| {
            r.findings()
                .iter()
                .map(|d| to_json(d)["metadata"]["uid"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        let p1 = c
            .get_findings_v2()
            .filters(new.clone())
            .max_results(2)
            .send()
            .await
            .unwrap();
        assert_eq!(uids(&p1), ["m0", "m1"]);
        // The first page's findings are updated off the filter.
        by_uid(&c, &[&keys[0], &keys[1]])
            .status_id(3)
            .send()
            .await
            .unwrap();
        let p2 = c
            .get_findings_v2()
            .filters(new.clone())
            .max_results(2)
            .set_next_token(p1.next_token().map(str::to_owned))
            .send()
            .await
            .unwrap();
        let want = match paging {
            Paging::Offset => ["m4", "m5"], // m2, m3 shifted onto page 1: skipped
            Paging::Cursor => ["m2", "m3"],
        };
        assert_eq!(uids(&p2), want, "{paging:?}");
        emu.stop().await;
    }
}
