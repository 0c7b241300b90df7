//! First-run and environment errors: each one ends with two lines on
//! stderr, what went wrong and what to do, checked word for word, with no
//! SDK internals unless `--log-level debug`. Run as the real binary against
//! the emulator on 127.0.0.1 (or a closed local port); nothing else is
//! ever contacted (`AWS_ENDPOINT_URL` points every other AWS service at a
//! closed local port too).

use crate::support;

use std::path::Path;
use std::process::{Command, Output};

use crate::support::Emu;
use sechub_triage::emulator::{EmulatorConfig, FaultConfig, SyntheticSpec};
use sechub_triage::model::FindingKey;

fn seed(emu: &Emu, count: usize) -> Vec<FindingKey> {
    emu.state.seed_synthetic(&SyntheticSpec {
        count,
        seed: 15,
        regions: vec!["us-east-1".into()],
        ..SyntheticSpec::default()
    })
}

fn input(dir: &Path, keys: &[FindingKey]) -> String {
    let path = dir.join("in.csv");
    sechub_triage::emulator::write_keys_csv(keys, std::fs::File::create(&path).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

/// The binary with no credentials anywhere: an empty home, no config
/// files, IMDS off.
fn bare(home: &Path) -> Command {
    let mut c = Command::new(support::BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .current_dir(home);
    c
}

/// `update` over `input`; `endpoint` becomes `--endpoint-url` when given.
fn update(mut c: Command, input: &str, endpoint: Option<&str>, extra: &[&str]) -> Output {
    c.args([
        "update",
        input,
        "--workflow",
        "Status=SUPPRESSED",
        "--no-progress",
    ])
    .args(extra);
    if let Some(url) = endpoint {
        c.args(["--endpoint-url", url]);
    }
    c.output().unwrap()
}

/// The lines the command line printed about the error (log lines and the
/// summary aside).
fn advice(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("sechub-triage: "))
        .map(str::to_owned)
        .collect()
}

/// Neither stdout nor stderr shows the SDK's own wording.
fn no_internals(out: &Output) {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for internal in [
        "dispatch failure",
        "an error occurred while loading",
        "Attempted:",
        "os error",
    ] {
        assert!(!all.contains(internal), "{internal:?} shown:\n{all}");
    }
}

const TRIED: &str = "tried environment variables (AWS_ACCESS_KEY_ID), the shared config and \
credentials files (profiles, SSO), web identity (AWS_WEB_IDENTITY_TOKEN_FILE), container \
credentials, instance metadata (IMDS), disabled by AWS_EC2_METADATA_DISABLED";

#[test]
fn no_credentials_says_what_was_tried_and_the_three_fixes() {
    let emu = Emu::start(EmulatorConfig::default());
    let keys = seed(&emu, 3);
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), &keys);

    // No --endpoint-url: the advice for AWS. AWS_ENDPOINT_URL still keeps
    // any request on the emulator (none is sent: no credentials).
    let mut c = bare(dir.path());
    c.env("AWS_ENDPOINT_URL", emu.url());
    let out = update(c, &input, None, &[]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(
        advice(&out),
        [
            format!("sechub-triage: error: no AWS credentials found for profile \"default\"; {TRIED}"),
            "sechub-triage: to fix: choose a profile (--profile NAME or AWS_PROFILE), sign in with \
             `aws sso login`, or try it without AWS: run `sechub-triage emulator --listen \
             127.0.0.1:4566` and pass --endpoint-url http://127.0.0.1:4566 with any \
             AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                .to_owned(),
        ]
    );
    no_internals(&out);

    // Pointed at the emulator, without keys: the emulator takes any.
    let mut c = bare(dir.path());
    c.env("AWS_PROFILE", "nosuch");
    let out = update(c, &input, Some(&emu.url()), &[]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(
        advice(&out),
        [
            format!(
                "sechub-triage: error: no AWS credentials found for profile \"nosuch\"; {TRIED}"
            ),
            "sechub-triage: to fix: the emulator accepts any key: export AWS_ACCESS_KEY_ID=test \
             AWS_SECRET_ACCESS_KEY=test"
                .to_owned(),
        ]
    );
    no_internals(&out);
    assert_eq!(emu.requests(), 0, "nothing may be sent without credentials");

    // The SDK's own account is there for whoever asks for it.
    let out = update(
        bare(dir.path()),
        &input,
        Some(&emu.url()),
        &["--log-level", "debug"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loading AWS credentials failed"), "{err}");
    assert!(err.contains("no credentials found in chain"), "{err}");
}

/// The name `aws sso login` gives the cached token of SSO session "corp":
/// the SHA-1 of "corp" in hex.
const CORP_TOKEN_FILE: &str = "ee0bfd2552fbd840c02cc48b6e823320543c450f.json";

#[test]
fn an_expired_sso_session_says_aws_sso_login() {
    let emu = Emu::start(EmulatorConfig::default());
    let keys = seed(&emu, 3);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let input = input(home, &keys);
    let config = home.join("config");
    std::fs::write(
        &config,
        "[profile triage]\nsso_session = corp\nsso_account_id = 123456789012\n\
         sso_role_name = Triage\nregion = us-east-1\n\n[sso-session corp]\n\
         sso_start_url = https://example.awsapps.com/start\nsso_region = us-east-1\n\
         sso_registration_scopes = sso:account:access\n",
    )
    .unwrap();
    let cache = home.join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).unwrap();
    // Expired, and without the client registration a refresh needs: the
    // SDK gives up without calling anything.
    std::fs::write(
        cache.join(CORP_TOKEN_FILE),
        r#"{"accessToken":"expired","expiresAt":"2020-01-01T00:00:00Z","region":"us-east-1","startUrl":"https://example.awsapps.com/start"}"#,
    )
    .unwrap();
    let expected = [
        "sechub-triage: error: the AWS SSO session of profile \"triage\" has expired or was never started",
        "sechub-triage: to fix: sign in again with `aws sso login --profile triage`, then run the same command",
    ];
    let mut c = bare(home);
    c.env("AWS_CONFIG_FILE", &config);
    let out = update(c, &input, Some(&emu.url()), &["--profile", "triage"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(advice(&out), expected);
    no_internals(&out);

    // Never signed in (no cached token at all): the same advice.
    std::fs::remove_file(cache.join(CORP_TOKEN_FILE)).unwrap();
    let mut c = bare(home);
    c.env("AWS_CONFIG_FILE", &config)
        .env("AWS_PROFILE", "triage");
    let out = update(c, &input, Some(&emu.url()), &[]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(advice(&out), expected);
    assert_eq!(emu.requests(), 0);
}

#[test]
fn an_endpoint_that_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [FindingKey::new(
        "f-1",
        "arn:aws:securityhub:us-east-1::product/aws/securityhub",
    )];
    let input = input(dir.path(), &keys);
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = update(
        support::triage(dir.path()),
        &input,
        Some(&url),
        &["--max-attempts", "2"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        advice(&out),
        [
            format!(
                "sechub-triage: error: {url} could not be reached: 1 finding(s) not updated (ConnectionError)"
            ),
            "sechub-triage: to fix: is the emulator running there (`sechub-triage emulator \
             --listen ...`)? check --endpoint-url, then run again"
                .to_owned(),
        ]
    );
    no_internals(&out);
}

#[test]
fn a_region_without_security_hub() {
    let emu = Emu::start(EmulatorConfig::default());
    let keys = seed(&emu, 3);
    emu.state.set_faults(FaultConfig {
        invalid_access: true,
        ..FaultConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), &keys);
    let fix = "sechub-triage: to fix: enable it there (`aws securityhub enable-security-hub \
               --region REGION`), or, when findings are aggregated, send them to the \
               aggregation Region with --region";
    let out = update(support::triage(dir.path()), &input, Some(&emu.url()), &[]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(
        advice(&out),
        [
            "sechub-triage: error: Security Hub is not enabled for this account in the findings' \
             Region: Account 123456789012 is not subscribed to AWS Security Hub",
            fix,
        ]
    );
    no_internals(&out);

    let out = update(
        support::triage(dir.path()),
        &input,
        Some(&emu.url()),
        &["--region", "us-east-1"],
    );
    assert_eq!(
        advice(&out)[0],
        "sechub-triage: error: Security Hub is not enabled for this account in Region us-east-1 \
         (--region): Account 123456789012 is not subscribed to AWS Security Hub"
    );
}

#[test]
fn an_account_that_may_not_update_the_findings() {
    let emu = Emu::start(EmulatorConfig::default());
    let keys = seed(&emu, 3);
    emu.state.set_faults(FaultConfig {
        access_denied: true,
        ..FaultConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), &keys);
    let mut c = support::triage(dir.path());
    c.env("AWS_PROFILE", "member");
    let out = update(c, &input, Some(&emu.url()), &[]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(
        advice(&out),
        [
            "sechub-triage: error: access denied: User: arn:aws:iam::123456789012:user/emulator \
             is not authorized to perform: securityhub:BatchUpdateFindings with an explicit deny \
             in an identity-based policy",
            "sechub-triage: to fix: the caller (profile \"member\") may not update these findings: \
             use the Security Hub administrator account of their accounts (or their own account) \
             with securityhub:BatchUpdateFindings allowed, via --profile",
        ]
    );
    no_internals(&out);
}
