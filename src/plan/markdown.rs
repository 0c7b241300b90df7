//! `--output markdown`: the plan (and a run's summary) as GitHub-flavoured
//! Markdown, to paste into a pull request or post from CI.
//!
//! The page is a pure function of the [`Plan`]: no timestamps, no
//! temporary paths, maps in key order, so a campaign's plan committed next
//! to its file diffs cleanly when the inputs or the decision change. Values
//! that come from the inputs (Ids, notes, Region names) are escaped or put
//! in code spans, so that an export cannot inject Markdown or HTML into the
//! page.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Plan, Sample, Verdict, code_name, duration};
use crate::model::OutcomeKind;
use crate::reporting::RunSummary;

/// The plan as a Markdown page.
pub fn plan(plan: &Plan) -> String {
    let mut o = String::new();
    let t = &plan.totals;
    let _ = writeln!(
        o,
        "## sechub-triage plan: {} {} to update",
        t.to_update,
        plural(t.to_update, "finding", "findings")
    );
    let _ = writeln!(o);
    if let Some(g) = &plan.guardrails {
        let line = match g.verdict {
            Verdict::Proceed => "**Verdict:** the run may start.",
            Verdict::Confirm => {
                "**Verdict:** the run needs confirmation (interactively, or `--yes`)."
            }
            Verdict::Refuse => "**Verdict: the run would be REFUSED.**",
        };
        let _ = writeln!(o, "{line}");
        let _ = writeln!(o);
    }
    let mut settings = vec![format!("`--note-mode {}`", plan.note_mode)];
    if plan.skip_unchanged {
        settings.push("`--skip-unchanged`".to_owned());
    }
    if let Some(r) = &plan.region_override {
        settings.push(format!("every request to {} (`--region`)", code(r)));
    }
    let _ = writeln!(
        o,
        "Nothing was sent. {} {}: {}; {}.",
        plan.inputs.len(),
        plural(plan.inputs.len() as u64, "input", "inputs"),
        if plan.inputs.is_empty() {
            "(none)".to_owned()
        } else {
            plan.inputs
                .iter()
                .map(|i| code(i))
                .collect::<Vec<_>>()
                .join(", ")
        },
        settings.join(", ")
    );
    let _ = writeln!(o);
    let v2 = plan.operation == super::BATCH_UPDATE_FINDINGS_V2;
    if v2 {
        let _ = writeln!(
            o,
            "Operation: `{}` (the new Security Hub; OCSF findings, `DescribeSecurityHubV2` \
             checked per Region before any update).",
            super::BATCH_UPDATE_FINDINGS_V2
        );
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "| Findings | count |");
    let _ = writeln!(o, "|---|---:|");
    let _ = writeln!(o, "| records read | {} |", t.records);
    let _ = writeln!(o, "| **to update** | **{}** |", t.to_update);
    if t.already_in_state > 0 {
        let _ = writeln!(
            o,
            "| of which already in the requested state | {} |",
            t.already_in_state
        );
    }
    let _ = writeln!(o, "| unchanged (not sent) | {} |", t.unchanged);
    let _ = writeln!(o, "| duplicates | {} |", t.duplicates);
    let _ = writeln!(o, "| rejected | {} |", t.rejected);
    let _ = writeln!(o);
    if let Some(e) = &plan.input_error {
        let _ = writeln!(
            o,
            "**Input error:** {} (the plan covers the records before it)",
            text(e)
        );
        let _ = writeln!(o);
    }

    let r = &plan.requests;
    let _ = writeln!(o, "### Requests per Region");
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "| Region | findings | decisions | requests | time at the quota |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---:|");
    for (name, x) in &r.by_region {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            cell(name),
            x.findings,
            x.decisions,
            x.requests,
            duration(x.seconds)
        );
    }
    let _ = writeln!(
        o,
        "| **total** | **{}** | | **{}** | **{}** |",
        t.to_update,
        r.requests,
        duration(r.seconds)
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "Fewest requests possible at {} requests/s, burst {}, per Region; Regions run in \
         parallel, retries add requests.",
        r.rate, r.burst
    );
    let _ = writeln!(o);

    let _ = writeln!(o, "### Decision groups");
    let _ = writeln!(o);
    if plan.decisions.is_empty() {
        let _ = writeln!(o, "(none)");
    } else {
        let _ = writeln!(o, "| findings | unchanged | decision |");
        let _ = writeln!(o, "|---:|---:|---|");
        for g in &plan.decisions {
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                g.findings,
                g.unchanged,
                cell(&code(&g.decision))
            );
        }
        if plan.decisions_not_listed > 0 {
            let _ = writeln!(o);
            let _ = writeln!(o, "… and {} more groups.", plan.decisions_not_listed);
        }
    }
    let _ = writeln!(o);

    if !plan.notes.is_empty() && v2 {
        let _ = writeln!(
            o,
            "### Comments (`--note-mode {}`, the comment policy)",
            plan.note_mode
        );
        let _ = writeln!(o);
        counts_table(&mut o, "comment", &plan.notes);
    } else if !plan.notes.is_empty() {
        let _ = writeln!(o, "### Notes (`--note-mode {}`)", plan.note_mode);
        let _ = writeln!(o);
        counts_table(&mut o, "note", &plan.notes);
    }

    for (title, map) in [
        ("Findings to update by account", &plan.by_account),
        ("Findings to update by Region", &plan.by_region),
        ("Findings to update by product", &plan.by_product),
    ] {
        let _ = writeln!(o, "<details><summary>{title} ({})</summary>", map.len());
        let _ = writeln!(o);
        if map.is_empty() {
            let _ = writeln!(o, "(none)");
            let _ = writeln!(o);
        } else {
            let first = title.rsplit(' ').next().unwrap_or("key");
            counts_table(&mut o, first, map);
        }
        let _ = writeln!(o, "</details>");
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "### Warnings");
    let _ = writeln!(o);
    if plan.warnings.is_empty() {
        let _ = writeln!(o, "None.");
    }
    for w in &plan.warnings {
        let _ = writeln!(
            o,
            "- **{}** ({} {}): {}",
            code_name(w.code),
            w.count,
            plural(w.count, "finding", "findings"),
            text(&w.message)
        );
        samples(&mut o, &w.samples);
    }
    let _ = writeln!(o);

    for (title, c) in [
        ("Rejected rows", &plan.rejected),
        ("Duplicates", &plan.duplicates),
    ] {
        if c.count == 0 {
            continue;
        }
        let _ = writeln!(
            o,
            "### {title}: {} (first {} shown)",
            c.count,
            c.samples.len()
        );
        let _ = writeln!(o);
        samples_list(&mut o, &c.samples, "");
        let _ = writeln!(o);
    }

    if let Some(g) = &plan.guardrails {
        let _ = writeln!(o, "### Guardrails");
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "- `--max-findings`: {}",
            g.max_findings
                .map_or_else(|| "(none)".to_owned(), |m| m.to_string())
        );
        let _ = writeln!(o, "- `--confirm-above`: {}", g.confirm_above);
        let _ = writeln!(
            o,
            "- run tag: {}",
            g.run_tag
                .as_deref()
                .map_or_else(|| "(none)".to_owned(), code)
        );
        let verdict = match g.verdict {
            Verdict::Proceed => "the run may start",
            Verdict::Confirm => "the run needs confirmation (interactively, or `--yes`)",
            Verdict::Refuse => "**the run would be REFUSED**",
        };
        let _ = writeln!(o, "- verdict: {verdict}");
        for reason in &g.reasons {
            let _ = writeln!(o, "  - {}", text(reason));
        }
    }
    o
}

/// A run's summary as Markdown (`update`, `run`, `revert` with
/// `--output markdown`). Unlike the plan it holds the run's times.
pub fn summary(s: &RunSummary) -> String {
    let mut o = String::new();
    let updated = s.count(OutcomeKind::Updated);
    let _ = writeln!(
        o,
        "## sechub-triage run: {updated} of {} {} updated",
        s.records,
        plural(s.records, "record", "records")
    );
    let _ = writeln!(o);
    if let Some(why) = &s.aborted {
        let _ = writeln!(o, "**ABORTED:** {}", text(why));
        let _ = writeln!(o);
    }
    if let Some(why) = &s.stopped {
        let _ = writeln!(
            o,
            "**STOPPED:** {}; run again with `--resume` to finish",
            text(why)
        );
        let _ = writeln!(o);
    }
    if let Some(why) = &s.input_error {
        let _ = writeln!(o, "**Input error:** {}", text(why));
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "| outcome | records |");
    let _ = writeln!(o, "|---|---:|");
    for kind in OutcomeKind::ALL {
        let _ = writeln!(o, "| {kind} | {} |", s.count(kind));
    }
    let _ = writeln!(o);
    if !s.errors_by_code.is_empty() {
        let _ = writeln!(o, "### Not updated, by code");
        let _ = writeln!(o);
        counts_table(&mut o, "code", &s.errors_by_code);
    }
    let _ = writeln!(
        o,
        "{} requests ({} throttled, {} findings retried) in {:.1} s.",
        s.requests,
        s.throttled,
        s.retries,
        s.elapsed.as_secs_f64()
    );
    if s.already_done > 0 {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "{} rows were done in earlier runs on the same journal.",
            s.already_done
        );
    }
    o
}

fn counts_table(o: &mut String, key: &str, map: &BTreeMap<String, u64>) {
    let _ = writeln!(o, "| {key} | findings |");
    let _ = writeln!(o, "|---|---:|");
    for (k, v) in map {
        let _ = writeln!(o, "| {} | {v} |", cell(&text(k)));
    }
    let _ = writeln!(o);
}

/// A warning's examples, nested under its list item.
fn samples(o: &mut String, samples: &[Sample]) {
    samples_list(o, samples, "  ");
}

fn samples_list(o: &mut String, samples: &[Sample], indent: &str) {
    for s in samples {
        let mut line = format!("{indent}- {}", text(&s.location));
        if let Some(c) = &s.column {
            let _ = write!(line, " [{}]", text(c));
        }
        if let Some(id) = &s.id {
            let _ = write!(line, " {}", code(id));
        }
        let _ = write!(line, ": {}", text(&s.detail));
        let _ = writeln!(o, "{line}");
    }
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `s` as one inline code span, whatever backticks it holds (CommonMark:
/// a fence longer than any run inside, padded when it starts or ends with
/// a backtick). Newlines become spaces.
fn code(s: &str) -> String {
    let s = one_line(s);
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || s.is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// Text with Markdown and HTML made literal outside `code spans` (our own
/// messages quote flags that way); newlines become spaces.
fn text(s: &str) -> String {
    let s = one_line(s);
    let mut out = String::with_capacity(s.len());
    let mut in_code = false;
    // An unpaired backtick (from input data) would open a span that never
    // closes: escape it instead.
    let paired = s.matches('`').count().is_multiple_of(2);
    for c in s.chars() {
        if c == '`' {
            if paired {
                in_code = !in_code;
                out.push(c);
            } else {
                out.push_str("\\`");
            }
            continue;
        }
        if !in_code
            && matches!(
                c,
                '\\' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~'
            )
        {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A table cell: `|` must be escaped even inside code spans (GFM).
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev = '\0';
    for c in s.chars() {
        if c == '|' && prev != '\\' {
            out.push('\\');
        }
        out.push(c);
        prev = c;
    }
    out
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::decision::{Decision, DecisionField, NoteMode, parse_flag};
    use crate::engine::{EngineConfig, Input, InputError};
    use crate::model::{FindingKey, InvalidRecord, Location, SourceItem, SourceRecord};
    use crate::plan::{Expectation, Guardrails, PlanSettings, make, run_tag};
    use crate::source::{InputSpec, SourceOptions};

    fn decision(flags: &[(DecisionField, &str)]) -> Decision {
        let mut d = Decision::default();
        for (f, v) in flags {
            d.merge_from(parse_flag(*f, &[(*v).to_owned()]).unwrap());
        }
        d
    }

    /// The plan `sechub-triage plan samples/findings.json ...` makes.
    fn samples_plan(job: &Decision, engine: EngineConfig, expect_regions: Option<&str>) -> Plan {
        let name = "samples/findings.json";
        let source =
            crate::source::open(&[InputSpec::parse(name)], &SourceOptions::default()).unwrap();
        let input: Input = Box::new(source.map(|r| r.map_err(|e| Box::new(e) as InputError)));
        let settings = PlanSettings {
            engine: engine.clone(),
            inputs: vec![name.to_owned()],
            expect_regions: expect_regions.map(|e| Expectation::parse(e, "Regions").unwrap()),
            ..PlanSettings::default()
        };
        let mut plan = make(job, input, &settings);
        plan.guard(&Guardrails::default(), run_tag(job, &engine));
        plan
    }

    /// The README's campaign: suppress with an appended note and a run tag.
    #[test]
    fn the_readme_campaign() {
        let job = decision(&[
            (DecisionField::Workflow, "Status=SUPPRESSED"),
            (
                DecisionField::Note,
                "Text=Accepted risk: legacy fleet (RISK-118),UpdatedBy=secops",
            ),
        ]);
        let engine = EngineConfig {
            note_mode: NoteMode::Append,
            run_tag: Some("risk-118".into()),
            ..EngineConfig::default()
        };
        let md = plan(&samples_plan(&job, engine, None));
        insta::assert_snapshot!("readme_campaign", md);
    }

    /// RESOLVED on failing controls, notes overwritten, and more Regions
    /// than expected: warnings and a refusal.
    #[test]
    fn a_refused_plan_with_warnings() {
        let job = decision(&[
            (DecisionField::Workflow, "Status=RESOLVED"),
            (DecisionField::Note, "Text=Closing,UpdatedBy=secops"),
        ]);
        let md = plan(&samples_plan(&job, EngineConfig::default(), Some("2")));
        insta::assert_snapshot!("refused_with_warnings", md);
    }

    /// The README's V2 example with the comment policy's warnings: the
    /// plan says "comment" wherever the V1 plan says "note" (the flag stays
    /// `--note-mode`, the warning codes `note-*`).
    #[test]
    fn a_v2_plan_speaks_of_comments() {
        let name = "samples/findings-ocsf.jsonl";
        let opts = SourceOptions {
            v2: true,
            ..SourceOptions::default()
        };
        let make_plan = |job: &Decision, note_mode: NoteMode| {
            let source = crate::source::open(&[InputSpec::parse(name)], &opts).unwrap();
            let source = crate::source::v2_keys(source, crate::source::Notices::default());
            let input: Input = Box::new(source.map(|r| r.map_err(|e| Box::new(e) as InputError)));
            let engine = EngineConfig {
                note_mode,
                ..EngineConfig::default()
            };
            let settings = PlanSettings {
                engine: engine.clone(),
                inputs: vec![name.to_owned()],
                ..PlanSettings::default()
            };
            let mut p = make(job, input, &settings);
            p.guard(&Guardrails::default(), run_tag(job, &engine));
            p
        };
        let replace = make_plan(
            &decision(&[
                (DecisionField::StatusId, "3"),
                (DecisionField::Comment, "Accepted risk, ticket SEC-1234"),
            ]),
            NoteMode::Replace,
        );
        let long = "x".repeat(500);
        let append = make_plan(
            &decision(&[(DecisionField::Comment, long.as_str())]),
            NoteMode::Append,
        );
        let codes: Vec<_> = replace
            .warnings
            .iter()
            .chain(&append.warnings)
            .map(|w| w.code)
            .collect();
        assert!(
            codes.contains(&super::super::WarningCode::CommentOverwrite)
                && codes.contains(&super::super::WarningCode::CommentCut),
            "the test sees the comment warnings: {codes:?}"
        );
        for p in [&replace, &append] {
            for page in [plan(p), p.to_text()] {
                for line in page.lines() {
                    let rest = line.replace("--note-mode", "");
                    assert!(
                        !rest.to_lowercase().contains("note"),
                        "a V2 plan says comment, not note: {line}"
                    );
                }
            }
        }
        insta::assert_snapshot!("v2_comment_policy", plan(&replace));
    }

    fn record(row: u64, id: &str, arn: &str) -> SourceItem {
        SourceItem::Record(SourceRecord::new(
            Location {
                file: "odd | names.csv".into(),
                row,
                detail: None,
            },
            FindingKey::new(id, arn),
        ))
    }

    /// Input data that looks like Markdown or HTML stays literal; rejected
    /// rows and duplicates are listed.
    #[test]
    fn hostile_input_stays_literal() {
        let arn = "arn:aws:securityhub:us-east-1::product/aws/securityhub";
        let items = vec![
            record(1, "id|with|pipes", arn),
            record(2, "`backticks` and <script>alert(1)</script>", arn),
            record(3, "id|with|pipes", arn),
            SourceItem::Invalid(InvalidRecord {
                location: Location {
                    file: "odd | names.csv".into(),
                    row: 4,
                    detail: None,
                },
                column: Some("Id".into()),
                reason: "blank Id *not* _allowed_ [x](http://example.com)".into(),
                key: None,
            }),
        ];
        let input: Input = Box::new(items.into_iter().map(Ok::<_, InputError>));
        let job = decision(&[(
            DecisionField::Note,
            "{\"Text\":\"a | b `c` **d**\",\"UpdatedBy\":\"x\"}",
        )]);
        let settings = PlanSettings {
            inputs: vec!["odd | names.csv".into()],
            ..PlanSettings::default()
        };
        let mut p = make(&job, input, &settings);
        p.guard(
            &Guardrails {
                max_findings: Some(1),
                ..Guardrails::default()
            },
            None,
        );
        insta::assert_snapshot!("hostile_input", plan(&p));
    }

    #[test]
    fn the_same_plan_gives_the_same_page() {
        let job = decision(&[(DecisionField::Workflow, "Status=SUPPRESSED")]);
        let a = plan(&samples_plan(&job, EngineConfig::default(), None));
        let b = plan(&samples_plan(&job, EngineConfig::default(), None));
        assert_eq!(a, b);
        assert!(!a.contains("/tmp"), "no temporary paths");
    }

    #[test]
    fn code_spans_hold_any_backticks() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a``"), "``` `a`` ```");
        assert_eq!(code("x\ny"), "`x y`");
        assert_eq!(text("use `--yes` * now"), "use `--yes` \\* now");
        assert_eq!(text("one ` tick"), "one \\` tick");
        assert_eq!(cell("`a|b`"), "`a\\|b`");
        assert_eq!(cell(&text("a|b")), "a\\|b");
    }

    #[test]
    fn a_run_summary() {
        let mut s = RunSummary {
            records: 12,
            requests: 3,
            throttled: 1,
            retries: 2,
            elapsed: Duration::from_millis(1500),
            aborted: Some("run aborted: AccessDeniedException: denied".into()),
            ..RunSummary::default()
        };
        s.outcomes.insert(OutcomeKind::Updated, 7);
        s.outcomes.insert(OutcomeKind::Failed, 1);
        s.outcomes.insert(OutcomeKind::NotAttempted, 4);
        s.errors_by_code.insert("AccessDeniedException".into(), 1);
        s.errors_by_code.insert("not_attempted".into(), 4);
        insta::assert_snapshot!("run_summary", summary(&s));
    }
}
