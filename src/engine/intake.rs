//! The read side of a run: duplicates, each record's effective decision
//! (job decision, per-row fields, run tag, note policy) and
//! `--skip-unchanged`. [`Intake`] is pure and shared with the plan;
//! `read_input` runs it on the reading thread.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{EngineConfig, Input, InputError};
use crate::decision::{Decision, NoteAction, NoteMode, Rules, apply_note_mode, decision_holds_but};
use crate::dedup::DedupIndex;
use crate::journal::{Done, Prior, RowChanged};
use crate::model::{FindingKey, InvalidRecord, OutcomeKind, SourceItem, SourceRecord};

/// What the reading thread sends to the dispatcher.
pub(super) enum ReaderMsg {
    /// A record to send, with its effective decision and what to say about
    /// its note in the results.
    Record(SourceRecord, Arc<Decision>, Option<Cow<'static, str>>),
    /// A repeat of an earlier record, and what happened to it.
    Duplicate(SourceRecord, &'static str),
    /// Not sent: nothing to change (see [`Admitted::Unchanged`]).
    Unchanged(SourceRecord, Cow<'static, str>),
    Invalid(InvalidRecord),
    Error(InputError),
    /// `--resume`: an earlier run recorded this row's final outcome.
    AlreadyDone(OutcomeKind),
}

/// What the read side decided about one input item.
#[derive(Debug)]
pub(crate) enum Admitted {
    /// To be sent.
    Send {
        /// The record.
        record: SourceRecord,
        /// The job's decision with the record's own fields over it, before
        /// the note policy: the decision group a plan reports.
        group: Arc<Decision>,
        /// What is sent: `group` after the note policy.
        decision: Arc<Decision>,
        /// What the note policy did.
        note: NoteAction,
        /// The export shows the finding already holds `decision` (it is sent
        /// anyway: `--skip-unchanged` is off).
        holds: bool,
    },
    /// Not sent: the export shows the finding already holds the decision
    /// (`--skip-unchanged`), or the note policy left nothing to send.
    Unchanged {
        /// The record.
        record: SourceRecord,
        /// As in [`Admitted::Send`].
        group: Arc<Decision>,
        /// What the note policy did.
        note: NoteAction,
        /// Why, for the results.
        message: Cow<'static, str>,
    },
    /// The same finding came earlier in the input, with the same decision.
    Duplicate(SourceRecord),
    /// The same finding came earlier in the input with another decision:
    /// not sent. Without `--duplicates first` the plan refuses the run.
    Conflict(SourceRecord),
    /// `--duplicates last`: the finding's rows ask for different decisions
    /// and a later row of it is the one applied: not sent.
    Superseded(SourceRecord),
    /// The finding's rows ask for the same decision but record different
    /// states, and another row's is newer: not sent (that row is).
    OlderState(SourceRecord),
    /// The finding's rows record different states in an order the input
    /// does not tell: its first row is sent with the state unknown, this
    /// one is not sent.
    StateUnknown(SourceRecord),
    /// Rejected: a bad row, or a per-row decision the service would refuse.
    Invalid(InvalidRecord),
}

/// The read side of a run, shared by [`run`] and by the plan
/// (`crate::plan`), so that a plan counts exactly what a run would do:
/// duplicate detection, each record's effective decision (job decision,
/// per-row fields, note policy) and `--skip-unchanged`. Pure: no I/O.
pub(crate) struct Intake {
    dedup: DedupIndex,
    interner: Interner,
    job: Arc<Decision>,
    skip_unchanged: bool,
    note_mode: NoteMode,
    run_tag: Option<String>,
    /// Validation rules (`--allow-unknown-type-namespaces`).
    rules: Rules,
    /// The rows chosen for findings named by several rows.
    row_choices: Option<Arc<RowChoices>>,
    /// `--duplicates last`: the last row of a conflicting finding applies.
    last_wins: bool,
}

/// Choices about findings named by several rows, made by a pass over the
/// whole input before the plan ([`RowChoices::find`]), since they depend on
/// rows further on:
///
/// - `--duplicates last`: for each finding whose rows ask for different
///   effective decisions, its last row (the one applied);
/// - recorded state: for each finding whose rows ask for the same decision
///   but record different states (Security Lake's history of a finding),
///   the row whose state is the newest by the input's modification time
///   (`finding_info.modified_time`, ASFF `UpdatedAt`); when the times do
///   not tell (missing, or equal to the second), the state is unknown:
///   never skipped as unchanged, never appended to, not revertible.
///
/// It holds only such findings (about 16 bytes each, plus the table's
/// slack): nothing in the common case of one row per finding.
#[derive(Debug, Default)]
pub struct RowChoices {
    /// Fingerprint of the finding → fingerprint of its last row.
    rows: HashMap<u64, u64>,
    /// Fingerprint of the finding → the row whose recorded state is used.
    state: HashMap<u64, StatePick>,
}

/// Which of a finding's rows records its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StatePick {
    /// Its first row (any row recording the same state as it would do).
    First,
    /// The row with this fingerprint.
    Row(u64),
    /// The rows' order is not known: the state is unknown.
    Unknown,
}

/// While finding the state rows: the newest state seen so far.
struct Newest {
    row: StatePick,
    state: u32,
    /// Seconds since the epoch, plus one; 0 when the row has no time.
    time: u32,
}

/// A record's recorded state as a 32-bit tag (0: none recorded) and its
/// modification time in seconds plus one (0: none).
fn state_tag(r: &SourceRecord) -> (u32, u32) {
    use std::hash::{Hash, Hasher};
    let Some(c) = r.current.as_deref() else {
        return (0, 0);
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        &c.workflow_status,
        &c.note_text,
        &c.note_updated_by,
        c.note_recorded,
        &c.severity_label,
        c.severity_normalized,
        &c.verification_state,
        c.confidence,
        c.criticality,
        &c.types,
        &c.user_defined_fields,
        (c.status_id, c.severity_id, &c.comment, c.comment_recorded),
    )
        .hash(&mut h);
    let time = c
        .modified_ms
        .map_or(0, |ms| u32::try_from(ms.div_euclid(1000) + 1).unwrap_or(0));
    ((h.finish() as u32) | 1, time)
}

impl RowChoices {
    /// Reads `input` to its end (or its first error, which the plan then
    /// reports) through an [`Intake`] of `job` and `config`, and keeps the
    /// last row of every finding whose rows conflict, and the row recording
    /// the newest state of every finding whose rows record different
    /// states. A row that is invalid is never chosen. Memory while reading:
    /// the intake's duplicate index (15 to 22.5 bytes per finding) and a
    /// second one holding each finding's first state and time (20 to 30),
    /// freed after.
    pub fn find(job: &Decision, input: Input, config: &EngineConfig) -> RowChoices {
        let mut config = config.clone();
        config.duplicates = super::DuplicatePolicy::First;
        config.row_choices = None;
        let mut intake = Intake::new(job, &config);
        let mut first: DedupIndex<(u32, u32)> = DedupIndex::default();
        let mut newest: HashMap<u64, Newest> = HashMap::new();
        let mut choices = RowChoices::default();
        for item in input {
            let Ok(item) = item else { break };
            match intake.admit(item) {
                Admitted::Conflict(r) => {
                    choices
                        .rows
                        .insert(key_print(&r.key), row_print(&r.location));
                }
                Admitted::Duplicate(r) => {
                    let key = key_print(&r.key);
                    if let Some(row) = choices.rows.get_mut(&key) {
                        *row = row_print(&r.location);
                        continue;
                    }
                    let (state, time) = state_tag(&r);
                    if state == 0 {
                        // A row recording no state says nothing about it.
                        continue;
                    }
                    let Some(seen) = first.insert_with(&r.key, (state, time)) else {
                        continue;
                    };
                    let n = match newest.get_mut(&key) {
                        Some(n) => n,
                        None if seen.0 == 0 => {
                            // The first row recorded no state: this one does.
                            *seen = (state, time);
                            newest.insert(
                                key,
                                Newest {
                                    row: StatePick::Row(row_print(&r.location)),
                                    state,
                                    time,
                                },
                            );
                            continue;
                        }
                        None if seen.0 == state => {
                            // The same state again: keep its newest time.
                            seen.1 = seen.1.max(time);
                            continue;
                        }
                        None => newest.entry(key).or_insert(Newest {
                            row: StatePick::First,
                            state: seen.0,
                            time: seen.1,
                        }),
                    };
                    let unordered = time == 0 || n.time == 0 || time == n.time;
                    if n.state == state {
                        n.time = n.time.max(time);
                    } else if n.row != StatePick::Unknown && unordered {
                        n.row = StatePick::Unknown;
                    } else if n.row != StatePick::Unknown && time > n.time {
                        *n = Newest {
                            row: StatePick::Row(row_print(&r.location)),
                            state,
                            time,
                        };
                    }
                }
                Admitted::Send { record: r, .. } | Admitted::Unchanged { record: r, .. } => {
                    first.insert_tagged(&r.key, state_tag(&r));
                }
                _ => {}
            }
        }
        for (key, n) in newest {
            // A finding whose decisions conflict takes its chosen row's state.
            if !choices.rows.contains_key(&key) {
                choices.state.insert(key, n.row);
            }
        }
        choices
    }

    /// Findings whose rows conflict.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// No finding's rows conflict.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Findings whose rows record different states.
    #[cfg(test)]
    pub(crate) fn with_history(&self) -> usize {
        self.state.len()
    }

    /// For a finding whose rows conflict: whether `location` is its last
    /// row. `None` for every other finding.
    fn is_last(&self, key: &FindingKey, location: &crate::model::Location) -> Option<bool> {
        self.rows
            .get(&key_print(key))
            .map(|&row| row == row_print(location))
    }
}

use crate::dedup::key_print;

/// A row's fingerprint: the journal's ([`crate::journal::row_key`]).
fn row_print(l: &crate::model::Location) -> u64 {
    crate::journal::row_key(&l.file, l.row)
}

/// The `UserDefinedFields` key of the run tag (`--run-tag`).
pub(crate) const RUN_TAG_KEY: &str = "sechub-triage-run";

/// `decision` with the run tag in its `UserDefinedFields`.
pub(crate) fn with_run_tag(mut decision: Decision, tag: &str) -> Decision {
    decision
        .user_defined_fields
        .get_or_insert_default()
        .insert(RUN_TAG_KEY.to_owned(), tag.to_owned());
    decision
}

impl Intake {
    /// The read side of a run of `config` applying `job`.
    pub(crate) fn new(job: &Decision, config: &EngineConfig) -> Self {
        let mut interner = Interner::default();
        let job = match &config.run_tag {
            Some(tag) => with_run_tag(job.clone(), tag),
            None => job.clone(),
        };
        let job = interner.intern(job);
        Intake {
            dedup: DedupIndex::default(),
            interner,
            job,
            skip_unchanged: config.skip_unchanged,
            note_mode: config.note_mode,
            run_tag: config.run_tag.clone(),
            rules: config.rules.clone(),
            last_wins: config.duplicates == super::DuplicatePolicy::Last,
            row_choices: config.row_choices.clone(),
        }
    }

    /// Puts the run tag back into a decision whose `UserDefinedFields` a
    /// per-row decision replaced (fields merge whole).
    fn tag(
        &mut self,
        r: &SourceRecord,
        group: Arc<Decision>,
    ) -> Result<Arc<Decision>, Box<InvalidRecord>> {
        let Some(tag) = &self.run_tag else {
            return Ok(group);
        };
        let udf = group.user_defined_fields.as_ref();
        if udf.and_then(|m| m.get(RUN_TAG_KEY)) == Some(tag) {
            return Ok(group);
        }
        let d = with_run_tag((*group).clone(), tag);
        if let Err(e) = d.validate_with(&self.rules) {
            return Err(rejected_decision(
                r,
                "per-row decision with the run tag",
                &e,
            ));
        }
        Ok(self.interner.intern(d))
    }

    /// Decides what happens to one input item.
    pub(crate) fn admit(&mut self, item: SourceItem) -> Admitted {
        let r = match item {
            SourceItem::Record(r) => r,
            SourceItem::Invalid(i) => return Admitted::Invalid(i),
        };
        let group = match effective_decision(&self.job, &r, &mut self.interner, &self.rules) {
            Ok(d) => d,
            Err(invalid) => return Admitted::Invalid(*invalid),
        };
        let group = match self.tag(&r, group) {
            Ok(d) => d,
            Err(invalid) => return Admitted::Invalid(*invalid),
        };
        // `--duplicates last`: a finding whose rows conflict is sent from
        // its last row only, whatever came before.
        let last = self
            .row_choices
            .as_ref()
            .filter(|_| self.last_wins)
            .and_then(|l| l.is_last(&r.key, &r.location));
        if last == Some(false) {
            return Admitted::Superseded(r);
        }
        // A finding whose rows record different states: sent from the row
        // with the newest state, or with its state unknown.
        let pick = self
            .row_choices
            .as_ref()
            .and_then(|c| c.state.get(&key_print(&r.key)).copied());
        let mut r = r;
        match pick {
            Some(StatePick::Row(row)) if row != row_print(&r.location) => {
                return Admitted::OlderState(r);
            }
            // (The guard records the first row in the index: a later row
            // of the finding is then the one that finds it there.)
            Some(StatePick::First)
                if self
                    .dedup
                    .insert_tagged(&r.key, decision_tag(&group))
                    .is_some() =>
            {
                return Admitted::OlderState(r);
            }
            Some(StatePick::Unknown) => {
                if self
                    .dedup
                    .insert_tagged(&r.key, decision_tag(&group))
                    .is_some()
                {
                    return Admitted::StateUnknown(r);
                }
                r.current = r.current.as_deref().map(|c| Arc::new(forget_state(c)));
            }
            _ => {}
        }
        // A finding seen before: the same decision is a plain repeat; a
        // different one is a conflict, never resolved silently. (Tag 0: a
        // finding an earlier run settled, whose decision is not known.)
        if last.is_none()
            && pick.is_none()
            && let Some(earlier) = self.dedup.insert_tagged(&r.key, decision_tag(&group))
        {
            if earlier == 0 || earlier == decision_tag(&group) {
                return Admitted::Duplicate(r);
            }
            return Admitted::Conflict(r);
        }
        let current = r.current.as_deref();
        let (decision, note) = match apply_note_mode(&group, self.note_mode, current) {
            (None, note) => (group.clone(), note),
            (Some(d), note) if d.is_empty() => {
                let why = note
                    .remark(self.note_mode, group.is_v2())
                    .unwrap_or_default();
                return Admitted::Unchanged {
                    record: r,
                    group,
                    note,
                    message: Cow::Owned(format!(
                        "not sent: {why}, and the decision sets nothing else"
                    )),
                };
            }
            (Some(d), note) => (self.interner.intern(d), note),
        };
        let tag = self.run_tag.as_ref().map(|_| RUN_TAG_KEY);
        let holds = current.is_some_and(|c| decision_holds_but(&decision, c, tag));
        if holds && self.skip_unchanged {
            return Admitted::Unchanged {
                record: r,
                group,
                note,
                message: Cow::Borrowed(
                    "the export shows the finding already holds the decision; not sent",
                ),
            };
        }
        Admitted::Send {
            record: r,
            group,
            decision,
            note,
            holds,
        }
    }

    /// Counts `key` as seen, so that a later record of it is a duplicate
    /// (a resumed run skips rows that earlier runs settled, but their
    /// findings still come first).
    pub(crate) fn mark_seen(&mut self, key: &FindingKey) {
        // `--duplicates last`: the earlier rows of a conflicting finding
        // were recorded `duplicate`; its last row is still to be sent.
        if self.last_wins
            && self
                .row_choices
                .as_ref()
                .is_some_and(|l| l.rows.contains_key(&key_print(key)))
        {
            return;
        }
        // A finding whose newest state is at a given row: that row is sent,
        // whatever earlier rows were recorded.
        if self
            .row_choices
            .as_ref()
            .and_then(|c| c.state.get(&key_print(key)))
            .is_some_and(|p| matches!(p, StatePick::Row(_)))
        {
            return;
        }
        self.dedup.insert(key);
    }

    /// The note policy in force.
    pub(crate) fn note_mode(&self) -> NoteMode {
        self.note_mode
    }
}

/// A record's effective decision as a 32-bit tag for the duplicate index
/// (never 0). Two different decisions share a tag with probability 2⁻³²:
/// such a conflict would pass as a plain repeat of the first row.
fn decision_tag(d: &Decision) -> u32 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    d.hash(&mut h);
    (h.finish() as u32) | 1
}

/// What a duplicate row's results say happened to it.
pub(crate) const DUPLICATE_SAME: &str = "same Id and ProductArn as an earlier record, with the same decision: not sent again (the earlier \
     record's outcome is the finding's)";
/// What a conflicting duplicate row's results say happened to it.
pub(crate) const DUPLICATE_CONFLICT: &str = "same Id and ProductArn as an earlier record, with a different decision: not sent (the earlier \
     record's decision applies; --duplicates first chooses that explicitly)";

/// What an earlier row of a conflicting finding says under `--duplicates last`.
pub(crate) const DUPLICATE_SUPERSEDED: &str = "the same Id and ProductArn come again later in the input, and the rows of this finding \
     ask for different decisions: not sent (--duplicates last: the last row's decision applies)";

/// What a row whose recorded state is older than another row's says.
pub(crate) const DUPLICATE_OLDER_STATE: &str = "same Id and ProductArn as another record with the same decision, whose recorded state \
     is newer (its modification time): not sent (the newest record is sent, with its state)";
/// What a later row of a finding whose states cannot be ordered says.
pub(crate) const DUPLICATE_STATE_UNKNOWN: &str = "same Id and ProductArn as an earlier record with the same decision, recording another \
     state, and the input does not tell which is newer: not sent (the first record is sent with the \
     finding's state unknown: never skipped, never appended to, not revertible)";

/// A state with every updatable field unknown (the context kept): what
/// rows recording different states in no known order leave.
fn forget_state(c: &crate::model::CurrentState) -> crate::model::CurrentState {
    crate::model::CurrentState {
        account_id: c.account_id.clone(),
        compliance_status: c.compliance_status.clone(),
        generator_id: c.generator_id.clone(),
        record_state: c.record_state.clone(),
        ..Default::default()
    }
}

/// Why a record whose Region cannot be known is invalid.
pub(crate) const UNKNOWN_REGION: &str =
    "ProductArn is not a Security Hub product ARN, so its Region is unknown (give --region)";

/// The column and reason of a record whose Region cannot be known: a
/// `metadata.uid` key without a product (a V2 export CSV of that column
/// alone) has no product to name it.
pub(crate) fn unknown_region(key: &FindingKey) -> (&'static str, &'static str) {
    if key.product_arn.is_empty() {
        (
            "metadata.product.uid",
            "no product (metadata.product.uid) names this finding's Region (give --region)",
        )
    } else {
        ("ProductArn", UNKNOWN_REGION)
    }
}

/// The Region a finding's request goes to: `region_override` (`--region`),
/// else the Region of its ProductArn; `None` when neither is known.
pub(crate) fn route<'a>(region_override: Option<&'a str>, key: &'a FindingKey) -> Option<&'a str> {
    region_override.or_else(|| crate::arn::region_of(&key.product_arn))
}

/// Shares one `Arc` among records with equal effective decisions, so that a
/// file of a million rows carrying a handful of decisions holds a handful of
/// decisions. Bounded: it starts over when full (sharing is an optimisation;
/// grouping compares decisions by value).
#[derive(Default)]
struct Interner {
    map: HashMap<Decision, Arc<Decision>>,
}

impl Interner {
    const MAX: usize = 4096;

    fn intern(&mut self, d: Decision) -> Arc<Decision> {
        if let Some(a) = self.map.get(&d) {
            return a.clone();
        }
        if self.map.len() >= Self::MAX {
            self.map.clear();
        }
        let a = Arc::new(d.clone());
        self.map.insert(d, a.clone());
        a
    }
}

/// A record whose merged decision breaks a rule of the service: invalid,
/// naming the member at fault.
fn rejected_decision(
    r: &SourceRecord,
    what: &str,
    e: &crate::decision::DecisionError,
) -> Box<InvalidRecord> {
    Box::new(InvalidRecord {
        location: r.location.clone(),
        column: Some(e.path().to_owned()),
        reason: format!("{what}: {e}"),
        key: Some(r.key.clone()),
    })
}

/// The job's decision with the record's own decision fields over it.
fn effective_decision(
    job: &Arc<Decision>,
    r: &SourceRecord,
    interner: &mut Interner,
    rules: &Rules,
) -> Result<Arc<Decision>, Box<InvalidRecord>> {
    let Some(own) = &r.decision else {
        if job.is_empty() {
            return Err(Box::new(InvalidRecord {
                location: r.location.clone(),
                column: None,
                reason: "nothing to update: the command line sets no decision (--workflow, --note, ...) \
                         and this row has no per-row decision values"
                    .into(),
                key: Some(r.key.clone()),
            }));
        }
        return Ok(job.clone());
    };
    let mut d = (**job).clone();
    let mut own = (**own).clone();
    // A row may give only Note.Text or only Note.UpdatedBy: the other half
    // comes from the command line's note, or the row cannot be sent.
    if let Some(note) = &mut own.note
        && (note.text.is_empty() || note.updated_by.is_empty())
    {
        let (missing, column) = if note.text.is_empty() {
            ("text", "Note.Text")
        } else {
            ("UpdatedBy", "Note.UpdatedBy")
        };
        let Some(job_note) = &job.note else {
            return Err(Box::new(InvalidRecord {
                location: r.location.clone(),
                column: Some(column.to_owned()),
                reason: format!(
                    "per-row decision: the row sets a note but not its {missing}, and the command line has no \
                     --note to take it from (add a {column} column, or give --note)"
                ),
                key: Some(r.key.clone()),
            }));
        };
        if note.text.is_empty() {
            note.text.clone_from(&job_note.text);
        } else {
            note.updated_by.clone_from(&job_note.updated_by);
        }
    }
    // Merge by member: a row's `UserDefinedFields.<key>` adds or replaces
    // that key and keeps the command line's others; a row's severity
    // member joins the command line's other members, unless they
    // contradict (a row's Normalized 90 under --severity Label=LOW).
    if let (Some(mine), Some(theirs)) = (&mut own.user_defined_fields, &job.user_defined_fields) {
        let mut merged = theirs.clone();
        merged.append(mine);
        *mine = merged;
    }
    if let (Some(mine), Some(theirs)) = (&mut own.severity, &job.severity) {
        let label_of = |s: &crate::decision::SeverityUpdate| {
            s.label.or_else(|| {
                s.normalized
                    .and_then(crate::decision::SeverityLabel::from_normalized)
            })
        };
        let mut merged = theirs.clone();
        if mine.label.is_some() {
            merged.label = mine.label;
            // The command line's Normalized belonged to its label.
            if mine.normalized.is_none() && theirs.label.is_some() {
                merged.normalized = None;
            }
        }
        if mine.normalized.is_some() {
            merged.normalized = mine.normalized;
            if mine.label.is_none() && theirs.label.is_some() && theirs.normalized.is_none() {
                // Row Normalized under a command-line Label: they must agree.
                let row = label_of(mine);
                if row != theirs.label {
                    return Err(Box::new(InvalidRecord {
                        location: r.location.clone(),
                        column: Some("Severity.Normalized".to_owned()),
                        reason: format!(
                            "per-row decision: Severity.Normalized {} (label {}) contradicts the command \
                             line's Severity.Label {}; give the row's Severity.Label too, or leave the \
                             severity to the command line",
                            mine.normalized.unwrap_or_default(),
                            row.map_or("none", |l| l.as_str()),
                            theirs.label.map_or("none", |l| l.as_str())
                        ),
                        key: Some(r.key.clone()),
                    }));
                }
            }
        }
        if mine.product.is_some() {
            merged.product = mine.product;
        }
        if let (Some(l), Some(n)) = (merged.label, merged.normalized)
            && crate::decision::SeverityLabel::from_normalized(n) != Some(l)
            && mine.label.is_none() != mine.normalized.is_none()
        {
            return Err(Box::new(InvalidRecord {
                location: r.location.clone(),
                column: Some(if mine.label.is_some() {
                    "Severity.Label".to_owned()
                } else {
                    "Severity.Normalized".to_owned()
                }),
                reason: format!(
                    "per-row decision: the row's severity member contradicts the command line's \
                     (Label {} with Normalized {n}); give both members in the row",
                    l.as_str()
                ),
                key: Some(r.key.clone()),
            }));
        }
        *mine = merged;
    }
    d.merge_from(own);
    if let Err(e) = d.validate_with(rules) {
        return Err(rejected_decision(r, "per-row decision", &e));
    }
    Ok(interner.intern(d))
}

/// Runs on the reading thread: takes each item through the [`Intake`] and
/// sends the messages in batches.
pub(super) fn read_input(
    input: Input,
    tx: mpsc::Sender<Vec<ReaderMsg>>,
    mut intake: Intake,
    prior: Option<Arc<Done>>,
) {
    const BATCH: usize = 256;
    let mode = intake.note_mode();
    let mut batch = Vec::with_capacity(BATCH);
    for item in input {
        // `--resume`: rows an earlier run settled are skipped, but their
        // findings count as seen, so later records of them stay duplicates.
        if let (Some(prior), Ok(item)) = (&prior, &item) {
            let (location, key) = item.location_and_key();
            let record_key = item.record_key();
            match prior.check(location, key) {
                Prior::New => {}
                Prior::Done(kind) => {
                    if let Some(k) = record_key {
                        intake.mark_seen(k);
                    }
                    batch.push(ReaderMsg::AlreadyDone(kind));
                    if batch.len() >= BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        if tx.blocking_send(full).is_err() {
                            return;
                        }
                    }
                    continue;
                }
                Prior::FindingDone => {
                    if let Some(k) = record_key {
                        intake.mark_seen(k);
                    }
                }
                Prior::Changed => {
                    let location = location.clone();
                    batch.push(ReaderMsg::Error(Box::new(RowChanged { location })));
                    break;
                }
            }
        }
        let msg = match item {
            Ok(item) => match intake.admit(item) {
                Admitted::Send {
                    record,
                    decision,
                    note,
                    ..
                } => {
                    let remark = note.remark(mode, decision.is_v2());
                    ReaderMsg::Record(record, decision, remark)
                }
                Admitted::Unchanged {
                    record, message, ..
                } => ReaderMsg::Unchanged(record, message),
                Admitted::Duplicate(r) => ReaderMsg::Duplicate(r, DUPLICATE_SAME),
                Admitted::Conflict(r) => ReaderMsg::Duplicate(r, DUPLICATE_CONFLICT),
                Admitted::Superseded(r) => ReaderMsg::Duplicate(r, DUPLICATE_SUPERSEDED),
                Admitted::OlderState(r) => ReaderMsg::Duplicate(r, DUPLICATE_OLDER_STATE),
                Admitted::StateUnknown(r) => ReaderMsg::Duplicate(r, DUPLICATE_STATE_UNKNOWN),
                Admitted::Invalid(i) => ReaderMsg::Invalid(i),
            },
            Err(e) => {
                batch.push(ReaderMsg::Error(e));
                break;
            }
        };
        batch.push(msg);
        if batch.len() >= BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if tx.blocking_send(full).is_err() {
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{DecisionField, SeverityLabel, parse_flag};
    use crate::model::Location;

    fn dec(parts: &[(DecisionField, &str)]) -> Decision {
        let mut d = Decision::default();
        for (f, v) in parts {
            d.merge_from(parse_flag(*f, &[v.to_string()]).unwrap());
        }
        d
    }

    fn record(own: Decision) -> SourceItem {
        let mut r = SourceRecord::new(
            Location {
                file: "t.csv".into(),
                row: 1,
                detail: None,
            },
            FindingKey::new(
                "f-1",
                "arn:aws:securityhub:us-east-1::product/aws/guardduty",
            ),
        );
        r.decision = Some(Arc::new(own));
        SourceItem::Record(r)
    }

    fn admit(job: &Decision, own: Decision) -> Admitted {
        Intake::new(job, &EngineConfig::default()).admit(record(own))
    }

    #[test]
    fn row_choices_pick_the_newest_state_or_none() {
        let rows: Vec<(&str, &str, Option<i64>)> = vec![
            ("a", "SUPPRESSED", Some(10_000)),
            ("a", "NEW", Some(30_000)),
            ("a", "SUPPRESSED", Some(20_000)),
            ("b", "NEW", Some(5_000)),
            ("b", "NEW", Some(50_000)),
            ("b", "SUPPRESSED", Some(40_000)),
            ("c", "NEW", None),
            ("c", "SUPPRESSED", Some(1_000)),
            ("d", "NEW", Some(1_000)),
            ("e", "NEW", Some(7_000)),
            ("e", "NEW", Some(7_000)),
        ];
        let location = |i: usize| Location {
            file: "lake.csv".into(),
            row: i as u64 + 1,
            detail: None,
        };
        let key =
            |id: &str| FindingKey::new(id, "arn:aws:securityhub:us-east-1::product/aws/guardduty");
        let items: Vec<Result<SourceItem, InputError>> = rows
            .iter()
            .enumerate()
            .map(|(i, (id, status, ms))| {
                let mut r = SourceRecord::new(location(i), key(id));
                r.current = Some(Arc::new(crate::model::CurrentState {
                    workflow_status: Some((*status).to_owned()),
                    modified_ms: *ms,
                    ..Default::default()
                }));
                Ok(SourceItem::Record(r))
            })
            .collect();
        let job = dec(&[(DecisionField::Workflow, "Status=RESOLVED")]);
        let c = RowChoices::find(&job, Box::new(items.into_iter()), &EngineConfig::default());
        let pick = |id: &str| c.state.get(&key_print(&key(id))).copied();
        assert_eq!(pick("a"), Some(StatePick::Row(row_print(&location(1)))));
        assert_eq!(pick("b"), Some(StatePick::First), "NEW at 50 s is newest");
        assert_eq!(pick("c"), Some(StatePick::Unknown), "no time on one row");
        assert_eq!(pick("d"), None, "one row");
        assert_eq!(pick("e"), None, "the same state twice");
        assert!(c.is_empty(), "no conflicting decisions");
        assert_eq!(c.with_history(), 3);
    }

    /// Two findings of the new Security Hub that differ only in their
    /// account are two findings: the last-row choice of one (whose rows
    /// conflict) says nothing about the other, which is sent.
    #[test]
    fn row_choices_keep_v2_findings_of_different_accounts_apart() {
        const PRODUCT: &str = "arn:aws:securityhub:us-east-1::productv2/aws/guardduty";
        let location = |row: u64| Location {
            file: "ocsf.csv".into(),
            row,
            detail: None,
        };
        let key = |account: &str| FindingKey::ocsf(account, "f-1", PRODUCT);
        let rows = [
            ("111111111111", "1"),
            ("111111111111", "2"),
            ("222222222222", "1"),
        ];
        let items: Vec<Result<SourceItem, InputError>> = rows
            .iter()
            .enumerate()
            .map(|(i, (account, status))| {
                let mut r = SourceRecord::new(location(i as u64 + 1), key(account));
                r.decision = Some(Arc::new(dec(&[(DecisionField::StatusId, status)])));
                Ok(SourceItem::Record(r))
            })
            .collect();
        let job = Decision::default();
        let c = RowChoices::find(&job, Box::new(items.into_iter()), &EngineConfig::default());
        assert_eq!(c.is_last(&key("111111111111"), &location(1)), Some(false));
        assert_eq!(c.is_last(&key("111111111111"), &location(2)), Some(true));
        assert_eq!(c.is_last(&key("222222222222"), &location(3)), None);
    }

    #[test]
    fn a_rows_user_defined_field_keeps_the_command_lines_others() {
        let job = dec(&[
            (DecisionField::Workflow, "Status=SUPPRESSED"),
            (DecisionField::UserDefinedFields, "Ticket=SEC-42"),
        ]);
        let own = dec(&[(DecisionField::UserDefinedFields, "Owner=alice")]);
        let Admitted::Send { decision, .. } = admit(&job, own) else {
            panic!()
        };
        let udf = decision.user_defined_fields.as_ref().unwrap();
        assert_eq!(udf.get("Ticket").map(String::as_str), Some("SEC-42"));
        assert_eq!(udf.get("Owner").map(String::as_str), Some("alice"));
        // The row's value of the same key wins.
        let own = dec(&[(DecisionField::UserDefinedFields, "Ticket=SEC-7")]);
        let Admitted::Send { decision, .. } = admit(&job, own) else {
            panic!()
        };
        assert_eq!(
            decision.user_defined_fields.as_ref().unwrap()["Ticket"],
            "SEC-7"
        );
    }

    #[test]
    fn a_contradicting_severity_member_is_an_invalid_row_with_the_reason() {
        let job = dec(&[(DecisionField::Severity, "Label=LOW")]);
        let own = dec(&[(DecisionField::Severity, "Normalized=90")]);
        let Admitted::Invalid(i) = admit(&job, own) else {
            panic!()
        };
        assert_eq!(i.column.as_deref(), Some("Severity.Normalized"));
        assert!(i.reason.contains("contradicts"), "{}", i.reason);
        // An agreeing member joins the command line's.
        let own = dec(&[(DecisionField::Severity, "Normalized=35")]);
        let Admitted::Send { decision, .. } = admit(&job, own) else {
            panic!()
        };
        let s = decision.severity.as_ref().unwrap();
        assert_eq!(
            (s.label, s.normalized),
            (Some(SeverityLabel::Low), Some(35))
        );
        // A row's label replaces the command line's.
        let own = dec(&[(DecisionField::Severity, "Label=HIGH")]);
        let Admitted::Send { decision, .. } = admit(&job, own) else {
            panic!()
        };
        assert_eq!(
            decision.severity.as_ref().unwrap().label,
            Some(SeverityLabel::High)
        );
        // A row's label under a command-line Normalized that disagrees.
        let job = dec(&[(DecisionField::Severity, "Normalized=10")]);
        let own = dec(&[(DecisionField::Severity, "Label=CRITICAL")]);
        assert!(matches!(admit(&job, own), Admitted::Invalid(_)));
    }
}
