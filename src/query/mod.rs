//! Selecting findings by query (`--filters`): the AWS CLI `get-findings`
//! filter document, run against `GetFindings` in each Region asked for,
//! under its own pace (3 requests/s burst 6 per Region by default),
//! retrying throttles and transient errors with backoff.
//!
//! The selection is **snapshotted before the first update**
//! (docs/design/pipeline.md, "Selecting by query"): every page of every
//! Region is read and spooled to a JSON Lines file of ASFF documents, and
//! only then does the engine read that file like any other export. An
//! update that changes a field the filter matches on (`WorkflowStatus =
//! NEW` → `SUPPRESSED`) therefore cannot shift the result set under the
//! pager, however the service pages. Each finding is written once (a
//! finding returned twice, by an aggregation Region and its own Region or
//! after a paging restart, is dropped the second time).

pub(crate) mod asff;
pub(crate) mod filters;
pub(crate) mod ocsf;

use std::collections::HashSet;
use std::hash::Hasher;
use std::io::Write;
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Map, Value};

use crate::limits::{RateConfig, RegionLimiter};
use crate::retry::{Backoff, CallDisposition, classify_call};
use crate::submission::{Submitter, call_error};

/// `--filters` and the pace of the query.
#[derive(Args, Debug, Default, Clone)]
pub struct QueryArgs {
    /// Select findings by query instead of input files: the AWS CLI
    /// `get-findings --filters` JSON document, or file://PATH. Relative
    /// dates (DateRange) are made absolute once, at the start.
    #[arg(long, value_name = "JSON", help_heading = "Query")]
    pub filters: Option<String>,
    /// Select findings of the new Security Hub by query (with --status-id,
    /// --severity-id, --comment): the AWS CLI `get-findings-v2 --filters`
    /// JSON document, or file://PATH.
    #[arg(
        long,
        value_name = "JSON",
        help_heading = "Query",
        conflicts_with = "filters"
    )]
    pub ocsf_filters: Option<String>,
    /// Regions to query, comma-separated [default: --region, else the
    /// configured Region]. An aggregation Region returns its linked Regions'
    /// findings too.
    #[arg(
        long,
        value_name = "REGION,REGION",
        value_delimiter = ',',
        help_heading = "Query"
    )]
    pub(crate) query_regions: Vec<String>,
    /// GetFindings requests per second per Region (documented quota: 3;
    /// GetFindingsV2's is not documented: 3 by default too).
    #[arg(long, value_name = "N", help_heading = "Query")]
    pub(crate) query_rate: Option<f64>,
    /// GetFindings (and GetFindingsV2) burst per Region (documented: 6).
    #[arg(long, value_name = "N", help_heading = "Query")]
    pub(crate) query_burst: Option<u32>,
}

/// The documented `GetFindings` quota: 3 requests/s, burst 6.
pub(crate) const GET_FINDINGS_QUOTA: RateConfig = RateConfig {
    rate: 3.0,
    burst: 6,
};

/// Most attempts for one page before the query fails (loudly).
pub(crate) const MAX_PAGE_ATTEMPTS: u32 = 12;
/// Most paging restarts after a rejected `NextToken`, per Region.
pub(crate) const MAX_RESTARTS: u32 = 3;

/// A query with its dates made absolute: what is asked, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The filter document as given (relative dates left relative).
    pub given: Map<String, Value>,
    /// The filter document, absolute.
    pub filters: Map<String, Value>,
    /// Regions queried, in order.
    pub regions: Vec<String>,
    /// When relative dates were resolved (RFC 3339).
    pub(crate) resolved_at: String,
    /// The pace per Region.
    pub rate: RateConfig,
    /// `GetFindingsV2` with an OCSF filter document (`--ocsf-filters`),
    /// else `GetFindings`.
    pub(crate) v2: bool,
}

impl Query {
    /// Reads and checks `args` (every filter, before any request); `region`
    /// is `--region`, `configured` the SDK's configured Region.
    pub(crate) fn prepare(
        args: &QueryArgs,
        region: Option<&str>,
        configured: Option<&str>,
        now: SystemTime,
    ) -> anyhow::Result<Option<Query>> {
        let v2 = args.ocsf_filters.is_some();
        let (given, filters) = match (&args.filters, &args.ocsf_filters) {
            (Some(_), Some(_)) => bail!("--filters and --ocsf-filters: give one"),
            (None, Some(doc)) => ocsf::prepare_filters(doc, now)?,
            (Some(doc), None) => {
                let given = filters::load(doc)?;
                let mut filters = given.clone();
                filters::absolutize(&mut filters, now)?;
                filters::to_sdk(&filters)?;
                (given, filters)
            }
            (None, None) => {
                if !args.query_regions.is_empty() {
                    bail!("--query-regions needs --filters or --ocsf-filters");
                }
                return Ok(None);
            }
        };
        let regions: Vec<String> = if !args.query_regions.is_empty() {
            args.query_regions.clone()
        } else if let Some(r) = region.or(configured) {
            vec![r.to_owned()]
        } else {
            bail!("a query needs a Region: give --region, --query-regions or AWS_REGION");
        };
        let rate = RateConfig {
            rate: args.query_rate.unwrap_or(GET_FINDINGS_QUOTA.rate),
            burst: args.query_burst.unwrap_or(GET_FINDINGS_QUOTA.burst),
        };
        if !(rate.rate.is_finite() && rate.rate >= 0.01) || rate.burst == 0 {
            bail!("--query-rate must be at least 0.01 and --query-burst at least 1");
        }
        Ok(Some(Query {
            given,
            filters,
            regions,
            resolved_at: humantime::format_rfc3339_seconds(now).to_string(),
            rate,
            v2,
        }))
    }

    /// The query as recorded (the journal, the report, the plan).
    pub(crate) fn describe(&self) -> Value {
        let mut v = serde_json::json!({
            "Given": self.given,
            "Filters": self.filters,
            "Regions": self.regions,
            "ResolvedAt": self.resolved_at,
        });
        if self.v2 {
            v["Operation"] = Value::from(ocsf::OPERATION);
        }
        v
    }

    /// On resume: the journal's recorded query, if it is this one as given
    /// (same document, same Regions), replaces the dates made absolute now
    /// by those of the first run, so that the resumed run asks the same
    /// question. Returns whether it did.
    pub(crate) fn adopt(&mut self, recorded: &Value) -> bool {
        let same = recorded.get("Given") == Some(&Value::Object(self.given.clone()))
            && recorded.get("Regions") == Some(&serde_json::json!(self.regions))
            && (recorded.get("Operation").and_then(Value::as_str) == Some(ocsf::OPERATION))
                == self.v2;
        let (Some(Value::Object(filters)), Some(Value::String(at))) =
            (recorded.get("Filters"), recorded.get("ResolvedAt"))
        else {
            return false;
        };
        let valid = if self.v2 {
            ocsf::to_sdk(filters).is_ok()
        } else {
            filters::to_sdk(filters).is_ok()
        };
        if !same || !valid {
            return false;
        }
        self.filters = filters.clone();
        self.resolved_at = at.clone();
        true
    }

    /// The name a snapshot of this query goes by in results rows.
    pub(crate) fn label(&self) -> String {
        format!("query:{}", self.regions.join(","))
    }
}

/// What a query did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueryStats {
    /// GetFindings requests answered.
    pub pages: u64,
    /// Findings written (each once).
    pub findings: u64,
    /// Findings returned again (aggregation overlap, paging restart) and dropped.
    pub(crate) repeated: u64,
    /// Requests throttled.
    pub throttled: u64,
    /// Requests retried after another error.
    pub retried: u64,
    /// Paging restarts after a rejected NextToken.
    pub(crate) restarts: u64,
}

fn key_hash(id: &str, arn: &str) -> u64 {
    let mut h = twox_hash::XxHash3_64::new();
    h.write(id.as_bytes());
    h.write(&[0]);
    h.write(arn.as_bytes());
    h.finish()
}

/// Runs the query, writing every finding once to `out` as one ASFF JSON
/// object per line. Throttles and transient errors are retried with
/// backoff; a rejected `NextToken` restarts the Region's paging (findings
/// already written are not written again); anything else, or a page that
/// keeps failing, is an error: the query never stops silently short.
pub(crate) async fn snapshot(
    q: &Query,
    submitter: &Submitter,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(&QueryStats),
) -> anyhow::Result<QueryStats> {
    if q.v2 {
        return ocsf::snapshot(q, submitter, out, progress).await;
    }
    let sdk_filters = filters::to_sdk(&q.filters)?;
    let mut stats = QueryStats::default();
    // 8 bytes per finding: the run's memory stays small however many match.
    let mut seen: HashSet<u64> = HashSet::new();
    let backoff = Backoff::default();
    for region in &q.regions {
        let client = submitter.client(region);
        let mut limiter = RegionLimiter::new(q.rate);
        let mut token: Option<String> = None;
        let mut restarts = 0;
        loop {
            let mut attempt = 0u32;
            let page = loop {
                loop {
                    match limiter.try_acquire(Instant::now()) {
                        Ok(()) => break,
                        Err(wait) => tokio::time::sleep(wait).await,
                    }
                }
                attempt += 1;
                let sent = Instant::now();
                let r = client
                    .get_findings()
                    .set_filters(Some(sdk_filters.clone()))
                    .max_results(100)
                    .set_next_token(token.clone())
                    .send()
                    .await;
                match r {
                    Ok(page) => {
                        limiter.on_success();
                        break Some(page);
                    }
                    Err(e) => {
                        let e = call_error(e);
                        let stale_token = token.is_some()
                            && e.code == "InvalidInputException"
                            && e.message.contains("NextToken");
                        if stale_token {
                            if restarts >= MAX_RESTARTS {
                                bail!(
                                    "GetFindings in {region}: NextToken rejected {} times ({}); stopping rather than reading a partial selection",
                                    restarts + 1,
                                    e.message
                                );
                            }
                            restarts += 1;
                            stats.restarts += 1;
                            tracing::warn!(
                                region,
                                "GetFindings rejected the NextToken ({}): paging again from the start; findings already read are not read twice",
                                e.message
                            );
                            break None;
                        }
                        let disposition = classify_call(&e.failure);
                        let CallDisposition::Retry(class) = disposition else {
                            bail!("GetFindings in {region} failed: {}: {}", e.code, e.message);
                        };
                        if attempt >= MAX_PAGE_ATTEMPTS {
                            bail!(
                                "GetFindings in {region} failed {attempt} times in a row (last: {}: {}); stopping rather than reading a partial selection",
                                e.code,
                                e.message
                            );
                        }
                        if matches!(class, crate::retry::RetryClass::Throttle) {
                            stats.throttled += 1;
                            limiter.on_throttled(sent, Instant::now());
                        } else {
                            stats.retried += 1;
                        }
                        let delay = backoff.delay(class, attempt, &mut rand::rng());
                        tracing::debug!(region, code = %e.code, ?delay, "GetFindings retried");
                        tokio::time::sleep(delay).await;
                    }
                }
            };
            let Some(page) = page else {
                token = None;
                continue;
            };
            stats.pages += 1;
            for f in page.findings() {
                let (Some(id), Some(arn)) = (f.id(), f.product_arn()) else {
                    continue;
                };
                if !seen.insert(key_hash(id, arn)) {
                    stats.repeated += 1;
                    continue;
                }
                serde_json::to_writer(&mut *out, &asff::to_json(f))
                    .context("writing the query's findings")?;
                out.write_all(b"\n")
                    .context("writing the query's findings")?;
                stats.findings += 1;
            }
            progress(&stats);
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
    }
    out.flush().context("writing the query's findings")?;
    Ok(stats)
}

/// A query's findings saved to a private temporary file (JSON Lines of
/// ASFF) for the plan and the run to read; removed when dropped.
#[derive(Debug)]
pub(crate) struct Snapshot {
    path: std::path::PathBuf,
    /// What the query did.
    pub(crate) stats: QueryStats,
}

impl Snapshot {
    /// Runs `q` into a new temporary file.
    pub(crate) async fn take(q: &Query, submitter: &Submitter) -> anyhow::Result<Snapshot> {
        let path = std::env::temp_dir().join(format!(
            "sechub-triage-query-{}-{:016x}.jsonl",
            std::process::id(),
            rand::random::<u64>()
        ));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut snap = Snapshot {
            path,
            stats: QueryStats::default(),
        };
        let mut w = std::io::BufWriter::new(file);
        snap.stats = snapshot(q, submitter, &mut w, &mut |_| {}).await?;
        tracing::info!(
            findings = snap.stats.findings,
            pages = snap.stats.pages,
            throttled = snap.stats.throttled,
            "query read"
        );
        Ok(snap)
    }

    /// The file.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
