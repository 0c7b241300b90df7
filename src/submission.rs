//! The only place that calls `aws-sdk-securityhub`.
//!
//! [`Submitter`] holds one SDK client per Region, all built from one
//! `aws-config` chain with the SDK's own retries switched off: the engine's
//! retry queue owns every retry, so a chunk never costs hidden attempts
//! (each of which would spend quota). [`Submitter::send`] turns the SDK's
//! answer into plain data: per-finding results on success
//! ([`BatchResult`]), or a [`CallError`] carrying just what
//! [`crate::retry::classify_call`] needs plus a message for humans.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_securityhub::Client;
use aws_sdk_securityhub::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_securityhub::operation::RequestId;
use aws_sdk_securityhub::types::AwsSecurityFindingIdentifier;
use aws_smithy_runtime_api::http::Response as HttpResponse;

use crate::decision::Decision;
use crate::engine::{Reported, UpdateOperation};
use crate::model::{CurrentState, FindingKey};
use crate::retry::{CallFailure, EntryDisposition, Transport, classify_unprocessed};

pub mod v2;

/// How to reach Security Hub.
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    /// `--profile`: a named profile of the shared config files.
    pub profile: Option<String>,
    /// `--endpoint-url`: send every request there (the emulator, a VPC endpoint).
    pub endpoint_url: Option<String>,
    /// Per-attempt timeout; a request slower than this is retried.
    pub request_timeout: Option<Duration>,
}

/// The service's answer to one successful update call, for findings named
/// by keys of type `K` ([`FindingKey`] for `BatchUpdateFindings`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchResult<K = FindingKey> {
    /// Findings reported as processed.
    pub processed: Vec<K>,
    /// Findings reported as not processed, with `ErrorCode` and `ErrorMessage`.
    pub unprocessed: Vec<(K, String, String)>,
    /// The request id, for logs.
    pub request_id: Option<String>,
}

impl<K> Default for BatchResult<K> {
    fn default() -> Self {
        BatchResult {
            processed: Vec::new(),
            unprocessed: Vec::new(),
            request_id: None,
        }
    }
}

/// A failed call: classification facts and a message safe to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    /// What [`crate::retry::classify_call`] looks at.
    pub failure: CallFailure,
    /// The error code to record for findings that end on this error.
    pub code: String,
    /// A human-readable description (never contains credentials).
    pub message: String,
    /// The request id, when the service answered.
    pub request_id: Option<String>,
}

/// Default per-attempt timeout.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `BatchUpdateFindings` requests, one client per Region.
pub struct Submitter {
    base: SdkConfig,
    endpoint_url: Option<String>,
    request_timeout: Duration,
    clients: Mutex<HashMap<String, Client>>,
}

impl Submitter {
    /// Loads the standard `aws-config` chain (environment, profiles, SSO, web
    /// identity, instance roles) with retries disabled.
    pub(crate) async fn from_env(settings: &AwsSettings) -> Self {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).retry_config(RetryConfig::disabled());
        if let Some(p) = &settings.profile {
            loader = loader.profile_name(p);
        }
        let base = loader.load().await;
        Self::from_sdk_config(base, settings)
    }

    /// Uses an already-built SDK configuration (tests, the demo). Retries are
    /// disabled on every client regardless of what `base` says.
    pub fn from_sdk_config(base: SdkConfig, settings: &AwsSettings) -> Self {
        Submitter {
            endpoint_url: settings
                .endpoint_url
                .clone()
                .or_else(|| base.endpoint_url().map(str::to_owned)),
            request_timeout: settings.request_timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT),
            base,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The Region the SDK configuration names (`AWS_REGION`, the profile).
    pub(crate) fn configured_region(&self) -> Option<String> {
        self.base.region().map(|r| r.as_ref().to_owned())
    }

    /// The client for `region`, built on first use (retries off).
    pub(crate) fn client(&self, region: &str) -> Client {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                let mut b = aws_sdk_securityhub::config::Builder::from(&self.base)
                    .region(Region::new(region.to_owned()))
                    .retry_config(RetryConfig::disabled())
                    .timeout_config(
                        TimeoutConfig::builder()
                            .operation_attempt_timeout(self.request_timeout)
                            .connect_timeout(Duration::from_secs(10))
                            .build(),
                    );
                if let Some(url) = &self.endpoint_url {
                    b = b.endpoint_url(url);
                }
                Client::from_conf(b.build())
            })
            .clone()
    }

    /// Sends one `BatchUpdateFindings` request for `keys` to `region`.
    pub async fn send(
        &self,
        region: &str,
        decision: &Decision,
        keys: &[FindingKey],
    ) -> Result<BatchResult, CallError> {
        let ids = keys
            .iter()
            .map(|k| {
                AwsSecurityFindingIdentifier::builder()
                    .id(&k.id)
                    .product_arn(&k.product_arn)
                    .build()
            })
            .collect();
        let request = self
            .client(region)
            .batch_update_findings()
            .set_finding_identifiers(Some(ids));
        let request = decision.apply(request);
        match request.send().await {
            Ok(out) => {
                let key_of = |i: Option<&AwsSecurityFindingIdentifier>| {
                    let i = i?;
                    Some(FindingKey::new(i.id()?, i.product_arn()?))
                };
                Ok(BatchResult {
                    processed: out
                        .processed_findings()
                        .iter()
                        .filter_map(|i| key_of(Some(i)))
                        .collect(),
                    unprocessed: out
                        .unprocessed_findings()
                        .iter()
                        .filter_map(|u| {
                            Some((
                                key_of(u.finding_identifier())?,
                                u.error_code().unwrap_or_default().to_owned(),
                                u.error_message().unwrap_or_default().to_owned(),
                            ))
                        })
                        .collect(),
                    request_id: out.request_id().map(str::to_owned),
                })
            }
            Err(e) => Err(call_error(e)),
        }
    }
}

/// `BatchUpdateFindings`, the engine's first update operation: findings
/// named by `{Id, ProductArn}`, the nine fields of [`Decision`], the
/// per-finding codes of [`crate::retry::classify_unprocessed`].
#[derive(Clone)]
pub struct BatchUpdateFindings {
    submitter: Arc<Submitter>,
}

impl BatchUpdateFindings {
    /// The operation, sending through `submitter`'s clients.
    pub fn new(submitter: Arc<Submitter>) -> Self {
        BatchUpdateFindings { submitter }
    }
}

impl UpdateOperation for BatchUpdateFindings {
    type Key = FindingKey;
    type Decision = Decision;

    const NAME: &'static str = "BatchUpdateFindings";
    const MAX_CHUNK: usize = crate::engine::MAX_CHUNK;

    fn send(
        &self,
        region: &str,
        decision: &Decision,
        keys: &[FindingKey],
    ) -> impl Future<Output = Result<BatchResult, CallError>> + Send {
        self.submitter.send(region, decision, keys)
    }

    fn classify_entry(code: &str) -> EntryDisposition {
        classify_unprocessed(code)
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
        // What the decision's fields held before is worked out only for
        // findings that were or may have been applied (`updated`): most
        // records never need it. The others keep the decision meant for
        // them, which the `--failed` file carries.
        let (applied, prior) = if updated {
            let prior = crate::revert::prior_fragment(&decision, current);
            (Some(decision), prior.map(Arc::new))
        } else {
            (Some(decision), None)
        };
        Reported {
            key,
            applied,
            prior,
        }
    }
}

/// What a failed SDK call says, for classification (any operation's: the
/// updates, and the query source's `GetFindings`).
pub(crate) fn call_error<E>(err: SdkError<E, HttpResponse>) -> CallError
where
    E: ProvideErrorMetadata + RequestId + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().map(str::to_owned);
            let message = se
                .err()
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status} with no message"));
            CallError {
                code: code.clone().unwrap_or_else(|| format!("HTTP{status}")),
                failure: CallFailure {
                    status: Some(status),
                    code,
                    transport: None,
                },
                message,
                request_id: se.err().request_id().map(str::to_owned),
            }
        }
        SdkError::ResponseError(re) => {
            // A response came but could not be read (cut off, not JSON).
            let status = re.raw().status().as_u16();
            let transport = if (200..300).contains(&status) {
                Some(Transport::Io)
            } else {
                None
            };
            CallError {
                failure: CallFailure {
                    status: Some(status),
                    code: None,
                    transport,
                },
                code: "ResponseError".into(),
                message: format!("unreadable response (HTTP {status}): {}", error_chain(&err)),
                request_id: None,
            }
        }
        SdkError::TimeoutError(_) => transport_error(Transport::Timeout, "Timeout", &err),
        SdkError::DispatchFailure(df) => {
            if has_credentials_error(&err) {
                transport_error(Transport::Credentials, "CredentialsError", &err)
            } else if df.is_timeout() {
                transport_error(Transport::Timeout, "Timeout", &err)
            } else if df.is_user() {
                transport_error(Transport::Other, "DispatchFailure", &err)
            } else {
                transport_error(Transport::Io, "ConnectionError", &err)
            }
        }
        _ => {
            if has_credentials_error(&err) {
                transport_error(Transport::Credentials, "CredentialsError", &err)
            } else {
                transport_error(Transport::Other, "RequestConstructionError", &err)
            }
        }
    }
}

fn transport_error(t: Transport, code: &str, err: &(dyn std::error::Error + 'static)) -> CallError {
    CallError {
        failure: CallFailure {
            status: None,
            code: None,
            transport: Some(t),
        },
        code: code.into(),
        message: if t == Transport::Credentials {
            // One sentence; the SDK's nested account only at debug level.
            tracing::debug!(error = %error_chain(err), "loading AWS credentials failed");
            crate::diagnose::credentials_message(err)
        } else {
            error_chain(err)
        },
        request_id: None,
    }
}

/// Whether a failed request may have reached the service and been applied
/// though no answer came back: a timeout or a connection lost after the
/// request left, as opposed to a connection that was never made (refused,
/// name not resolved), credentials that could not be loaded, or an answer
/// that says what happened. Findings of such a request are `unknown`, not
/// `failed`: sending them again is the only way to know.
pub(crate) fn may_have_been_applied(e: &CallError) -> bool {
    match e.failure.transport {
        Some(Transport::Timeout) => !never_connected(&e.message),
        Some(Transport::Io) => !never_connected(&e.message),
        _ => false,
    }
}

/// The connector's words for a connection that was never made.
fn never_connected(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "(connect)",
        "tcp connect error",
        "connection refused",
        "dns error",
        "failed to lookup",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// The error and its sources, joined (repeats skipped): the SDK's top-level
/// Display alone is often just "dispatch failure".
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let msg = e.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = e.source();
    }
    s
}

fn has_credentials_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<CredentialsError>().is_some() {
            return true;
        }
        let text = e.to_string();
        if text.contains("no credentials") || text.contains("NoMatchingAuthScheme") {
            return true;
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(t: Option<Transport>, status: Option<u16>, message: &str) -> CallError {
        CallError {
            failure: CallFailure {
                status,
                code: None,
                transport: t,
            },
            code: "X".into(),
            message: message.into(),
            request_id: None,
        }
    }

    #[test]
    fn only_requests_that_may_have_left_are_possibly_applied() {
        let refused = "dispatch failure: io error: client error (Connect): tcp connect error: \
                       Connection refused (os error 111)";
        assert!(!may_have_been_applied(&err(
            Some(Transport::Io),
            None,
            refused
        )));
        let dns = "dispatch failure: io error: client error (Connect): dns error: failed to lookup address";
        assert!(!may_have_been_applied(&err(Some(Transport::Io), None, dns)));
        let reset = "dispatch failure: io error: connection closed before message completed";
        assert!(may_have_been_applied(&err(
            Some(Transport::Io),
            None,
            reset
        )));
        assert!(may_have_been_applied(&err(
            Some(Transport::Timeout),
            None,
            "timeout: operation timed out"
        )));
        assert!(!may_have_been_applied(&err(
            Some(Transport::Credentials),
            None,
            "no credentials"
        )));
        // An answer says what happened.
        assert!(!may_have_been_applied(&err(
            None,
            Some(500),
            "InternalException"
        )));
    }
}
