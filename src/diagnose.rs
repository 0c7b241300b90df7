//! First-run and environment errors in words that say what to do.
//!
//! Two halves. [`credentials_message`] turns the SDK's account of a failed
//! credential chain (several nested "dispatch failure: other: an error
//! occurred while loading credentials: ..." layers) into one short
//! sentence; [`crate::submission`] uses it as the failed call's message, so
//! the abort reason, the summary, the report and the results file all carry
//! it, and the full chain goes to the debug log. [`Trouble::after_run`]
//! then reads a finished run's summary (its abort reason and error codes)
//! and [`Trouble::lines`] gives the one or two lines the command line
//! prints on stderr: what went wrong, then how to fix it.
//!
//! The situations: no credentials at all, an expired (or never started)
//! SSO session, other credential-loading failures, credentials the service
//! rejects, an endpoint that does not answer, a Region where Security Hub
//! is not enabled (`InvalidAccessException`) and an account that may not
//! update the findings it names (`AccessDeniedException`).

use crate::reporting::RunSummary;

/// How a credentials failure's short message begins, per kind (shared by
/// both halves, so that the command line recognises what submission wrote).
const NO_CREDENTIALS: &str = "no AWS credentials found";
const SSO_EXPIRED: &str = "the AWS SSO session has expired or was never started";
const NOT_LOADED: &str = "the AWS credentials could not be loaded";

/// The error codes of a request that got no answer.
const UNANSWERED: [&str; 2] = ["ConnectionError", "Timeout"];

/// Codes with which the service rejects the credentials themselves.
const REJECTED: [&str; 6] = [
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignatureException",
];

/// One short sentence for a failure to load credentials, from the SDK
/// error and its sources.
pub(crate) fn credentials_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut texts = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        texts.push(e.to_string());
        cur = e.source();
    }
    let all = texts.join("\n");
    if all.contains("SSO token has expired")
        || all.contains("cached SSO token")
        || all.contains("SSO session")
    {
        return SSO_EXPIRED.to_owned();
    }
    if all.contains("no credentials found in chain") || all.contains("no providers in chain") {
        return format!("{NO_CREDENTIALS}; tried {}", tried(&all));
    }
    // The innermost cause is the one that names the problem; the layers
    // above it only say where it happened.
    let cause = texts
        .last()
        .map(|t| t.lines().next().unwrap_or_default().trim().to_owned())
        .unwrap_or_default();
    if cause.is_empty() {
        NOT_LOADED.to_owned()
    } else {
        format!("{NOT_LOADED}: {cause}")
    }
}

/// What the default chain tried, in plain words, from its "Attempted:"
/// list (one `  Provider: why` line each); the standard chain when the
/// list cannot be read.
fn tried(chain: &str) -> String {
    let mut out = Vec::new();
    if let Some((_, list)) = chain.split_once("Attempted:") {
        for line in list.lines() {
            let Some((name, why)) = line.trim().split_once(':') else {
                continue;
            };
            let mut words = match name.trim() {
                "Environment" => "environment variables (AWS_ACCESS_KEY_ID)".to_owned(),
                "Profile" => "the shared config and credentials files (profiles, SSO)".to_owned(),
                "WebIdentityToken" => "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)".to_owned(),
                "EcsContainer" => "container credentials".to_owned(),
                "Ec2InstanceMetadata" => "instance metadata (IMDS)".to_owned(),
                _ => continue,
            };
            if name.trim() == "Ec2InstanceMetadata" && why.contains("AWS_EC2_METADATA_DISABLED") {
                words.push_str(", disabled by AWS_EC2_METADATA_DISABLED");
            }
            out.push(words);
        }
    }
    if out.is_empty() {
        "environment variables, the shared config and credentials files (profiles, SSO), \
         web identity, container credentials and instance metadata (IMDS)"
            .to_owned()
    } else {
        out.join(", ")
    }
}

/// Where and as whom the run called Security Hub: what the advice names.
#[derive(Clone, Debug, Default)]
pub struct Setting {
    /// `--profile`, else `AWS_PROFILE`.
    pub profile: Option<String>,
    /// `--endpoint-url`.
    pub endpoint_url: Option<String>,
    /// `--region`.
    pub region: Option<String>,
}

impl Setting {
    /// From the command line's `--profile`, `--endpoint-url` and `--region`
    /// (and `AWS_PROFILE` when no `--profile`).
    pub fn of(
        profile: &Option<String>,
        endpoint_url: &Option<String>,
        region: &Option<String>,
    ) -> Self {
        Setting {
            profile: profile
                .clone()
                .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty())),
            endpoint_url: endpoint_url.clone(),
            region: region.clone(),
        }
    }
}

/// A problem of the environment that a run ran into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Trouble {
    /// The credential chain found nothing; the message says what it tried.
    NoCredentials(String),
    /// The SSO profile's session has expired (or was never started).
    SsoExpired,
    /// Loading credentials failed for another reason (the message says which).
    CredentialsNotLoaded(String),
    /// The service rejected the credentials (expired, unknown, bad signature).
    CredentialsRejected(String),
    /// No answer: `count` findings failed with `code`.
    Unanswered {
        /// `ConnectionError` or `Timeout`.
        code: String,
        /// Findings that ended on it.
        count: u64,
    },
    /// `InvalidAccessException`: Security Hub is not enabled there.
    NotSubscribed(String),
    /// `AccessDeniedException`: this account may not update these findings.
    AccessDenied(String),
}

impl Trouble {
    /// The problem a finished run shows, if it is one of these.
    pub(crate) fn after_run(summary: &RunSummary) -> Option<Trouble> {
        if let Some(reason) = &summary.aborted {
            return Trouble::from_abort(reason);
        }
        UNANSWERED.iter().find_map(|code| {
            summary
                .errors_by_code
                .get(*code)
                .filter(|n| **n > 0)
                .map(|n| Trouble::Unanswered {
                    code: (*code).to_owned(),
                    count: *n,
                })
        })
    }

    /// Reads the engine's abort reason, `[run aborted: ]CODE: message`.
    pub(crate) fn from_abort(reason: &str) -> Option<Trouble> {
        let reason = reason.strip_prefix("run aborted: ").unwrap_or(reason);
        let (code, message) = reason.split_once(": ").unwrap_or((reason, ""));
        let message = message.to_owned();
        match code {
            "CredentialsError" if message.starts_with(NO_CREDENTIALS) => {
                Some(Trouble::NoCredentials(message))
            }
            "CredentialsError" if message.starts_with(SSO_EXPIRED) => Some(Trouble::SsoExpired),
            "CredentialsError" => Some(Trouble::CredentialsNotLoaded(message)),
            "InvalidAccessException" => Some(Trouble::NotSubscribed(without_request_id(&message))),
            "AccessDeniedException" => Some(Trouble::AccessDenied(without_request_id(&message))),
            c if REJECTED.contains(&c) => Some(Trouble::CredentialsRejected(format!(
                "{c}: {}",
                without_request_id(&message)
            ))),
            _ => None,
        }
    }

    /// What went wrong, then what to do: two lines, without a prefix.
    pub(crate) fn lines(&self, s: &Setting) -> [String; 2] {
        let profile = s.profile.as_deref().unwrap_or("default");
        let local = s.endpoint_url.as_deref().is_some_and(is_loopback);
        let try_emulator = if local {
            // The emulator reads the access key but checks nothing.
            "the emulator accepts any key: export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"
                .to_owned()
        } else {
            "choose a profile (--profile NAME or AWS_PROFILE), sign in with `aws sso login`, or \
             try it without AWS: run `sechub-triage emulator --listen 127.0.0.1:4566` and pass \
             --endpoint-url http://127.0.0.1:4566 with any AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                .to_owned()
        };
        match self {
            Trouble::NoCredentials(message) => {
                let rest = message.strip_prefix(NO_CREDENTIALS).unwrap_or(message);
                [
                    format!("{NO_CREDENTIALS} for profile \"{profile}\"{rest}"),
                    try_emulator,
                ]
            }
            Trouble::SsoExpired => [
                format!(
                    "the AWS SSO session of profile \"{profile}\" has expired or was never started"
                ),
                format!(
                    "sign in again with `aws sso login --profile {profile}`, then run the same command"
                ),
            ],
            Trouble::CredentialsNotLoaded(message) => [
                format!(
                    "{message} (profile \"{profile}\"; --log-level debug shows the whole chain)"
                ),
                try_emulator,
            ],
            Trouble::CredentialsRejected(message) => [
                format!(
                    "Security Hub rejected the credentials of profile \"{profile}\" ({message})"
                ),
                "they may have expired: refresh them (`aws sso login`, new temporary credentials) \
                 or choose another profile with --profile"
                    .to_owned(),
            ],
            Trouble::Unanswered { code, count } => {
                let (where_, fix) = match &s.endpoint_url {
                    Some(url) => (
                        url.clone(),
                        if local {
                            "is the emulator running there (`sechub-triage emulator --listen ...`)? \
                             check --endpoint-url, then run again"
                        } else {
                            "check --endpoint-url and that the endpoint is reachable from here, then run again"
                        },
                    ),
                    None => (
                        "the Security Hub endpoints (securityhub.REGION.amazonaws.com)".to_owned(),
                        "check the network, proxy (HTTPS_PROXY) and firewall, or give a VPC \
                         endpoint with --endpoint-url, then run again",
                    ),
                };
                let what = if code == "Timeout" {
                    "did not answer in time (--request-timeout)"
                } else {
                    "could not be reached"
                };
                [
                    format!("{where_} {what}: {count} finding(s) not updated ({code})"),
                    fix.to_owned(),
                ]
            }
            Trouble::NotSubscribed(message) => {
                let region = match &s.region {
                    Some(r) => format!("Region {r} (--region)"),
                    None => "the findings' Region".to_owned(),
                };
                [
                    format!("Security Hub is not enabled for this account in {region}: {message}"),
                    "enable it there (`aws securityhub enable-security-hub --region REGION`), or, \
                     when findings are aggregated, send them to the aggregation Region with --region"
                        .to_owned(),
                ]
            }
            Trouble::AccessDenied(message) => [
                format!("access denied: {message}"),
                format!(
                    "the caller (profile \"{profile}\") may not update these findings: use the \
                     Security Hub administrator account of their accounts (or their own account) \
                     with securityhub:BatchUpdateFindings allowed, via --profile"
                ),
            ],
        }
    }
}

/// `... (request id X)` without the request id (it is in the results file
/// and the debug log).
fn without_request_id(message: &str) -> String {
    match message.rfind(" (request id ") {
        Some(i) if message.ends_with(')') => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    matches!(host, "localhost" | "[::1]")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The advice for a finished run, as `sechub-triage: ...` lines for stderr.
pub fn advice(summary: &RunSummary, setting: &Setting) -> Vec<String> {
    match Trouble::after_run(summary) {
        Some(t) => {
            let [what, fix] = t.lines(setting);
            vec![
                format!("sechub-triage: error: {what}"),
                format!("sechub-triage: to fix: {fix}"),
            ]
        }
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abort_reasons_map_to_their_trouble() {
        let t = |r: &str| Trouble::from_abort(r);
        assert_eq!(
            t("run aborted: CredentialsError: no AWS credentials found; tried x"),
            Some(Trouble::NoCredentials(
                "no AWS credentials found; tried x".into()
            ))
        );
        assert_eq!(
            t(&format!("run aborted: CredentialsError: {SSO_EXPIRED}")),
            Some(Trouble::SsoExpired)
        );
        assert_eq!(
            t(
                "run aborted: ExpiredTokenException: The security token included in the request is expired (request id 1)"
            ),
            Some(Trouble::CredentialsRejected(
                "ExpiredTokenException: The security token included in the request is expired"
                    .into()
            ))
        );
        assert_eq!(
            t(
                "run aborted: InvalidAccessException: Account 1 is not subscribed to AWS Security Hub (request id r)"
            ),
            Some(Trouble::NotSubscribed(
                "Account 1 is not subscribed to AWS Security Hub".into()
            ))
        );
        assert_eq!(t("run aborted: RequestConstructionError: x"), None);
    }

    #[test]
    fn the_chain_list_becomes_plain_words() {
        let chain = "no credentials found in chain. Attempted:\n  Environment: not set\n  \
                     Profile: not enabled\n  Ec2InstanceMetadata: IMDS disabled by \
                     AWS_EC2_METADATA_DISABLED env var set to `true`";
        assert_eq!(
            tried(chain),
            "environment variables (AWS_ACCESS_KEY_ID), the shared config and credentials \
             files (profiles, SSO), instance metadata (IMDS), disabled by AWS_EC2_METADATA_DISABLED"
        );
        assert!(tried("something else").contains("web identity"));
    }

    #[test]
    fn loopback_endpoints() {
        assert!(is_loopback("http://127.0.0.1:4566"));
        assert!(is_loopback("http://localhost:4566/"));
        assert!(is_loopback("http://[::1]:80"));
        assert!(!is_loopback("https://securityhub.us-east-1.amazonaws.com"));
        assert!(!is_loopback("https://127.example.com"));
    }
}
