//! The HTTP/1.1 front: [`serve`] accepts connections on a listener the
//! caller bound, routes restJson1 requests to the operations and
//! `/_emulator/` to the admin API, and writes responses and errors exactly as
//! the SDKs parse them (docs/service-facts.md §3: status, `x-amzn-ErrorType`,
//! `{"Code","Message"}` body, `x-amzn-RequestId` on everything).
//!
//! Order of checks for an API request: route (404), SigV4 credential scope
//! (403), body size (413), injected IAM denial (403), throttling (429),
//! injected subscription error (401), validation (400), then the operation
//! (which adds latency, request faults and per-finding outcomes). The
//! `Authorization` header is read for its access key and Region only; it is
//! never logged or echoed.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::admin;
use super::counters::Operation;
use super::ops::{self, ApiError, ApiReply, Caller};
use super::rng::SplitMix64;
use super::state::EmulatorState;
use super::throttle::bucket_of;
use super::v2;

/// The body type of every response.
pub(crate) type Body = Full<Bytes>;

/// Returned by the service to make hyper close the connection without a
/// response (injected "dropped connection").
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

/// How long a client may take: for the head of each request (which covers
/// a keep-alive connection left idle between requests, and headers sent a
/// byte at a time), and for its body. A connection that takes longer is
/// closed, so that idle or trickling clients cannot hold sockets forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    /// From the moment the server waits for a request until its headers
    /// are all in (idle keep-alive time included).
    pub(crate) header_timeout: Duration,
    /// Reading a request's body.
    pub(crate) body_timeout: Duration,
}

/// Default [`ConnectionLimits::header_timeout`]: the SDK's pooled
/// connections are reopened after this (as the service closes idle ones).
pub(crate) const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// Default [`ConnectionLimits::body_timeout`].
pub(crate) const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(20);

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// Serves the emulator on `listener` until `shutdown` completes, then stops
/// accepting, lets requests in progress finish (idle keep-alive connections
/// are closed at once) and returns. Connections have the default
/// [`ConnectionLimits`].
///
/// Errors accepting one connection (e.g. too many open files) are logged
/// and retried after a short pause rather than ending the server.
pub async fn serve(
    listener: TcpListener,
    state: EmulatorState,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_with(listener, state, shutdown, ConnectionLimits::default()).await
}

/// [`serve`] with the given connection limits.
pub(crate) async fn serve_with(
    listener: TcpListener,
    state: EmulatorState,
    shutdown: impl Future<Output = ()>,
    limits: ConnectionLimits,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        // Reap finished connection tasks so the set does not grow forever.
        while conns.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "emulator: accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let mut stop = stop_rx.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req| handle(state.clone(), limits, req));
            let conn = http1::Builder::new()
                .keep_alive(true)
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                // Connection errors (client gone, injected drops, timeouts)
                // end only this connection.
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// A request id shaped like the service's (a UUID).
fn request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    SplitMix64::for_index(start, NEXT.fetch_add(1, Ordering::Relaxed)).uuid()
}

/// A JSON response with the headers every answer carries.
pub(crate) fn json_response(status: u16, body: Vec<u8>, request_id: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-RequestId", v);
    }
    r
}

fn error_response(e: &ApiError, request_id: &str) -> Response<Body> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct ErrorBody<'a> {
        code: &'a str,
        message: &'a str,
    }
    let body = serde_json::to_vec(&ErrorBody {
        code: e.code,
        message: &e.message,
    })
    .unwrap_or_default();
    let mut r = json_response(e.status, body, request_id);
    r.headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(e.code));
    r
}

fn route(method: &Method, path: &str) -> Option<Operation> {
    match (method.as_str(), path) {
        ("PATCH", "/findings/batchupdate") => Some(Operation::BatchUpdateFindings),
        ("POST", "/findings/import") => Some(Operation::BatchImportFindings),
        ("POST", "/findings") => Some(Operation::GetFindings),
        ("PATCH", "/findingsv2/batchupdatev2") => Some(Operation::BatchUpdateFindingsV2),
        ("POST", "/findingsv2") => Some(Operation::GetFindingsV2),
        ("GET", "/hubv2") => Some(Operation::DescribeSecurityHubV2),
        _ => None,
    }
}

/// Records the end of an API request in the counters, exactly once; if the
/// handler future is dropped first (client gone), it counts as cancelled.
struct Tracker<'a> {
    state: &'a EmulatorState,
    op: Operation,
    done: bool,
}

impl<'a> Tracker<'a> {
    fn start(state: &'a EmulatorState, op: Operation) -> Self {
        state.inner.counters.arrived(op);
        Tracker {
            state,
            op,
            done: false,
        }
    }

    fn finish(&mut self, outcome: &str, code: Option<&str>) {
        self.done = true;
        self.state.inner.counters.finished(self.op, outcome, code);
    }
}

impl Drop for Tracker<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.state
                .inner
                .counters
                .finished(self.op, "cancelled", None);
        }
    }
}

async fn handle(
    state: EmulatorState,
    limits: ConnectionLimits,
    req: Request<Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let path = req.uri().path();
    if path == "/_emulator" || path.starts_with("/_emulator/") {
        return Ok(admin::handle(&state, req).await);
    }
    let rid = request_id();
    let Some(op) = route(req.method(), path) else {
        state.inner.counters.unknown_route();
        let e = ApiError {
            status: 404,
            code: "UnknownOperationException",
            message: format!(
                "the emulator has no operation at {} {path} (it implements PATCH \
                 /findings/batchupdate, POST /findings/import, POST /findings, PATCH \
                 /findingsv2/batchupdatev2, POST /findingsv2 and GET /hubv2)",
                req.method()
            ),
        };
        return Ok(error_response(&e, &rid));
    };
    let mut tracker = Tracker::start(&state, op);
    match run(&state, op, req, limits.body_timeout).await {
        ApiReply::Ok(body) => {
            tracker.finish("200", None);
            Ok(json_response(200, body, &rid))
        }
        ApiReply::Err(e) => {
            tracker.finish(&format!("{} {}", e.status, e.code), Some(e.code));
            Ok(error_response(&e, &rid))
        }
        ApiReply::Drop => {
            tracker.finish("dropped", None);
            Err(DropConnection)
        }
    }
}

async fn run(
    state: &EmulatorState,
    op: Operation,
    req: Request<Incoming>,
    body_timeout: Duration,
) -> ApiReply {
    let caller = match caller(req.headers()) {
        Ok(c) => c,
        Err(e) => return ApiReply::Err(e),
    };
    let body = match tokio::time::timeout(body_timeout, read_body(req, state.inner.max_body_bytes))
        .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return ApiReply::Err(e),
        // A body trickling in: close the connection.
        Err(_) => return ApiReply::Drop,
    };
    let live = state.live();
    if live.faults.access_denied {
        return ApiReply::Err(ApiError {
            status: 403,
            code: "AccessDeniedException",
            message: format!(
                "User: arn:aws:iam::{}:user/emulator is not authorized to perform: \
                 securityhub:{op} with an explicit deny in an identity-based policy",
                state.inner.account_id
            ),
        });
    }
    let admitted = state.inner.throttler.try_acquire_in(
        live.throttle.enabled,
        bucket_of(&live.throttle, &live.v2.throttle, op),
        &caller.access_key,
        &caller.region,
        op,
        Instant::now(),
    );
    if !admitted && op.is_v2() {
        // The V2 operations model `ThrottlingException`.
        return ApiReply::Err(ApiError {
            status: 429,
            code: "ThrottlingException",
            message: format!("Rate exceeded for {op}"),
        });
    }
    if !admitted {
        let code = live.throttle.code.as_str();
        return ApiReply::Err(ApiError {
            status: 429,
            code,
            message: match code {
                "TooManyRequestsException" => "Too Many Requests".to_owned(),
                _ => format!("Rate exceeded for {op}"),
            },
        });
    }
    // `InvalidAccessException` ("not subscribed") is Security Hub CSPM's;
    // the V2 operations answer from their own enabled-Region switch.
    if live.faults.invalid_access && !op.is_v2() {
        return ApiReply::Err(ApiError {
            status: 401,
            code: "InvalidAccessException",
            message: format!(
                "Account {} is not subscribed to AWS Security Hub",
                state.inner.account_id
            ),
        });
    }
    match op {
        Operation::BatchUpdateFindings => ops::batch_update(state, &live, &caller, &body).await,
        Operation::BatchImportFindings => ops::batch_import(state, &live, &caller, &body).await,
        Operation::GetFindings => ops::get_findings(state, &live, &caller, &body).await,
        Operation::BatchUpdateFindingsV2 => v2::batch_update_v2(state, &live, &caller, &body).await,
        Operation::GetFindingsV2 => v2::get_findings_v2(state, &live, &caller, &body).await,
        Operation::DescribeSecurityHubV2 => v2::describe_hub_v2(state, &live, &caller).await,
    }
}

/// Reads the access key and Region from
/// `Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/securityhub/aws4_request, ...`.
/// The signature is not checked. Error messages never include the header.
pub(crate) fn caller(headers: &hyper::HeaderMap) -> Result<Caller, ApiError> {
    let deny = |code: &'static str, message: &str| ApiError {
        status: 403,
        code,
        message: message.to_owned(),
    };
    let Some(value) = headers.get(hyper::header::AUTHORIZATION) else {
        return Err(deny(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let incomplete = || {
        deny(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential' parameter in the form \
             Credential=<access key>/<date>/<region>/securityhub/aws4_request",
        )
    };
    let text = value.to_str().map_err(|_| incomplete())?;
    let rest = text
        .trim_start()
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or_else(incomplete)?;
    let credential = rest
        .split(',')
        .map(str::trim)
        .find_map(|part| part.strip_prefix("Credential="))
        .ok_or_else(incomplete)?;
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key, _date, region, service, "aws4_request"] = parts.as_slice() else {
        return Err(incomplete());
    };
    if access_key.is_empty() || region.is_empty() {
        return Err(incomplete());
    }
    if *service != "securityhub" {
        return Err(deny(
            "InvalidSignatureException",
            "Credential should be scoped to correct service: 'securityhub'.",
        ));
    }
    Ok(Caller {
        access_key: (*access_key).to_owned(),
        region: (*region).to_owned(),
    })
}

fn too_large(limit: usize) -> ApiError {
    ApiError {
        status: 413,
        code: "RequestEntityTooLargeException",
        message: format!("Request must be smaller than {limit} bytes"),
    }
}

/// After a body passes the limit, this much more is read and discarded so
/// that the 413 reaches the client: closing a socket with unread data makes
/// the kernel send a reset, which can destroy the response in flight.
const DRAIN_CAP: u64 = 32 * 1024 * 1024;

async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64 + DRAIN_CAP) {
        // Too big even to drain: answer at once and let the connection close.
        return Err(too_large(limit));
    }
    let mut body = req.into_body();
    let mut buf = bytes::BytesMut::new();
    let mut discarded: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(ApiError::invalid_input("could not read the request body"));
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if discarded > 0 || buf.len() + data.len() > limit {
            discarded += data.len() as u64;
            buf.clear();
            if discarded > DRAIN_CAP {
                break;
            }
        } else {
            buf.extend_from_slice(&data);
        }
    }
    if discarded > 0 {
        return Err(too_large(limit));
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> hyper::HeaderMap {
        let mut h = hyper::HeaderMap::new();
        if let Some(a) = auth {
            h.insert(
                hyper::header::AUTHORIZATION,
                HeaderValue::from_str(a).unwrap(),
            );
        }
        h
    }

    #[test]
    fn credential_scope_is_parsed() {
        let c = caller(&headers(Some(
            "AWS4-HMAC-SHA256 Credential=AKIDTEST/20261121/eu-west-1/securityhub/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abcdef",
        )))
        .unwrap();
        assert_eq!(
            (c.access_key.as_str(), c.region.as_str()),
            ("AKIDTEST", "eu-west-1")
        );
    }

    #[test]
    fn bad_authorization_is_403_and_never_echoed() {
        let secret = "AWS4-HMAC-SHA256 Credential=AKIDSECRET/20261121/us-east-1/s3/aws4_request, Signature=SIGSECRET";
        let cases = [
            (None, "MissingAuthenticationTokenException"),
            (Some("Basic dXNlcjpwYXNz"), "IncompleteSignatureException"),
            (
                Some("AWS4-HMAC-SHA256 Signature=SIGSECRET"),
                "IncompleteSignatureException",
            ),
            (
                Some(
                    "AWS4-HMAC-SHA256 Credential=AKIDSECRET/20261121/us-east-1, Signature=SIGSECRET",
                ),
                "IncompleteSignatureException",
            ),
            (Some(secret), "InvalidSignatureException"),
        ];
        for (auth, code) in cases {
            let e = caller(&headers(auth)).unwrap_err();
            assert_eq!((e.status, e.code), (403, code), "{auth:?}");
            assert!(!e.message.contains("SECRET"), "{}", e.message);
        }
    }

    #[test]
    fn routes() {
        assert_eq!(
            route(&Method::PATCH, "/findings/batchupdate"),
            Some(Operation::BatchUpdateFindings)
        );
        assert_eq!(
            route(&Method::POST, "/findings"),
            Some(Operation::GetFindings)
        );
        assert_eq!(
            route(&Method::POST, "/findings/import"),
            Some(Operation::BatchImportFindings)
        );
        assert_eq!(route(&Method::GET, "/findings"), None);
        assert_eq!(
            route(&Method::PATCH, "/findingsv2/batchupdatev2"),
            Some(Operation::BatchUpdateFindingsV2)
        );
        assert_eq!(
            route(&Method::POST, "/findingsv2"),
            Some(Operation::GetFindingsV2)
        );
        assert_eq!(
            route(&Method::GET, "/hubv2"),
            Some(Operation::DescribeSecurityHubV2)
        );
        assert_eq!(route(&Method::POST, "/hubv2"), None);
    }

    #[test]
    fn error_response_has_header_and_body_code() {
        let r = error_response(&ApiError::invalid_input("bad"), "rid-1");
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["x-amzn-ErrorType"], "InvalidInputException");
        assert_eq!(r.headers()["x-amzn-RequestId"], "rid-1");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(request_id().len(), 36);
        assert_ne!(request_id(), request_id());
    }
}
