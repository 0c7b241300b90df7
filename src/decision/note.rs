//! The note policy (`--note-mode`): what a decision's `Note` becomes for a
//! finding that may already have one.
//!
//! `BatchUpdateFindings` replaces a finding's single note (docs/service-facts.md §8.3),
//! so a campaign that sets a note wipes whatever other tools keep there
//! (ticket keys, JSON state). The policy decides per finding, from the note
//! the export recorded ([`CurrentState`]):
//! - `replace`: the decision's note as it is (the service's behaviour);
//! - `append`: the existing text, [`APPEND_SEPARATOR`], then the new text,
//!   within the 512-character limit: the existing text is never cut, the new
//!   text is shortened at its end (marked with [`CUT_MARKER`]), or dropped
//!   when the existing note leaves less than [`APPEND_MIN_CHARS`] of room;
//!   `UpdatedBy` is the decision's either way, so the finding still carries
//!   the campaign's name. A note that already ends with the new text is
//!   left as it is (a re-run does not append twice);
//! - `keep`: a finding that has a note keeps it (the note is taken out of
//!   its decision; the other fields still apply).
//!
//! When the export does not say whether a finding has a note (no recorded
//! state, or state without the note: see [`CurrentState::note_recorded`]),
//! `append` and `keep` do not write the note: writing could destroy one.
//! `replace` writes it, as it would anyway.
//!
//! What it does not do: read or write anything, or parse a note's content
//! (a JSON note is text like any other: appending makes it invalid JSON,
//! so tools that keep JSON in notes want `keep`).

use std::borrow::Cow;
use std::fmt;

use super::validate::is_blank;
use super::{Decision, NOTE_TEXT_MAX_CHARS};
use crate::model::CurrentState;

/// Between the existing note and the appended text. One line: whether the
/// service accepts line breaks in `Note.Text` is not documented.
pub(crate) const APPEND_SEPARATOR: &str = " | ";
/// Ends an appended text that was shortened to fit.
pub(crate) const CUT_MARKER: &str = "…";
/// The least of the new text worth appending (marker included); with less
/// room the existing note is left as it is.
pub(crate) const APPEND_MIN_CHARS: usize = 16;

/// `--note-mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoteMode {
    /// Write the decision's note over any existing note.
    #[default]
    Replace,
    /// Add the decision's text after the existing note.
    Append,
    /// Leave findings that have a note untouched in their note.
    Keep,
}

impl NoteMode {
    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            NoteMode::Replace => "replace",
            NoteMode::Append => "append",
            NoteMode::Keep => "keep",
        }
    }
}

impl fmt::Display for NoteMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the policy did with one finding's note.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum NoteAction {
    /// The decision sets no note.
    None,
    /// Written; the export shows the finding has no note.
    Written,
    /// Written; the finding's note already has this text.
    Same,
    /// `replace`: written over a different existing note.
    Overwritten,
    /// `replace`: written, but the export does not say whether the finding
    /// has a note, so one may be overwritten.
    WrittenUnknown,
    /// `append`: the new text follows the existing note; `cut` of its
    /// `chars` characters were dropped to fit (all of them when the existing
    /// note leaves no room).
    Appended {
        /// Characters of the new text dropped.
        cut: usize,
        /// Characters of the new text.
        chars: usize,
    },
    /// `append`: the existing note already ends with the new text; its text
    /// is written unchanged.
    AlreadyAppended,
    /// `keep`: the finding has a note; not written.
    Kept,
    /// `append`/`keep`: the export does not say whether the finding has a
    /// note; not written.
    Withheld,
}

impl NoteAction {
    /// What to say about the note in the finding's results row, if
    /// anything is worth saying; `comment`: about the OCSF comment of a
    /// `BatchUpdateFindingsV2` decision (the comment policy).
    pub(crate) fn remark(self, mode: NoteMode, comment: bool) -> Option<Cow<'static, str>> {
        if comment {
            return self.comment_remark(mode);
        }
        match self {
            NoteAction::Appended { cut: 0, .. } => {
                Some("note appended to the existing note".into())
            }
            NoteAction::Appended { cut, chars } if cut >= chars => Some(
                format!(
                    "note not appended: the existing note leaves no room within \
                     {NOTE_TEXT_MAX_CHARS} characters; its text is unchanged (all {chars} \
                     characters of the new text dropped), Note.UpdatedBy set"
                )
                .into(),
            ),
            NoteAction::Appended { cut, chars } => Some(
                format!(
                    "note appended, cut to fit {NOTE_TEXT_MAX_CHARS} characters: the last {cut} \
                     of the new text's {chars} characters were dropped (marked {CUT_MARKER})"
                )
                .into(),
            ),
            NoteAction::AlreadyAppended => {
                Some("the existing note already ends with the new text; text unchanged".into())
            }
            NoteAction::Kept => Some("existing note kept (--note-mode keep)".into()),
            NoteAction::Withheld => Some(
                format!(
                    "note not written: the input does not record whether the finding has a \
                     note (--note-mode {mode})"
                )
                .into(),
            ),
            NoteAction::Overwritten => Some("existing note replaced".into()),
            NoteAction::None
            | NoteAction::Written
            | NoteAction::Same
            | NoteAction::WrittenUnknown => None,
        }
    }

    /// [`Self::remark`] for a comment.
    fn comment_remark(self, mode: NoteMode) -> Option<Cow<'static, str>> {
        match self {
            NoteAction::Appended { cut: 0, .. } => {
                Some("comment appended to the existing comment".into())
            }
            NoteAction::Appended { cut, chars } if cut >= chars => Some(
                format!(
                    "comment not appended: the existing comment leaves no room within \
                     {NOTE_TEXT_MAX_CHARS} characters (all {chars} characters of the new text \
                     dropped)"
                )
                .into(),
            ),
            NoteAction::Appended { cut, chars } => Some(
                format!(
                    "comment appended, cut to fit {NOTE_TEXT_MAX_CHARS} characters: the last \
                     {cut} of the new text's {chars} characters were dropped (marked {CUT_MARKER})"
                )
                .into(),
            ),
            NoteAction::AlreadyAppended => {
                Some("the existing comment already ends with the new text; text unchanged".into())
            }
            NoteAction::Kept => Some("existing comment kept (--note-mode keep)".into()),
            NoteAction::Withheld => Some(
                format!(
                    "comment not written: the input does not record whether the finding has a \
                     comment (--note-mode {mode})"
                )
                .into(),
            ),
            NoteAction::Overwritten => Some("existing comment replaced".into()),
            NoteAction::None
            | NoteAction::Written
            | NoteAction::Same
            | NoteAction::WrittenUnknown => None,
        }
    }
}

/// The note a finding has, as far as the export says.
enum Existing<'a> {
    None,
    Text(&'a str),
    Unknown,
}

fn existing(current: Option<&CurrentState>) -> Existing<'_> {
    let Some(cur) = current else {
        return Existing::Unknown;
    };
    match cur.note_text.as_deref() {
        // The service refuses blank notes, so a blank one is no note.
        Some(t) if !is_blank(t) => Existing::Text(t),
        Some(_) => Existing::None,
        None if cur.note_recorded => Existing::None,
        None => Existing::Unknown,
    }
}

/// The OCSF `comment` a finding has, as its recorded state says.
fn existing_comment(current: Option<&CurrentState>) -> Existing<'_> {
    let Some(cur) = current else {
        return Existing::Unknown;
    };
    match cur.comment.as_deref() {
        Some(t) if !is_blank(t) => Existing::Text(t),
        Some(_) => Existing::None,
        None if cur.comment_recorded => Existing::None,
        None => Existing::Unknown,
    }
}

/// The comment policy of the new Security Hub: `mode` applied to a V2
/// decision's `Comment` over the finding's recorded `comment`, exactly as
/// [`apply_note_mode`] treats a note (`keep` leaves an existing comment,
/// `append` adds to it within 512 characters, `replace` overwrites; with
/// the comment unknown, `keep` and `append` withhold it).
fn apply_comment_mode(
    decision: &Decision,
    comment: &str,
    mode: NoteMode,
    current: Option<&CurrentState>,
) -> (Option<Decision>, NoteAction) {
    let without = || {
        let mut d = decision.clone();
        d.comment = None;
        Some(d)
    };
    let same = |t: &str| t.trim_end() == comment.trim_end();
    match (mode, existing_comment(current)) {
        (_, Existing::None) => (None, NoteAction::Written),
        (NoteMode::Keep, Existing::Text(_)) => (without(), NoteAction::Kept),
        (_, Existing::Text(t)) if same(t) => (None, NoteAction::Same),
        (NoteMode::Replace, Existing::Text(_)) => (None, NoteAction::Overwritten),
        (NoteMode::Replace, Existing::Unknown) => (None, NoteAction::WrittenUnknown),
        (NoteMode::Keep | NoteMode::Append, Existing::Unknown) => (without(), NoteAction::Withheld),
        (NoteMode::Append, Existing::Text(t)) => {
            let (text, action) = if t.trim_end().ends_with(comment.trim_end()) {
                (t.to_owned(), NoteAction::AlreadyAppended)
            } else {
                let (text, cut, chars) = append(t.trim_end(), comment.trim_end());
                (text, NoteAction::Appended { cut, chars })
            };
            let mut d = decision.clone();
            d.comment = Some(text);
            (Some(d), action)
        }
    }
}

/// Applies `mode` to `decision` for a finding whose recorded state is
/// `current`. Returns the decision to send when it differs from `decision`
/// (possibly with no field left: nothing to send), and what happened to
/// the note.
pub(crate) fn apply_note_mode(
    decision: &Decision,
    mode: NoteMode,
    current: Option<&CurrentState>,
) -> (Option<Decision>, NoteAction) {
    if let Some(comment) = &decision.comment {
        // A V2 decision has no note: the policy is over its comment.
        return apply_comment_mode(decision, comment, mode, current);
    }
    let Some(note) = &decision.note else {
        return (None, NoteAction::None);
    };
    let without_note = || {
        let mut d = decision.clone();
        d.note = None;
        Some(d)
    };
    // Trailing whitespace (a note ending in a newline) is no difference.
    let same = |t: &str| t.trim_end() == note.text.trim_end();
    match (mode, existing(current)) {
        (_, Existing::None) => (None, NoteAction::Written),
        // `keep` leaves a note entirely alone, author and time included,
        // even when its text is the decision's.
        (NoteMode::Keep, Existing::Text(_)) => (without_note(), NoteAction::Kept),
        (_, Existing::Text(t)) if same(t) => (None, NoteAction::Same),
        (NoteMode::Replace, Existing::Text(_)) => (None, NoteAction::Overwritten),
        (NoteMode::Replace, Existing::Unknown) => (None, NoteAction::WrittenUnknown),
        (NoteMode::Keep | NoteMode::Append, Existing::Unknown) => {
            (without_note(), NoteAction::Withheld)
        }
        (NoteMode::Append, Existing::Text(t)) => {
            let (text, action) = if t.trim_end().ends_with(note.text.trim_end()) {
                (t.to_owned(), NoteAction::AlreadyAppended)
            } else {
                let (text, cut, chars) = append(t.trim_end(), note.text.trim_end());
                (text, NoteAction::Appended { cut, chars })
            };
            let mut d = decision.clone();
            if let Some(n) = &mut d.note {
                n.text = text;
            }
            (Some(d), action)
        }
    }
}

/// `existing`, the separator, then as much of `new` as fits in
/// [`NOTE_TEXT_MAX_CHARS`]. Returns the text, the characters of `new`
/// dropped, and `new`'s length in characters.
pub(crate) fn append(existing: &str, new: &str) -> (String, usize, usize) {
    let chars = new.chars().count();
    let used = existing.chars().count() + APPEND_SEPARATOR.chars().count();
    let room = NOTE_TEXT_MAX_CHARS.saturating_sub(used);
    if chars <= room {
        return (format!("{existing}{APPEND_SEPARATOR}{new}"), 0, chars);
    }
    let marker = CUT_MARKER.chars().count();
    if room < APPEND_MIN_CHARS {
        return (existing.to_owned(), chars, chars);
    }
    let kept = room - marker;
    // Cut on a character boundary; trailing spaces before the marker say nothing.
    let head: String = new.chars().take(kept).collect();
    let head = head.trim_end();
    let cut = chars - head.chars().count();
    (
        format!("{existing}{APPEND_SEPARATOR}{head}{CUT_MARKER}"),
        cut,
        chars,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{NoteUpdate, WorkflowStatus, WorkflowUpdate};

    fn note_decision(text: &str) -> Decision {
        Decision {
            note: Some(NoteUpdate {
                text: text.to_owned(),
                updated_by: "campaign-7".to_owned(),
            }),
            workflow: Some(WorkflowUpdate {
                status: WorkflowStatus::Suppressed,
            }),
            ..Decision::default()
        }
    }

    fn with_note(text: Option<&str>, recorded: bool) -> CurrentState {
        CurrentState {
            note_text: text.map(str::to_owned),
            note_recorded: recorded,
            ..CurrentState::default()
        }
    }

    #[test]
    fn replace_writes_and_says_what_it_overwrites() {
        let d = note_decision("accepted risk");
        let has = with_note(Some("JIRA-12"), true);
        assert_eq!(
            apply_note_mode(&d, NoteMode::Replace, Some(&has)),
            (None, NoteAction::Overwritten)
        );
        assert_eq!(
            apply_note_mode(&d, NoteMode::Replace, None),
            (None, NoteAction::WrittenUnknown)
        );
        assert_eq!(
            apply_note_mode(&d, NoteMode::Replace, Some(&with_note(None, true))),
            (None, NoteAction::Written)
        );
        // State recorded, but not the note: not known.
        assert_eq!(
            apply_note_mode(&d, NoteMode::Replace, Some(&with_note(None, false))),
            (None, NoteAction::WrittenUnknown)
        );
    }

    #[test]
    fn keep_takes_the_note_out_only_where_a_note_exists_or_may_exist() {
        let d = note_decision("accepted risk");
        let (changed, action) =
            apply_note_mode(&d, NoteMode::Keep, Some(&with_note(Some("JIRA-12"), true)));
        assert_eq!(action, NoteAction::Kept);
        let changed = changed.unwrap();
        assert!(changed.note.is_none());
        assert_eq!(changed.workflow, d.workflow, "other fields still apply");
        let (changed, action) = apply_note_mode(&d, NoteMode::Keep, None);
        assert_eq!(action, NoteAction::Withheld);
        assert!(changed.unwrap().note.is_none());
        assert_eq!(
            apply_note_mode(&d, NoteMode::Keep, Some(&with_note(None, true))),
            (None, NoteAction::Written)
        );
        // A blank recorded note is no note.
        assert_eq!(
            apply_note_mode(&d, NoteMode::Keep, Some(&with_note(Some("  "), false))),
            (None, NoteAction::Written)
        );
    }

    #[test]
    fn append_keeps_the_existing_text_and_adds_the_new() {
        let d = note_decision("accepted risk");
        let (changed, action) = apply_note_mode(
            &d,
            NoteMode::Append,
            Some(&with_note(Some("JIRA-12"), true)),
        );
        assert_eq!(action, NoteAction::Appended { cut: 0, chars: 13 });
        let note = changed.unwrap().note.unwrap();
        assert_eq!(note.text, "JIRA-12 | accepted risk");
        assert_eq!(note.updated_by, "campaign-7");
        // A second run does not append again.
        let again = with_note(Some("JIRA-12 | accepted risk"), true);
        let (changed, action) = apply_note_mode(&d, NoteMode::Append, Some(&again));
        assert_eq!(action, NoteAction::AlreadyAppended);
        assert_eq!(
            changed.unwrap().note.unwrap().text,
            "JIRA-12 | accepted risk"
        );
        // Not known: not written.
        let (changed, action) = apply_note_mode(&d, NoteMode::Append, None);
        assert_eq!(action, NoteAction::Withheld);
        assert!(changed.unwrap().note.is_none());
    }

    #[test]
    fn keep_leaves_a_note_with_the_same_text_alone_author_included() {
        let d = note_decision("accepted risk");
        let mut has = with_note(Some("accepted risk"), true);
        has.note_updated_by = Some("alice".into());
        let (changed, action) = apply_note_mode(&d, NoteMode::Keep, Some(&has));
        assert_eq!(action, NoteAction::Kept);
        let changed = changed.expect("the note is taken out");
        assert!(changed.note.is_none(), "UpdatedBy must not be rewritten");
        assert_eq!(changed.workflow, d.workflow);
    }

    #[test]
    fn append_ignores_trailing_whitespace() {
        let d = note_decision("accepted risk");
        // Already appended, then a newline added by another tool.
        let has = with_note(Some("JIRA-12 | accepted risk\n"), true);
        let (changed, action) = apply_note_mode(&d, NoteMode::Append, Some(&has));
        assert_eq!(action, NoteAction::AlreadyAppended);
        assert_eq!(
            changed.unwrap().note.unwrap().text,
            "JIRA-12 | accepted risk\n",
            "the text is left as it is"
        );
        // A note ending in a newline gets the separator after its text.
        let has = with_note(Some("JIRA-12\n"), true);
        let (changed, _) = apply_note_mode(&d, NoteMode::Append, Some(&has));
        assert_eq!(
            changed.unwrap().note.unwrap().text,
            "JIRA-12 | accepted risk"
        );
        // The same text with a trailing space is the same note.
        let has = with_note(Some("accepted risk "), true);
        assert_eq!(
            apply_note_mode(&d, NoteMode::Append, Some(&has)).1,
            NoteAction::Same
        );
    }

    #[test]
    fn append_cuts_the_new_text_never_the_existing_one() {
        let old = "x".repeat(400);
        let new = "y".repeat(200);
        let (text, cut, chars) = append(&old, &new);
        assert_eq!(text.chars().count(), NOTE_TEXT_MAX_CHARS);
        assert!(text.starts_with(&format!("{old}{APPEND_SEPARATOR}yyy")));
        assert!(text.ends_with(CUT_MARKER));
        assert_eq!(chars, 200);
        // 512 - 400 - 3 = 109 of room, one for the marker.
        assert_eq!(cut, 200 - 108);
        // Multi-byte characters are cut on a boundary and counted as one.
        let (text, cut, _) = append(&old, &"é".repeat(200));
        assert_eq!(text.chars().count(), NOTE_TEXT_MAX_CHARS);
        assert_eq!(cut, 92);
        // No room: the existing note stays whole, nothing is appended.
        // 500 + 3 leaves 9 characters: less than APPEND_MIN_CHARS.
        let full = "z".repeat(500);
        let more = "accepted risk, see SEC-42";
        assert_eq!(append(&full, more), (full.clone(), 25, 25));
        // A short text that fits is appended whole.
        assert_eq!(append(&full, "SEC-42").1, 0);
        let d = note_decision(more);
        let (changed, action) =
            apply_note_mode(&d, NoteMode::Append, Some(&with_note(Some(&full), true)));
        assert_eq!(action, NoteAction::Appended { cut: 25, chars: 25 });
        assert_eq!(changed.unwrap().note.unwrap().text, full);
        assert!(
            action
                .remark(NoteMode::Append, false)
                .unwrap()
                .contains("no room")
        );
    }

    #[test]
    fn the_result_is_always_a_valid_note() {
        for old_len in [1usize, 100, 490, 495, 500, 508, 509, 512] {
            for new_len in [1usize, 20, 200, 512] {
                let old = "o".repeat(old_len);
                let d = note_decision(&"n".repeat(new_len));
                let (changed, _) =
                    apply_note_mode(&d, NoteMode::Append, Some(&with_note(Some(&old), true)));
                let d = changed.unwrap_or(d);
                assert!(d.validate().is_ok(), "{old_len} + {new_len}");
            }
        }
    }

    #[test]
    fn no_note_in_the_decision_means_nothing_to_do() {
        let d = Decision {
            confidence: Some(10),
            ..Decision::default()
        };
        for mode in [NoteMode::Replace, NoteMode::Append, NoteMode::Keep] {
            assert_eq!(apply_note_mode(&d, mode, None), (None, NoteAction::None));
        }
    }
}
