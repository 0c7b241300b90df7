//! `--filters` on `update` and `plan`: runs the query before anything else
//! reads the inputs, and puts its snapshot in their place.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::bail;

use super::UpdateArgs;
use crate::query::{Query, Snapshot};
use crate::submission::{AwsSettings, Submitter};

/// A `--filters` selection, read: the command's only input.
#[derive(Debug, Clone)]
pub(crate) struct Selected {
    /// Its snapshot file (removed when the command ends).
    pub path: PathBuf,
    /// The query, recorded in the journal.
    pub query: serde_json::Value,
}

/// With `--filters`: reads the whole selection into a snapshot file and
/// makes it the command's only input (the snapshot lives as long as the
/// returned value). Without it: nothing.
pub(crate) async fn select(args: &mut UpdateArgs) -> anyhow::Result<Option<Snapshot>> {
    if args.query.filters.is_none()
        && args.query.ocsf_filters.is_none()
        && args.query.query_regions.is_empty()
    {
        return Ok(None);
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
        return Ok(None);
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
    let snap = Snapshot::take(&query, &submitter).await?;
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
    Ok(Some(snap))
}
