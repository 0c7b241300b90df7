//! Wire compatibility: boto3 and the Rust SDK, driven against the same
//! emulator, must derive the same error codes and both classify the
//! emulator's throttling as throttling and its 400s as
//! `InvalidInputException` (docs/service-facts.md §3.2–3.4, §4.3).
//!
//! boto3 runs in `tests/integration/boto3_wire.py` under the interpreter named by
//! `SECHUB_TRIAGE_PYTHON` (default `python3`). Without boto3 this test fails
//! and says how to set it up; it never passes silently.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;

use aws_sdk_securityhub::Client;
use aws_sdk_securityhub::config::retry::RetryConfig;
use aws_sdk_securityhub::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_securityhub::error::ProvideErrorMetadata;
use aws_sdk_securityhub::types::{AwsSecurityFindingIdentifier, WorkflowStatus, WorkflowUpdate};
use sechub_triage::emulator::{
    Bucket, EmulatorConfig, EmulatorState, FaultConfig, LocalEmulator, Operation, SyntheticSpec,
    ThrottleCode, ThrottleConfig,
};
use sechub_triage::model::FindingKey;
use serde_json::{Value, json};

const SETUP_HINT: &str = "boto3 is needed for this test: run scripts/test.sh (it creates a virtual \
environment with boto3 and sets SECHUB_TRIAGE_PYTHON), or by hand: \
python3 -m venv /tmp/venv && /tmp/venv/bin/pip install boto3 && \
export SECHUB_TRIAGE_PYTHON=/tmp/venv/bin/python";

fn rust_client(addr: SocketAddr, max_attempts: u32) -> Client {
    let retry = if max_attempts <= 1 {
        RetryConfig::disabled()
    } else {
        RetryConfig::standard().with_max_attempts(max_attempts)
    };
    let config = aws_sdk_securityhub::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDRUST", "secret", None, None, "test"))
        .endpoint_url(format!("http://{addr}"))
        .retry_config(retry)
        .build();
    Client::from_conf(config)
}

/// What the Rust SDK made of one scenario: (ok, code, HTTP status, attempts
/// the emulator saw).
async fn rust_scenario(
    state: &EmulatorState,
    addr: SocketAddr,
    keys: &[FindingKey],
    max_attempts: u32,
    confidence: Option<i32>,
) -> (bool, Option<String>, u16, u64) {
    let before = state
        .counters()
        .requests_for(Operation::BatchUpdateFindings);
    let mut b = rust_client(addr, max_attempts)
        .batch_update_findings()
        .workflow(
            WorkflowUpdate::builder()
                .status(WorkflowStatus::Resolved)
                .build(),
        )
        .set_confidence(confidence);
    for k in keys {
        b = b.finding_identifiers(
            AwsSecurityFindingIdentifier::builder()
                .id(&k.id)
                .product_arn(&k.product_arn)
                .build(),
        );
    }
    let r = b.send().await;
    let attempts = state
        .counters()
        .requests_for(Operation::BatchUpdateFindings)
        - before;
    match r {
        Ok(_) => (true, None, 200, attempts),
        Err(e) => {
            let status = e.raw_response().map_or(0, |r| r.status().as_u16());
            (false, e.code().map(str::to_owned), status, attempts)
        }
    }
}

fn python() -> String {
    std::env::var("SECHUB_TRIAGE_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_and_the_rust_sdk_agree_on_the_wire() {
    let py = python();
    let probe = Command::new(&py).args(["-c", "import boto3"]).output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "{py} cannot import boto3 ({}). {SETUP_HINT}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!("cannot run {py}: {e}. {SETUP_HINT}"),
    }

    let state = EmulatorState::new(EmulatorConfig::unthrottled());
    let keys = state.seed_synthetic(&SyntheticSpec {
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::new(90, 11)
    });
    let server = LocalEmulator::start_with_state(state.clone())
        .await
        .unwrap();
    let addr = server.addr();

    // ---- boto3
    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("keys.json");
    std::fs::write(
        &keys_file,
        serde_json::to_vec(&json!({ "keys": keys })).unwrap(),
    )
    .unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/integration/boto3_wire.py"
    );
    let url = format!("http://{addr}");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .arg(script)
            .arg(url)
            .arg(keys_file)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "boto3 script failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        if out.status.code() == Some(3) {
            SETUP_HINT
        } else {
            ""
        }
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_name: BTreeMap<String, Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r.clone()))
        .collect();
    let py = |name: &str| {
        by_name
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {report}"))
    };

    // Success, with a request id and both lists present.
    let s = py("success");
    assert_eq!(
        (s["ok"].clone(), s["status"].clone()),
        (json!(true), json!(200))
    );
    assert!(s["request_id"].as_str().is_some_and(|r| r.len() == 36));
    assert_eq!(
        s["response"]["ProcessedFindings"].as_array().unwrap().len(),
        2
    );
    assert_eq!(s["response"]["UnprocessedFindings"], json!([]));
    let nf = &py("not_found")["response"]["UnprocessedFindings"][0];
    assert_eq!(
        (nf["ErrorCode"].clone(), nf["ErrorMessage"].clone()),
        (json!("FindingNotFound"), json!("Finding Not Found"))
    );

    // 400: InvalidInputException, the modelled class, not retried, not throttling.
    let i = py("invalid_input");
    assert_eq!(i["code"], "InvalidInputException");
    assert_eq!(i["modeled_class"], "InvalidInputException");
    assert_eq!(
        (i["status"].clone(), i["attempts"].clone()),
        (json!(400), json!(1))
    );
    assert_eq!(
        i["classified"],
        json!({"throttling": false, "retryable": false})
    );

    // Throttling: botocore's detector says throttling, and it retried.
    for (name, code, class) in [
        (
            "throttled_limit_exceeded",
            "LimitExceededException",
            json!("LimitExceededException"),
        ),
        (
            "throttled_too_many_requests",
            "TooManyRequestsException",
            Value::Null,
        ),
    ] {
        let t = py(name);
        assert_eq!(t["code"], code, "{name}");
        assert_eq!(t["modeled_class"], class, "{name}");
        assert_eq!(
            (t["status"].clone(), t["attempts"].clone()),
            (json!(429), json!(3)),
            "{name}"
        );
        assert_eq!(
            t["classified"],
            json!({"throttling": true, "retryable": true}),
            "{name}"
        );
    }
    // Server errors: transient, not throttling.
    for (name, code, status, retryable) in [
        ("internal_exception", "InternalException", 500, true),
        (
            "service_unavailable",
            "ServiceUnavailableException",
            503,
            true,
        ),
        ("invalid_access", "InvalidAccessException", 401, false),
        ("access_denied", "AccessDeniedException", 403, false),
    ] {
        let e = py(name);
        assert_eq!(
            (e["code"].clone(), e["status"].clone()),
            (json!(code), json!(status)),
            "{name}"
        );
        assert_eq!(
            e["classified"],
            json!({"throttling": false, "retryable": retryable}),
            "{name}"
        );
    }
    assert_eq!(
        py("invalid_access")["modeled_class"],
        "InvalidAccessException"
    );
    assert_eq!(
        py("internal_exception")["modeled_class"],
        "InternalException"
    );
    let p = py("paginate");
    assert_eq!(
        (p["count"].clone(), p["distinct"].clone()),
        (json!(90), json!(90))
    );

    // ---- the Rust SDK, same emulator, same situations
    let one = &keys[..1];
    let (ok, code, status, attempts) = rust_scenario(&state, addr, one, 3, Some(101)).await;
    assert_eq!(
        (ok, code.as_deref(), status, attempts),
        (false, Some("InvalidInputException"), 400, 1)
    );
    assert_eq!(code.as_deref(), i["code"].as_str(), "same code as boto3");

    for (code, py_name) in [
        (
            ThrottleCode::LimitExceededException,
            "throttled_limit_exceeded",
        ),
        (
            ThrottleCode::TooManyRequestsException,
            "throttled_too_many_requests",
        ),
    ] {
        state.set_throttle(ThrottleConfig {
            enabled: true,
            batch_update: Bucket::new(0.000_1, 0),
            code,
            ..ThrottleConfig::default()
        });
        let (ok, got, status, attempts) = rust_scenario(&state, addr, one, 3, None).await;
        // The Rust SDK retries a 429 only when its code is a known
        // throttling code (docs/service-facts.md §3.4), so 3 attempts is its
        // "throttling" classification.
        assert_eq!(
            (ok, got.as_deref(), status, attempts),
            (false, Some(code.as_str()), 429, 3),
            "{py_name}"
        );
        assert_eq!(
            got.as_deref(),
            py(py_name)["code"].as_str(),
            "same code as boto3"
        );
    }
    state.set_throttle(ThrottleConfig {
        enabled: false,
        ..ThrottleConfig::default()
    });

    for (faults, py_name) in [
        (
            FaultConfig {
                http_500: 1.0,
                ..FaultConfig::default()
            },
            "internal_exception",
        ),
        (
            FaultConfig {
                http_503: 1.0,
                ..FaultConfig::default()
            },
            "service_unavailable",
        ),
        (
            FaultConfig {
                invalid_access: true,
                ..FaultConfig::default()
            },
            "invalid_access",
        ),
        (
            FaultConfig {
                access_denied: true,
                ..FaultConfig::default()
            },
            "access_denied",
        ),
    ] {
        state.set_faults(faults);
        let (ok, got, status, _) = rust_scenario(&state, addr, one, 1, None).await;
        let e = py(py_name);
        assert!(!ok);
        assert_eq!(
            got.as_deref(),
            e["code"].as_str(),
            "{py_name}: same code as boto3"
        );
        assert_eq!(json!(status), e["status"], "{py_name}");
    }
    state.set_faults(FaultConfig::default());

    server.shutdown().await.unwrap();
}

/// The new Security Hub: boto3 and the AWS CLI (v1, from the same virtual
/// environment) parse every V2 answer of the emulator, success and every V2
/// error code, and derive the same codes as the Rust SDK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_the_aws_cli_and_the_rust_sdk_agree_on_the_v2_wire() {
    let py = python();
    let probe = Command::new(&py).args(["-c", "import boto3"]).output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "{py} cannot import boto3 ({}). {SETUP_HINT}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!("cannot run {py}: {e}. {SETUP_HINT}"),
    }

    let state = EmulatorState::new(EmulatorConfig::unthrottled());
    let keys = state.seed_synthetic_ocsf(&SyntheticSpec {
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::new(20, 12)
    });
    let server = LocalEmulator::start_with_state(state.clone())
        .await
        .unwrap();
    let addr = server.addr();

    let dir = tempfile::tempdir().unwrap();
    let keys_file = dir.path().join("keys.json");
    std::fs::write(
        &keys_file,
        serde_json::to_vec(&json!({ "keys": keys })).unwrap(),
    )
    .unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/integration/boto3_wire.py"
    );
    let url = format!("http://{addr}");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .arg(script)
            .arg(url)
            .arg(keys_file)
            .arg("v2")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "boto3/AWS CLI script failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        match out.status.code() {
            Some(3) => SETUP_HINT,
            Some(4) =>
                "the AWS CLI is needed for this test: scripts/test.sh installs awscli into its \
                 virtual environment (or: <venv>/bin/pip install awscli)",
            _ => "",
        }
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_name: BTreeMap<String, Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r.clone()))
        .collect();
    let py = |name: &str| {
        by_name
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {report}"))
    };

    // ---- boto3: successes and per-entry codes
    let d = py("v2_describe");
    assert_eq!(
        (d["ok"].clone(), d["status"].clone()),
        (json!(true), json!(200))
    );
    assert_eq!(
        d["response"]["HubV2Arn"],
        "arn:aws:securityhub:us-east-1:123456789012:hubv2/default"
    );
    let u = &py("v2_update_uids")["response"];
    assert_eq!(
        u["ProcessedFindings"],
        json!([{"MetadataUid": keys[0].metadata_uid}, {"MetadataUid": keys[1].metadata_uid}])
    );
    assert_eq!(
        u["UnprocessedFindings"],
        json!([{"MetadataUid": "no-such-finding", "ErrorCode": "ResourceNotFoundException",
                "ErrorMessage": "Finding not found"}])
    );
    let t = &py("v2_update_triples")["response"];
    assert_eq!(
        t["ProcessedFindings"][0]["FindingIdentifier"]["FindingInfoUid"],
        keys[2].triple.finding_info_uid.as_str()
    );
    assert_eq!(t["ProcessedFindings"].as_array().unwrap().len(), 2);
    for (name, code) in [
        ("v2_duplicate", "ValidationException"),
        ("v2_entry_conflict", "ConflictException"),
        ("v2_entry_internal", "InternalServerException"),
    ] {
        let r = py(name);
        assert_eq!(r["ok"], true, "{name}");
        assert_eq!(
            r["response"]["UnprocessedFindings"][0]["ErrorCode"], code,
            "{name}"
        );
    }
    assert_eq!(
        state.v2_update_count(&keys[4].uid()),
        1,
        "duplicate applied once"
    );
    assert_eq!(
        state.ocsf_state(&keys[0].uid()).unwrap().status.as_deref(),
        Some("Resolved")
    );

    // ---- boto3: request-level codes, the modelled class, botocore's classification
    for (name, code, status, attempts, throttling, retryable) in [
        ("v2_validation", "ValidationException", 400, 1, false, false),
        (
            "v2_validation_value",
            "ValidationException",
            400,
            1,
            false,
            false,
        ),
        (
            "v2_access_denied",
            "AccessDeniedException",
            403,
            1,
            false,
            false,
        ),
        (
            "v2_internal",
            "InternalServerException",
            500,
            1,
            false,
            true,
        ),
        ("v2_conflict", "ConflictException", 409, 1, false, false),
        ("v2_throttled", "ThrottlingException", 429, 3, true, true),
        ("v2_bad_token", "ValidationException", 400, 1, false, false),
    ] {
        let e = py(name);
        assert_eq!(e["ok"], false, "{name}");
        assert_eq!(
            (
                e["code"].clone(),
                e["status"].clone(),
                e["attempts"].clone()
            ),
            (json!(code), json!(status), json!(attempts)),
            "{name}"
        );
        assert_eq!(
            e["modeled_class"], code,
            "{name}: botocore knows the error shape"
        );
        assert_eq!(
            e["classified"],
            json!({"throttling": throttling, "retryable": retryable}),
            "{name}"
        );
    }
    let nf = py("v2_not_enabled_region");
    assert_eq!(
        (
            nf["code"].clone(),
            nf["status"].clone(),
            nf["modeled_class"].clone()
        ),
        (
            json!("ResourceNotFoundException"),
            json!(404),
            json!("ResourceNotFoundException")
        )
    );
    let p = py("v2_paginate");
    assert_eq!(
        (p["count"].clone(), p["distinct"].clone()),
        (json!(20), json!(20))
    );
    let f = py("v2_filtered");
    let uids: Vec<&str> = f["response"]["Findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["metadata"]["uid"].as_str().unwrap())
        .collect();
    assert_eq!(
        uids,
        vec![
            keys[0].metadata_uid.as_str(),
            keys[1].metadata_uid.as_str(),
            keys[2].metadata_uid.as_str()
        ]
    );

    // ---- the AWS CLI
    let c = py("cli_describe");
    assert_eq!(c["ok"], true, "{c}");
    assert!(c["response"]["HubV2Arn"].as_str().is_some());
    let c = &py("cli_update_uids")["response"];
    assert_eq!(
        c["ProcessedFindings"],
        json!([{"MetadataUid": keys[6].metadata_uid}])
    );
    assert_eq!(
        c["UnprocessedFindings"][0]["ErrorCode"],
        "ResourceNotFoundException"
    );
    let c = &py("cli_update_triples")["response"];
    assert_eq!(c["ProcessedFindings"].as_array().unwrap().len(), 2);
    let s = state.ocsf_state(&keys[6].uid()).unwrap();
    assert_eq!(
        (s.status_id, s.status.as_deref(), s.comment.as_deref()),
        (Some(3), Some("Suppressed"), Some("accepted risk"))
    );
    assert_eq!(
        state
            .ocsf_state(&keys[8].finding_identifier())
            .unwrap()
            .severity_id,
        Some(1)
    );
    let c = &py("cli_get")["response"];
    assert_eq!(
        c["Findings"].as_array().unwrap().len(),
        20,
        "the CLI follows NextToken on its own (pages of 7)"
    );
    let c = &py("cli_get_filtered")["response"];
    assert_eq!(c["Findings"].as_array().unwrap().len(), 1);
    assert_eq!(c["Findings"][0]["comment"], "accepted risk");
    for (name, code) in [
        ("cli_validation", "ValidationException"),
        ("cli_access_denied", "AccessDeniedException"),
        ("cli_internal", "InternalServerException"),
        ("cli_conflict", "ConflictException"),
        ("cli_throttled", "ThrottlingException"),
        ("cli_not_enabled", "ResourceNotFoundException"),
    ] {
        let e = py(name);
        assert_eq!(
            (e["ok"].clone(), e["code"].clone()),
            (json!(false), json!(code)),
            "{name}: {e}"
        );
        assert_ne!(e["exit"], 0, "{name}");
    }

    // ---- the Rust SDK: the same request-level codes
    let config = aws_sdk_securityhub::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDRUST", "secret", None, None, "test"))
        .endpoint_url(format!("http://{addr}"))
        .retry_config(RetryConfig::disabled())
        .build();
    let rust = Client::from_conf(config);
    let update = || {
        rust.batch_update_findings_v2()
            .metadata_uids(&keys[0].metadata_uid)
    };
    let code_of = |e: &dyn ProvideErrorMetadata| e.code().map(str::to_owned);
    let e = update().status_id(6).send().await.unwrap_err();
    assert_eq!(
        code_of(&e).as_deref(),
        py("v2_validation_value")["code"].as_str()
    );
    for (faults, name) in [
        (
            FaultConfig {
                access_denied: true,
                ..FaultConfig::default()
            },
            "v2_access_denied",
        ),
        (
            FaultConfig {
                http_500: 1.0,
                ..FaultConfig::default()
            },
            "v2_internal",
        ),
    ] {
        state.set_faults(faults);
        let e = update().status_id(2).send().await.unwrap_err();
        assert_eq!(code_of(&e).as_deref(), py(name)["code"].as_str(), "{name}");
        assert_eq!(
            code_of(&e).as_deref(),
            py(&name.replace("v2_", "cli_"))["code"].as_str()
        );
    }
    state.set_faults(FaultConfig::default());
    let mut v2 = sechub_triage::emulator::V2Config::default();
    v2.faults.request_conflict = 1.0;
    state.set_v2_config(v2);
    let e = update().status_id(2).send().await.unwrap_err();
    assert_eq!(code_of(&e).as_deref(), py("cli_conflict")["code"].as_str());
    let mut v2 = sechub_triage::emulator::V2Config::default();
    v2.throttle.batch_update_v2 = Bucket::new(0.000_1, 0);
    state.set_v2_config(v2);
    state.set_throttle(ThrottleConfig::default());
    let e = update().status_id(2).send().await.unwrap_err();
    assert_eq!(code_of(&e).as_deref(), py("v2_throttled")["code"].as_str());
    state.set_v2_enabled("eu-west-1", false);
    let eu = Client::from_conf(
        rust.config()
            .to_builder()
            .region(Region::new("eu-west-1"))
            .build(),
    );
    let e = eu.describe_security_hub_v2().send().await.unwrap_err();
    assert_eq!(
        code_of(&e).as_deref(),
        py("cli_not_enabled")["code"].as_str()
    );

    server.shutdown().await.unwrap();
}
