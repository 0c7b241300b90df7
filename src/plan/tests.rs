use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::decision::{DecisionField, parse_flag};
use crate::engine::{InputError, UNKNOWN_REGION};
use crate::model::SourceItem;

const GUARDDUTY: &str = "arn:aws:securityhub:us-east-1::product/aws/guardduty";
const CONTROLS_EU: &str = "arn:aws:securityhub:eu-west-1::product/aws/securityhub";

fn flag(field: DecisionField, v: &str) -> Decision {
    parse_flag(field, &[v.to_owned()]).unwrap()
}

fn decision(flags: &[(DecisionField, &str)]) -> Decision {
    let mut d = Decision::default();
    for (f, v) in flags {
        d.merge_from(flag(*f, v));
    }
    d
}

fn record(row: u64, id: &str, arn: &str) -> SourceRecord {
    SourceRecord::new(
        Location {
            file: "export.json".into(),
            row,
            detail: None,
        },
        FindingKey::new(id, arn),
    )
}

fn with_state(mut r: SourceRecord, cur: CurrentState) -> SourceRecord {
    r.current = Some(Arc::new(cur));
    r
}

fn input(items: Vec<SourceItem>) -> Input {
    Box::new(items.into_iter().map(Ok::<_, InputError>))
}

fn settings() -> PlanSettings {
    PlanSettings {
        inputs: vec!["export.json".into()],
        ..PlanSettings::default()
    }
}

fn suppress() -> Decision {
    decision(&[(DecisionField::Workflow, "Status=SUPPRESSED")])
}

#[test]
fn every_record_is_counted_once_and_routed_like_a_run() {
    let mut items = Vec::new();
    for i in 0..250u64 {
        let id = format!("arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/{i}");
        items.push(SourceItem::Record(record(i + 1, &id, GUARDDUTY)));
    }
    // A repeat, a rejected row, a finding whose Region cannot be known, and
    // one whose account comes from the export.
    items.push(SourceItem::Record(record(
        251,
        "arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/0",
        GUARDDUTY,
    )));
    items.push(SourceItem::Invalid(InvalidRecord {
        location: Location {
            file: "export.json".into(),
            row: 252,
            detail: Some("line 900".into()),
        },
        column: Some("Id".into()),
        reason: "blank Id".into(),
        key: None,
    }));
    items.push(SourceItem::Record(record(253, "x", "not-an-arn")));
    items.push(SourceItem::Record(with_state(
        record(254, "free-text-id", CONTROLS_EU),
        CurrentState {
            account_id: Some("444455556666".into()),
            ..CurrentState::default()
        },
    )));
    let plan = make(&suppress(), input(items), &settings());
    let t = &plan.totals;
    assert_eq!(t.records, 254);
    assert_eq!(
        (t.to_update, t.duplicates, t.rejected, t.unchanged),
        (251, 1, 2, 0)
    );
    assert_eq!(
        t.to_update + t.duplicates + t.rejected + t.unchanged,
        t.records
    );
    assert_eq!(
        plan.by_account,
        BTreeMap::from([("111122223333".into(), 250), ("444455556666".into(), 1)])
    );
    assert_eq!(
        plan.by_region,
        BTreeMap::from([("eu-west-1".into(), 1), ("us-east-1".into(), 250)])
    );
    assert_eq!(
        plan.by_product,
        BTreeMap::from([("aws/guardduty".into(), 250), ("aws/securityhub".into(), 1)])
    );
    assert_eq!(
        plan.rejected.samples[0].location,
        "export.json: row 252 (line 900)"
    );
    assert_eq!(plan.rejected.samples[1].detail, UNKNOWN_REGION);
    assert_eq!(plan.duplicates.samples[0].location, "export.json: row 251");
    // 250 findings with one decision: 3 requests; 1 in eu-west-1: 1.
    assert_eq!(plan.requests.by_region["us-east-1"].requests, 3);
    assert_eq!(plan.requests.by_region["eu-west-1"].requests, 1);
    assert_eq!(plan.requests.requests, 4);
    assert_eq!(plan.decisions.len(), 1);
    assert_eq!(plan.decisions[0].findings, 251);
    assert_eq!(
        plan.decisions[0].decision,
        r#"{"Workflow":{"Status":"SUPPRESSED"}}"#
    );
}

#[test]
fn requests_are_counted_per_decision_and_timed_at_the_quota() {
    let resolve = decision(&[(DecisionField::Workflow, "Status=RESOLVED")]);
    let mut items = Vec::new();
    for i in 0..4_050u64 {
        let mut r = record(i + 1, &format!("f{i}"), GUARDDUTY);
        if i % 3 == 0 {
            r.decision = Some(Arc::new(resolve.clone()));
        }
        items.push(SourceItem::Record(r));
    }
    let mut s = settings();
    s.engine.rate = crate::limits::RateConfig {
        rate: 10.0,
        burst: 30,
    };
    let plan = make(&suppress(), input(items), &s);
    let us = &plan.requests.by_region["us-east-1"];
    // 1,350 RESOLVED (14 requests) and 2,700 SUPPRESSED (27 requests).
    assert_eq!((us.findings, us.decisions, us.requests), (4_050, 2, 41));
    // 30 at once, 11 more at 10/s.
    assert_eq!(us.seconds, 1.1);
    assert_eq!(plan.requests.seconds, 1.1);
    assert_eq!(plan.decisions.len(), 2);
    assert_eq!(plan.decisions[0].findings, 2_700, "largest group first");
}

#[test]
fn warns_about_resolving_failing_controls() {
    let resolve = decision(&[(DecisionField::Workflow, "Status=RESOLVED")]);
    let control = |row, status: &str, generator: &str| {
        SourceItem::Record(with_state(
            record(row, &format!("c{row}"), CONTROLS_EU),
            CurrentState {
                compliance_status: Some(status.into()),
                generator_id: Some(generator.into()),
                ..CurrentState::default()
            },
        ))
    };
    let items = vec![
        control(1, "FAILED", "security-control/IAM.1"),
        control(
            2,
            "WARNING",
            "aws-foundational-security-best-practices/v/1.0.0/S3.1",
        ),
        control(
            3,
            "FAILED",
            "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/1.1",
        ),
        control(4, "PASSED", "security-control/IAM.1"),
        // Failing, but not a control (a third-party scanner).
        control(5, "FAILED", "prowler-iam_root_mfa"),
    ];
    let plan = make(&resolve, input(items), &settings());
    let w = plan
        .warnings
        .iter()
        .find(|w| w.code == WarningCode::ResolvedFailingControls)
        .expect("warning");
    assert_eq!(w.count, 3);
    assert!(w.message.contains("SUPPRESSED"), "{}", w.message);
    assert_eq!(w.samples[0].id.as_deref(), Some("c1"));
    // SUPPRESSED on the same findings: no warning.
    let items = vec![control(1, "FAILED", "security-control/IAM.1")];
    let plan = make(&suppress(), input(items), &settings());
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

fn noted(row: u64, note: Option<&str>) -> SourceItem {
    SourceItem::Record(with_state(
        record(row, &format!("n{row}"), GUARDDUTY),
        CurrentState {
            note_text: note.map(str::to_owned),
            note_recorded: true,
            workflow_status: Some("NEW".into()),
            ..CurrentState::default()
        },
    ))
}

fn note_job() -> Decision {
    decision(&[
        (DecisionField::Workflow, "Status=SUPPRESSED"),
        (DecisionField::Note, "Text=accepted,UpdatedBy=campaign-9"),
    ])
}

#[test]
fn note_modes_are_planned_per_finding_and_still_batched() {
    let items = || {
        let mut v: Vec<SourceItem> = (1..=150).map(|i| noted(i, Some("JIRA-1"))).collect();
        v.extend((151..=300).map(|i| noted(i, None)));
        // The export says nothing about notes here.
        v.push(SourceItem::Record(record(301, "u", GUARDDUTY)));
        v
    };
    let mut s = settings();

    let replace = make(&note_job(), input(items()), &s);
    assert_eq!(replace.notes["overwritten"], 150);
    assert_eq!(replace.notes["written (no note before)"], 150);
    assert_eq!(replace.notes["written (existing note unknown)"], 1);
    let codes: Vec<WarningCode> = replace.warnings.iter().map(|w| w.code).collect();
    assert_eq!(
        codes,
        [WarningCode::NoteOverwrite, WarningCode::NoteUnknown]
    );
    assert_eq!(
        replace.warnings[0].samples[0].detail,
        r#"existing note: "JIRA-1""#
    );
    // One decision: 301 findings, 4 requests.
    assert_eq!(replace.requests.requests, 4);

    s.engine.note_mode = NoteMode::Keep;
    let keep = make(&note_job(), input(items()), &s);
    assert_eq!(keep.notes["kept"], 150);
    assert_eq!(keep.notes["not written (existing note unknown)"], 1);
    assert_eq!(keep.totals.to_update, 301, "workflow still applies");
    // Two decisions (with and without the note): 2 + 2 requests, not 301.
    let us = &keep.requests.by_region["us-east-1"];
    assert_eq!((us.decisions, us.requests), (2, 4));
    // A decision of only a note leaves nothing to send where a note is kept.
    let only_note = decision(&[(DecisionField::Note, "Text=accepted,UpdatedBy=campaign-9")]);
    let keep_only = make(&only_note, input(items()), &s);
    assert_eq!(keep_only.totals.unchanged, 151);
    assert_eq!(keep_only.totals.to_update, 150);

    s.engine.note_mode = NoteMode::Append;
    let append = make(&note_job(), input(items()), &s);
    assert_eq!(append.notes["appended"], 150);
    assert_eq!(append.notes["not written (existing note unknown)"], 1);
    // Every finding with the same existing note shares one decision: the
    // appended one (150), the plain one (150), the one without a note (1).
    let us = &append.requests.by_region["us-east-1"];
    assert_eq!((us.decisions, us.requests), (3, 5));
    // The decision group stays the one the user asked for.
    assert_eq!(append.decisions.len(), 1);
    assert!(
        append.decisions[0]
            .decision
            .contains(r#""Text":"accepted""#)
    );
}

#[test]
fn append_reports_what_it_cut() {
    let long = "t".repeat(500);
    let items = vec![noted(1, Some(&long)), noted(2, Some(&"u".repeat(450)))];
    let mut s = settings();
    s.engine.note_mode = NoteMode::Append;
    let job = decision(&[(
        DecisionField::Note,
        &format!("Text={},UpdatedBy=campaign-9", "n".repeat(100)),
    )]);
    let plan = make(&job, input(items), &s);
    let w = plan
        .warnings
        .iter()
        .find(|w| w.code == WarningCode::NoteCut)
        .expect("cut warning");
    assert_eq!(w.count, 2);
    assert!(
        w.samples[0].detail.contains("no room"),
        "{}",
        w.samples[0].detail
    );
    // 512 - 450 - 3 = 59 of room: 58 characters and the marker.
    assert!(
        w.samples[1]
            .detail
            .contains("the last 42 of the new text's 100"),
        "{}",
        w.samples[1].detail
    );
    assert_eq!(plan.notes["not appended (no room)"], 1);
    assert_eq!(plan.notes["appended (cut)"], 1);
}

#[test]
fn already_in_state_is_reported_and_skipped_with_skip_unchanged() {
    let items = || {
        (1..=10)
            .map(|i| {
                let status = if i <= 4 { "SUPPRESSED" } else { "NEW" };
                SourceItem::Record(with_state(
                    record(i, &format!("s{i}"), GUARDDUTY),
                    CurrentState {
                        workflow_status: Some(status.into()),
                        ..CurrentState::default()
                    },
                ))
            })
            .collect::<Vec<_>>()
    };
    let mut s = settings();
    let plan = make(&suppress(), input(items()), &s);
    assert_eq!(plan.totals.to_update, 10);
    assert_eq!(plan.totals.already_in_state, 4);
    assert_eq!(plan.warnings[0].code, WarningCode::AlreadyInState);
    s.engine.skip_unchanged = true;
    let plan = make(&suppress(), input(items()), &s);
    assert_eq!((plan.totals.to_update, plan.totals.unchanged), (6, 4));
    assert_eq!(plan.totals.already_in_state, 0);
    assert_eq!(plan.decisions[0].unchanged, 4);
}

#[test]
fn expectations_parse_and_refuse_a_wider_scope() {
    assert_eq!(
        Expectation::parse("2", "accounts").unwrap(),
        Expectation::AtMost(2)
    );
    assert_eq!(
        Expectation::parse("111122223333", "accounts").unwrap(),
        Expectation::Only(BTreeSet::from(["111122223333".to_owned()]))
    );
    assert_eq!(
        Expectation::parse(" us-east-1, eu-west-1 ", "Regions").unwrap(),
        Expectation::Only(BTreeSet::from(["eu-west-1".into(), "us-east-1".into()]))
    );
    assert!(Expectation::parse(" , ", "Regions").is_err());

    let items = || {
        vec![
            SourceItem::Record(record(1, "a", GUARDDUTY)),
            SourceItem::Record(record(2, "b", CONTROLS_EU)),
        ]
    };
    let mut s = settings();
    s.expect_regions = Some(Expectation::Only(BTreeSet::from(["us-east-1".into()])));
    s.expect_accounts = Some(Expectation::AtMost(1));
    let mut plan = make(&suppress(), input(items()), &s);
    let w: Vec<&Warning> = plan.warnings.iter().filter(|w| w.code.refuses()).collect();
    assert_eq!(w.len(), 1, "{:?}", plan.warnings);
    assert!(w[0].message.contains("eu-west-1 (1)"), "{}", w[0].message);
    assert_eq!(plan.guard(&Guardrails::default(), None), Verdict::Refuse);
    s.expect_regions = Some(Expectation::AtMost(2));
    let mut plan = make(&suppress(), input(items()), &s);
    assert_eq!(plan.guard(&Guardrails::default(), None), Verdict::Proceed);
}

#[test]
fn guardrails_refuse_confirm_or_proceed() {
    let items = |n: u64| {
        (1..=n)
            .map(|i| SourceItem::Record(record(i, &format!("g{i}"), GUARDDUTY)))
            .collect::<Vec<_>>()
    };
    let s = settings();
    let g = Guardrails {
        max_findings: Some(100),
        confirm_above: 50,
        yes: false,
    };
    let mut plan = make(&suppress(), input(items(101)), &s);
    assert_eq!(plan.guard(&g, Some("tag".into())), Verdict::Refuse);
    let report = plan.guardrails.clone().unwrap();
    assert!(
        report.reasons[0].contains("--max-findings 100"),
        "{report:?}"
    );

    let mut plan = make(&suppress(), input(items(100)), &s);
    assert_eq!(plan.guard(&g, None), Verdict::Refuse, "no run tag");
    assert_eq!(plan.guard(&g, Some("t".into())), Verdict::Confirm);
    let yes = Guardrails { yes: true, ..g };
    assert_eq!(plan.guard(&yes, Some("t".into())), Verdict::Proceed);
    assert_eq!(
        plan.guard(&yes, None),
        Verdict::Refuse,
        "--yes needs a tag too"
    );

    let mut plan = make(&suppress(), input(items(50)), &s);
    assert_eq!(plan.guard(&g, None), Verdict::Proceed, "at the threshold");
}

#[test]
fn the_run_tag_comes_from_the_flag_the_decision_or_a_replaced_note() {
    let mut config = EngineConfig::default();
    assert_eq!(run_tag(&suppress(), &config), None);
    assert_eq!(
        run_tag(&note_job(), &config).as_deref(),
        Some("Note.UpdatedBy=campaign-9")
    );
    config.note_mode = NoteMode::Keep;
    assert_eq!(run_tag(&note_job(), &config), None, "keep may not write it");
    let udf = decision(&[(DecisionField::UserDefinedFields, "sechub-triage-run=c-1")]);
    assert_eq!(
        run_tag(&udf, &config).as_deref(),
        Some("UserDefinedFields.sechub-triage-run=c-1")
    );
    config.run_tag = Some("c-2".into());
    assert_eq!(
        run_tag(&suppress(), &config).as_deref(),
        Some("UserDefinedFields.sechub-triage-run=c-2")
    );
}

#[test]
fn the_run_tag_survives_per_row_user_defined_fields() {
    let mut s = settings();
    s.engine.run_tag = Some("c-3".into());
    let mut r = record(1, "a", GUARDDUTY);
    // The row replaces the whole map (fields merge whole).
    r.decision = Some(Arc::new(decision(&[(
        DecisionField::UserDefinedFields,
        "Owner=team-a",
    )])));
    let plan = make(
        &suppress(),
        input(vec![
            SourceItem::Record(r),
            SourceItem::Record(record(2, "b", GUARDDUTY)),
        ]),
        &s,
    );
    let groups: Vec<&str> = plan.decisions.iter().map(|g| g.decision.as_str()).collect();
    assert_eq!(groups.len(), 2);
    for g in groups {
        assert!(g.contains(r#""sechub-triage-run":"c-3""#), "{g}");
    }
    assert!(plan.decisions.iter().any(|g| g.decision.contains("team-a")));
}

#[test]
fn an_input_error_stops_the_plan_and_refuses_the_run() {
    let items: Vec<Result<SourceItem, InputError>> = vec![
        Ok(SourceItem::Record(record(1, "a", GUARDDUTY))),
        Err("truncated gzip stream".into()),
        Ok(SourceItem::Record(record(2, "b", GUARDDUTY))),
    ];
    let mut plan = make(&suppress(), Box::new(items.into_iter()), &settings());
    assert_eq!(plan.totals.records, 1);
    assert_eq!(plan.input_error.as_deref(), Some("truncated gzip stream"));
    assert_eq!(plan.guard(&Guardrails::default(), None), Verdict::Refuse);
    assert!(plan.to_text().contains("INPUT ERROR"));
}

#[test]
fn the_plan_is_the_same_every_time() {
    let items = || {
        let mut v = Vec::new();
        for i in 0..300u64 {
            let arn = ["us-east-1", "eu-west-1", "ap-southeast-2"][i as usize % 3];
            let mut r = record(
                i + 1,
                &format!(
                    "arn:aws:guardduty:{arn}:{:012}:detector/d/finding/{i}",
                    i % 7
                ),
                &format!("arn:aws:securityhub:{arn}::product/aws/guardduty"),
            );
            if i % 5 == 0 {
                r.decision = Some(Arc::new(decision(&[(DecisionField::Confidence, "10")])));
            }
            v.push(SourceItem::Record(r));
        }
        v
    };
    let a = make(&suppress(), input(items()), &settings());
    let b = make(&suppress(), input(items()), &settings());
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(a.to_text(), b.to_text());
    // Maps come out sorted.
    let json: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
    let regions: Vec<&String> = json["by_region"].as_object().unwrap().keys().collect();
    assert_eq!(regions, ["ap-southeast-2", "eu-west-1", "us-east-1"]);
}

#[test]
fn product_names_and_control_findings() {
    assert_eq!(product_of(GUARDDUTY), "aws/guardduty");
    assert_eq!(
        product_of("arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default"),
        "111122223333/default"
    );
    assert_eq!(product_of("custom"), "custom");
    let no_generator = CurrentState::default();
    assert!(is_control_finding(
        &FindingKey::new("x", CONTROLS_EU),
        &no_generator
    ));
    assert!(!is_control_finding(
        &FindingKey::new("x", GUARDDUTY),
        &no_generator
    ));
    assert_eq!(duration(0.0), "0s");
    assert_eq!(duration(1.1), "1.1s");
    assert_eq!(duration(200.0), "3m 20s");
    assert_eq!(duration(3720.0), "1h 02m");
}

#[test]
fn findings_already_in_state_are_not_sent_just_to_be_tagged() {
    let mut s = settings();
    s.engine.skip_unchanged = true;
    s.engine.run_tag = Some("c-4".into());
    let state = |row: u64, status: &str, tag: Option<&str>| {
        SourceItem::Record(with_state(
            record(row, &format!("t{row}"), GUARDDUTY),
            CurrentState {
                workflow_status: Some(status.into()),
                user_defined_fields: tag
                    .map(|t| BTreeMap::from([(RUN_TAG_KEY.to_owned(), t.to_owned())])),
                ..CurrentState::default()
            },
        ))
    };
    let items = vec![
        state(1, "SUPPRESSED", None),
        state(2, "SUPPRESSED", Some("c-4")),
        state(3, "SUPPRESSED", Some("another-campaign")),
        state(4, "NEW", None),
    ];
    let plan = make(&suppress(), input(items), &s);
    assert_eq!((plan.totals.to_update, plan.totals.unchanged), (1, 3));
    // The tag is still part of what is sent.
    assert!(plan.decisions[0].decision.contains("c-4"));
}

#[test]
fn the_largest_groups_are_listed_whatever_the_number_of_distinct_decisions() {
    // 1,000 findings with a note each, then a group that starts late and
    // grows past all of them, and one large group from the start.
    let note = |t: &str| decision(&[(DecisionField::Note, &format!("Text={t},UpdatedBy=x"))]);
    let mut items = Vec::new();
    let mut row = 0u64;
    let mut push = |items: &mut Vec<SourceItem>, d: Decision| {
        row += 1;
        let id = format!("arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/{row}");
        let mut r = record(row, &id, GUARDDUTY);
        r.decision = Some(Arc::new(d));
        items.push(SourceItem::Record(r));
    };
    for _ in 0..30 {
        push(&mut items, note("big"));
    }
    for i in 0..1000 {
        push(&mut items, note(&format!("ticket {i}")));
    }
    for _ in 0..20 {
        push(&mut items, note("late"));
    }
    let plan = make(&Decision::default(), input(items), &settings());
    assert_eq!(plan.decisions.len(), MAX_LISTED_GROUPS);
    assert_eq!(plan.decisions_not_listed, 1002 - MAX_LISTED_GROUPS as u64);
    assert_eq!(plan.decisions[0].findings, 30);
    assert!(
        plan.decisions[0].decision.contains("big"),
        "{:?}",
        plan.decisions[0]
    );
    assert_eq!(plan.decisions[1].findings, 20);
    assert!(
        plan.decisions[1].decision.contains("late"),
        "{:?}",
        plan.decisions[1]
    );
    // Then the first-seen single ones, in order.
    assert!(
        plan.decisions[2].decision.contains("ticket 0\""),
        "{:?}",
        plan.decisions[2]
    );
    assert!(
        plan.decisions[3].decision.contains("ticket 1\""),
        "{:?}",
        plan.decisions[3]
    );
}

#[test]
fn fields_written_are_counted_right_past_the_bounded_cache() {
    // More distinct decisions than the cache of written fields keeps: it
    // starts over, and every finding's fields are still counted.
    let n = FIELDS_OF_MAX + 1500;
    let mut items = Vec::new();
    for i in 0..n {
        let id = format!("arn:aws:guardduty:us-east-1:111122223333:detector/d/finding/{i}");
        let mut r = record(i as u64 + 1, &id, GUARDDUTY);
        let mut d = decision(&[(DecisionField::Note, &format!("Text=ticket {i},UpdatedBy=x"))]);
        if i % 3 == 0 {
            d.merge_from(suppress());
        }
        r.decision = Some(Arc::new(d));
        items.push(SourceItem::Record(r));
    }
    let plan = make(&Decision::default(), input(items), &settings());
    assert_eq!(plan.totals.to_update, n as u64);
    assert_eq!(plan.fields_written.get("Note"), Some(&(n as u64)));
    assert_eq!(
        plan.fields_written.get("Workflow.Status"),
        Some(&(n.div_ceil(3) as u64))
    );
    assert_eq!(plan.fields_written.len(), 2, "{:?}", plan.fields_written);
}

#[test]
fn a_plan_spilling_its_counts_to_disk_is_the_plan_held_in_memory() {
    // Random rows over three Regions, a few large groups and many single
    // ones, some already in state (`--skip-unchanged`): with room for 2
    // groups in memory (hundreds of runs on disk, groups split across
    // them) the plan is exactly the one made with the default room.
    use rand::{Rng, SeedableRng, rngs::StdRng};
    let arns = [
        GUARDDUTY,
        CONTROLS_EU,
        "arn:aws:securityhub:ap-south-1::product/aws/inspector",
    ];
    for seed in 0..5u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let rows: Vec<(usize, u64, bool, bool)> = (0..rng.random_range(200..700))
            .map(|_| {
                let group = if rng.random_bool(0.5) {
                    rng.random_range(0..4u64)
                } else {
                    rng.random_range(100..100_000u64)
                };
                (
                    rng.random_range(0..arns.len()),
                    group,
                    rng.random_bool(0.5),
                    rng.random_bool(0.2),
                )
            })
            .collect();
        let items = || {
            rows.iter()
                .enumerate()
                .map(|(i, &(arn, group, suppress_too, in_state))| {
                    let mut r = with_state(
                        record(i as u64 + 1, &format!("f{i}"), arns[arn]),
                        CurrentState {
                            workflow_status: Some(
                                if in_state { "SUPPRESSED" } else { "NEW" }.into(),
                            ),
                            ..CurrentState::default()
                        },
                    );
                    let mut d = suppress();
                    if suppress_too {
                        d.merge_from(decision(&[(
                            DecisionField::Note,
                            &format!("Text=ticket {group},UpdatedBy=x"),
                        )]));
                    }
                    r.decision = Some(Arc::new(d));
                    SourceItem::Record(r)
                })
                .collect::<Vec<_>>()
        };
        let mut s = settings();
        s.engine.skip_unchanged = true;
        let job = Decision::default();
        let held = make(&job, input(items()), &s);
        let spilled = make_capped(&job, input(items()), &s, 2);
        assert_eq!(spilled, held, "seed {seed}");
        assert!(held.totals.unchanged > 0 && held.requests.by_region.len() == 3);
        assert!(held.decisions_not_listed > 0, "more groups than listed");
    }
}
