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
