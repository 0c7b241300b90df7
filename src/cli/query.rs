//! `--filters` on `update` and `plan`: runs the query before anything else
//! reads the inputs and puts its snapshot in their place, or, when the
//! run's updates cannot move a finding into, out of or within the result
//! set, streams it into the run as it is read (docs/design/pipeline.md,
//! "Selecting by query").

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::bail;

use super::settings::UpdateSettings;
use super::{InputArgs, UpdateArgs};
use crate::engine::{Input, InputError};
use crate::events::{EventSink, NullSink};
use crate::query::{PageReader, Query, QueryStats, STOPPED_READING, Snapshot};
use crate::submission::{AwsSettings, Submitter};

/// A `--filters` selection, read: the command's only input.
#[derive(Debug, Clone)]
pub(crate) struct Selected {
    /// Its snapshot file (removed when the command ends).
    pub path: PathBuf,
    /// The query, recorded in the journal.
    pub query: serde_json::Value,
}

/// How a command's `--filters` selection is read.
pub(crate) enum Selection {
    /// No `--filters`.
    None,
    /// Read whole into a snapshot file, which is now the command's input
    /// (removed when this is dropped).
    Snapshot(#[expect(dead_code, reason = "held for its Drop")] Snapshot),
    /// To be read while the run updates ([`run_streamed`]).
    Stream(Box<(Query, Submitter)>),
}

/// With `--filters`: for `update` (`checked` given), when
/// [`must_snapshot`] finds no reason against it, returns the query to
/// stream into the run; otherwise reads the whole selection into a
/// snapshot file and makes it the command's only input. Without it:
/// nothing.
pub(crate) async fn select(
    args: &mut UpdateArgs,
    checked: Option<&UpdateSettings>,
) -> anyhow::Result<Selection> {
    if args.query.filters.is_none()
        && args.query.ocsf_filters.is_none()
        && args.query.query_regions.is_empty()
    {
        return Ok(Selection::None);
    }
    if !args.inputs.is_empty() {
        bail!(
            "--filters/--ocsf-filters select the findings: give a query or input files, not both"
        );
    }
    let submitter = Submitter::from_env(&AwsSettings {
        profile: args.aws.profile.clone(),
        endpoint_url: args.aws.endpoint_url.clone(),
        request_timeout: Some(args.aws.request_timeout),
    })
    .await;
    let configured = submitter.configured_region();
    let Some(mut query) = Query::prepare(
        &args.query,
        args.aws.region.as_deref(),
        configured.as_deref(),
        SystemTime::now(),
    )?
    else {
        return Ok(Selection::None);
    };
    let nightly = &args.output.nightly;
    if (nightly.resume || nightly.force_resume)
        && let Some(results) = &args.output.results
        && let Some(recorded) = crate::journal::recorded_query(results)?
        && query.adopt(&recorded)
    {
        eprintln!(
            "sechub-triage: resuming the query as first run (dates as of {})",
            query.resolved_at
        );
    }
    tracing::info!(query = %query.describe(), "selecting findings by query");
    if let Some(checked) = checked {
        match must_snapshot(args, checked, &query) {
            None => {
                eprintln!(
                    "sechub-triage: the decision writes no field the filter matches on: reading \
                     the selection and updating at once (--query-snapshot reads it whole first)"
                );
                args.inputs = vec![query.label()];
                args.query = crate::query::QueryArgs::default();
                return Ok(Selection::Stream(Box::new((query, submitter))));
            }
            Some(why) => eprintln!(
                "sechub-triage: {why}: reading the whole selection before the first update"
            ),
        }
    }
    let bars = super::progress::QueryProgress::stderr_if_terminal(args.output.no_progress);
    let events: &dyn EventSink = match &bars {
        Some(b) => b,
        None => &NullSink,
    };
    let snap = Snapshot::take(&query, &submitter, events).await;
    if let Some(b) = &bars {
        b.finish();
    }
    let snap = snap?;
    eprintln!(
        "sechub-triage: query {} selected {} finding(s) in {} page(s) ({} throttled, {} retried, {} repeated)",
        query.label(),
        snap.stats.findings,
        snap.stats.pages,
        snap.stats.throttled,
        snap.stats.retried,
        snap.stats.repeated
    );
    args.inputs = vec![query.label()];
    args.selected = Some(Selected {
        path: snap.path().to_owned(),
        query: query.describe(),
    });
    // Read once: `update --dry-run` goes on to the plan with the snapshot.
    args.query = crate::query::QueryArgs::default();
    Ok(Selection::Snapshot(snap))
}

/// Why `update` must read the whole selection before its first update, or
/// `None` when reading and updating may overlap: the decision writes (or
/// makes the service derive) no field the filter matches on, so the result
/// set and its order cannot change under the pager however it pages, and
/// nothing that must hold before the first write (the plan pass's
/// guardrails) needs the whole selection. Every guardrail that does falls
/// back to the snapshot; none is weakened into a running check.
pub(crate) fn must_snapshot(
    args: &UpdateArgs,
    checked: &UpdateSettings,
    query: &Query,
) -> Option<String> {
    let UpdateSettings {
        decision,
        extra,
        engine,
    } = checked;
    if args.query.query_snapshot {
        return Some("--query-snapshot".into());
    }
    let fields = crate::query::filter_fields(&query.filters);
    let moved: Vec<&str> = crate::query::filters_moved_by(decision, engine.run_tag.is_some())
        .into_iter()
        .filter(|f| fields.contains(*f))
        .collect();
    if !moved.is_empty() {
        let which = if moved.len() == 1 { "matches" } else { "match" };
        return Some(format!(
            "the decision writes {}, which the filter {which} on",
            moved.join(", ")
        ));
    }
    if args.input.row_decisions().is_on() {
        return Some(
            "--row-decisions: what each finding's row writes is known only once it is read".into(),
        );
    }
    if !extra.is_empty() {
        return Some("--cli-input-json names findings besides the query".into());
    }
    let c = &args.campaign;
    if c.max_findings.is_some() {
        return Some("--max-findings refuses a run by the size of the whole selection".into());
    }
    if c.expect_accounts.is_some() || c.expect_regions.is_some() {
        return Some(
            "--expect-accounts/--expect-regions refuse a run by the whole selection".into(),
        );
    }
    if !(c.yes && crate::plan::run_tag(decision, engine).is_some()) {
        return Some(format!(
            "without --yes and a run tag, whether the run needs confirmation (above \
             --confirm-above {}) depends on the size of the whole selection",
            c.confirm_above
        ));
    }
    if let Some(to) = &engine.region_override
        && let Some(from) = query
            .regions
            .iter()
            .find(|r| crate::plan::partition_of(r) != crate::plan::partition_of(to))
    {
        return Some(format!(
            "--region {to} is in another partition than the queried Region {from} (the plan refuses such findings)"
        ));
    }
    None
}

/// `update` with a streamed selection: no plan pass (nothing the plan pass
/// would refuse or ask is possible, [`must_snapshot`]); the query runs on
/// the runtime and its pages become the run's input as they are read.
/// The query's totals are printed after the run's summary.
pub(crate) async fn run_streamed(
    args: UpdateArgs,
    checked: UpdateSettings,
    stream: (Query, Submitter),
) -> anyhow::Result<i32> {
    let UpdateSettings {
        decision,
        extra,
        engine,
    } = checked;
    let (query, submitter) = stream;
    let mut args = args;
    args.input.no_decision = decision.is_empty();
    args.input.v2 = decision.is_v2();
    if decision.is_v2() {
        let regions = match &engine.region_override {
            Some(r) => vec![r.clone()],
            None => query.regions.clone(),
        };
        super::preflight_v2(&args.aws, &regions).await?;
    }
    let bars =
        super::progress::QueryProgress::stderr_if_terminal(args.output.no_progress).map(Arc::new);
    let events: Arc<dyn EventSink> = match &bars {
        Some(b) => b.clone(),
        None => Arc::new(NullSink),
    };
    let totals = Arc::new(Mutex::new(QueryStats::default()));
    let (reader, task) = crate::query::stream(query.clone(), Arc::new(submitter), events, {
        let totals = totals.clone();
        move |s: &QueryStats| *totals.lock().unwrap_or_else(|e| e.into_inner()) = s.clone()
    });
    let input = streamed_input(
        query.label(),
        reader,
        &args.input,
        args.aws.region.clone(),
        extra,
    );
    let v2 = decision.is_v2();
    let summary = super::run_with_aws_on(
        engine,
        decision,
        v2,
        input,
        &args.aws,
        &args.output,
        args.inputs.clone(),
        Vec::new(),
        Some(query.describe()),
    )
    .await;
    // The run reads the selection to its end unless it stopped early (a
    // signal, the time budget, an abort): then the query stops too.
    let finished = task.is_finished();
    task.abort();
    let error = match task.await {
        Ok(Err(e)) => Some(e),
        _ => None,
    };
    let failed = error.as_ref().map(|e| format!("{e:#}"));
    if let Some(b) = &bars {
        b.finish();
    }
    let s = totals.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // A query whose reader went away failed because the run stopped.
    let stopped = !finished
        || failed
            .as_deref()
            .is_some_and(|e| e.contains(STOPPED_READING));
    let how = match (&failed, stopped) {
        (_, true) => "; the run stopped before the query's end".into(),
        (Some(e), false) => format!("; the query failed: {e}"),
        (None, false) => String::new(),
    };
    eprintln!(
        "sechub-triage: query {} selected {} finding(s) in {} page(s) ({} throttled, {} retried, {} repeated) while the run updated them{how}",
        query.label(),
        s.findings,
        s.pages,
        s.throttled,
        s.retried,
        s.repeated
    );
    let status = super::exit_status(&summary?);
    // The query's own failure decides, when it is what ended the input,
    // as it does when the selection is read first (`exit::for_error`): a
    // service that kept failing means "resume later", a refusal "aborted",
    // anything else stays an input error.
    Ok(match &error {
        Some(e) if !stopped && status == super::exit::USAGE => {
            let from_query = super::exit::for_error(e);
            if from_query == super::exit::STOPPED {
                eprintln!(
                    "sechub-triage: the query could not be read to its end; run the same command \
                     with --resume later (settled findings are skipped)"
                );
            }
            from_query
        }
        _ => status,
    })
}

/// The run's input from a streamed query: JSON Lines of findings read from
/// `reader`, opened on first use (on the engine's reader thread: opening
/// reads the first bytes, which wait for the first page).
fn streamed_input(
    label: String,
    reader: PageReader,
    args: &InputArgs,
    region: Option<String>,
    extra: Vec<crate::model::FindingKey>,
) -> Input {
    debug_assert!(
        extra.is_empty(),
        "must_snapshot: no --cli-input-json identifiers"
    );
    let mut opts = super::source_options(args, region, false);
    opts.format = Some(crate::source::Format::Json);
    let v2 = args.v2.then(|| opts.notices.clone());
    let open = move || -> Result<Input, InputError> {
        let source = crate::source::open_reader(&label, reader, &opts)?;
        let input: Input = Box::new(source.map(|r| r.map_err(|e| Box::new(e) as InputError)));
        Ok(match v2 {
            Some(notices) => Box::new(crate::source::v2_keys(input, notices)),
            None => input,
        })
    };
    Box::new(Lazy {
        open: Some(Box::new(open)),
        inner: None,
    })
}

type Opener = Box<dyn FnOnce() -> Result<Input, InputError> + Send>;

/// An input opened when first read.
struct Lazy {
    open: Option<Opener>,
    inner: Option<Input>,
}

impl Iterator for Lazy {
    type Item = Result<crate::model::SourceItem, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(open) = self.open.take() {
            match open() {
                Ok(i) => self.inner = Some(i),
                Err(e) => return Some(Err(e)),
            }
        }
        self.inner.as_mut()?.next()
    }
}
