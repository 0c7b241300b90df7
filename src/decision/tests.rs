//! Tests for the decision: the AWS CLI's documented examples, shorthand and
//! JSON equivalents, a table of invalid values, SDK request building, and
//! round-trip properties.

use std::collections::BTreeMap;
use std::io::Write;

use proptest::prelude::*;

use super::parse::parse_cli_input_json;
use super::validate::{COMMENT_MAX_CHARS, SEVERITY_IDS, STATUS_IDS};
use super::*;

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

/// Parses a flag that must be valid.
fn flag(field: DecisionField, values: &[&str]) -> Decision {
    match parse_flag(field, &strings(values)) {
        Ok(d) => d,
        Err(e) => panic!("{} {values:?} should parse: {e}", field.flag()),
    }
}

/// Parses a flag that must be refused, and returns the message.
fn flag_error(field: DecisionField, values: &[&str]) -> String {
    match parse_flag(field, &strings(values)) {
        Ok(d) => panic!("{} {values:?} should be refused, got {d:?}", field.flag()),
        Err(e) => e.to_string(),
    }
}

fn note(text: &str, by: &str) -> Decision {
    Decision {
        note: Some(NoteUpdate {
            text: text.to_owned(),
            updated_by: by.to_owned(),
        }),
        ..Decision::default()
    }
}

fn label(l: SeverityLabel) -> Decision {
    Decision {
        severity: Some(SeverityUpdate {
            label: Some(l),
            ..SeverityUpdate::default()
        }),
        ..Decision::default()
    }
}

fn status(s: WorkflowStatus) -> Decision {
    Decision {
        workflow: Some(WorkflowUpdate { status: s }),
        ..Decision::default()
    }
}

const EXAMPLE_ID_1: &str = "arn:aws:securityhub:us-west-1:123456789012:subscription/pci-dss/v/3.2.1/PCI.Lambda.2/finding/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111";
const EXAMPLE_ID_2: &str = "arn:aws:securityhub:us-west-1:123456789012:subscription/pci-dss/v/3.2.1/PCI.Lambda.2/finding/a1b2c3d4-5678-90ab-cdef-EXAMPLE22222";
const EXAMPLE_ID_3: &str = "arn:aws:securityhub:us-west-1:123456789012:subscription/pci-dss/v/3.2.1/PCI.Lambda.2/finding/a1b2c3d4-5678-90ab-cdef-EXAMPLE33333";
const EXAMPLE_PRODUCT: &str = "arn:aws:securityhub:us-west-1::product/aws/securityhub";

// --- The AWS CLI reference page for `batch-update-findings` -----------------
// (awscli/examples/securityhub/batch-update-findings.rst; the same commands are
// in the Security Hub User Guide). Each value is what the shell passes to the
// program after unquoting.

/// Example 1, "To update a finding": JSON syntax.
#[test]
fn cli_example_1_json_syntax() {
    assert_eq!(
        flag(
            DecisionField::Note,
            &[r#"{"Text": "Known issue that is not a risk.", "UpdatedBy": "user1"}"#]
        ),
        note("Known issue that is not a risk.", "user1")
    );
    assert_eq!(
        flag(DecisionField::Severity, &[r#"{"Label": "LOW"}"#]),
        label(SeverityLabel::Low)
    );
    assert_eq!(
        flag(DecisionField::Workflow, &[r#"{"Status": "RESOLVED"}"#]),
        status(WorkflowStatus::Resolved)
    );
}

/// Example 2, "To update a finding using shorthand syntax":
/// `--note Text="Known issue that is not a risk.",UpdatedBy="user1"
/// --severity Label="LOW" --workflow Status="RESOLVED"`. The shell removes
/// the double quotes, so the program sees unquoted values with spaces.
#[test]
fn cli_example_2_shorthand_syntax() {
    assert_eq!(
        flag(
            DecisionField::Note,
            &["Text=Known issue that is not a risk.,UpdatedBy=user1"]
        ),
        note("Known issue that is not a risk.", "user1")
    );
    assert_eq!(
        flag(DecisionField::Severity, &["Label=LOW"]),
        label(SeverityLabel::Low)
    );
    assert_eq!(
        flag(DecisionField::Workflow, &["Status=RESOLVED"]),
        status(WorkflowStatus::Resolved)
    );
}

/// The same shorthand with the quotes kept (single-quoted for the shell),
/// which is how a value with a comma must be written.
#[test]
fn shorthand_with_quotes_that_reach_the_program() {
    assert_eq!(
        flag(
            DecisionField::Note,
            &[r#"Text="Known issue that is not a risk.",UpdatedBy="user1""#]
        ),
        note("Known issue that is not a risk.", "user1")
    );
    assert_eq!(
        flag(
            DecisionField::Note,
            &[r#"Text="Known issue, see JIRA-1",UpdatedBy=secops"#]
        ),
        note("Known issue, see JIRA-1", "secops")
    );
    assert_eq!(
        flag(DecisionField::Note, &[r"Text='a=b, c',UpdatedBy=x\,y"]),
        note("a=b, c", "x,y")
    );
    assert_eq!(
        flag(DecisionField::Workflow, &["Status=SUPPRESSED"]),
        status(WorkflowStatus::Suppressed)
    );
}

/// The other fields of the API's documented example (`Confidence`,
/// `Criticality`, `Types`, `UserDefinedFields`, `VerificationState`,
/// `RelatedFindings`) as CLI flags in JSON and in shorthand / list syntax.
#[test]
fn every_field_in_json_and_shorthand() {
    let cve = "Software and Configuration Checks/Vulnerabilities/CVE";
    let types = Decision {
        types: Some(vec![cve.to_owned()]),
        ..Decision::default()
    };
    assert_eq!(
        flag(DecisionField::Types, &[&format!("[\"{cve}\"]")]),
        types
    );
    assert_eq!(flag(DecisionField::Types, &[cve]), types);
    assert_eq!(
        flag(DecisionField::Types, &["TTPs/Defense Evasion", "Effects"]).types,
        Some(strings(&["TTPs/Defense Evasion", "Effects"]))
    );

    let udf = Decision {
        user_defined_fields: Some(BTreeMap::from([(
            "reviewedByCio".to_owned(),
            "true".to_owned(),
        )])),
        ..Decision::default()
    };
    assert_eq!(
        flag(
            DecisionField::UserDefinedFields,
            &[r#"{"reviewedByCio": "true"}"#]
        ),
        udf
    );
    assert_eq!(
        flag(DecisionField::UserDefinedFields, &["reviewedByCio=true"]),
        udf
    );
    assert_eq!(
        flag(
            DecisionField::UserDefinedFields,
            &["reviewedByCio=true,ticket=\"SEC-1, SEC-2\""]
        )
        .user_defined_fields,
        Some(BTreeMap::from([
            ("reviewedByCio".to_owned(), "true".to_owned()),
            ("ticket".to_owned(), "SEC-1, SEC-2".to_owned()),
        ]))
    );
    // A multi-line JSON document, as people write in scripts.
    assert_eq!(
        flag(
            DecisionField::UserDefinedFields,
            &["{\n    \"category\": \"accepted-risk\",\n    \"expiry\": \"2026-08-29\"\n  }"]
        )
        .user_defined_fields
        .map(|m| m.len()),
        Some(2)
    );

    assert_eq!(
        flag(DecisionField::Confidence, &["80"]).confidence,
        Some(80)
    );
    assert_eq!(
        flag(DecisionField::Criticality, &["80"]).criticality,
        Some(80)
    );
    assert_eq!(
        flag(DecisionField::VerificationState, &["TRUE_POSITIVE"]).verification_state,
        Some(VerificationState::TruePositive)
    );

    let related = Some(vec![FindingKey::new(EXAMPLE_ID_3, EXAMPLE_PRODUCT)]);
    assert_eq!(
        flag(
            DecisionField::RelatedFindings,
            &[&format!(
                r#"[{{"Id": "{EXAMPLE_ID_3}", "ProductArn": "{EXAMPLE_PRODUCT}"}}]"#
            )]
        )
        .related_findings,
        related
    );
    assert_eq!(
        flag(
            DecisionField::RelatedFindings,
            &[&format!("Id={EXAMPLE_ID_3},ProductArn={EXAMPLE_PRODUCT}")]
        )
        .related_findings,
        related
    );
    assert_eq!(
        flag(
            DecisionField::RelatedFindings,
            &[
                &format!("Id={EXAMPLE_ID_1},ProductArn={EXAMPLE_PRODUCT}"),
                &format!(r#"{{"Id": "{EXAMPLE_ID_2}", "ProductArn": "{EXAMPLE_PRODUCT}"}}"#),
            ]
        )
        .related_findings,
        Some(vec![
            FindingKey::new(EXAMPLE_ID_1, EXAMPLE_PRODUCT),
            FindingKey::new(EXAMPLE_ID_2, EXAMPLE_PRODUCT)
        ])
    );

    let severity = flag(
        DecisionField::Severity,
        &["Normalized=40,Product=7.5,Label=MEDIUM"],
    );
    assert_eq!(
        severity.severity,
        Some(SeverityUpdate {
            label: Some(SeverityLabel::Medium),
            normalized: Some(40),
            product: FiniteF64::new(7.5),
        })
    );
    assert_eq!(
        flag(
            DecisionField::Severity,
            &[r#"{"Normalized": 40, "Product": 7.5, "Label": "MEDIUM"}"#]
        ),
        severity
    );
}

/// `--cli-input-json` with the API documentation's example request (the
/// same document the SDK examples use), FindingIdentifiers included.
#[test]
fn cli_input_json_api_example() {
    let doc = format!(
        r#"{{
    "Confidence": 80,
    "Criticality": 80,
    "FindingIdentifiers": [
        {{"Id": "{EXAMPLE_ID_1}", "ProductArn": "{EXAMPLE_PRODUCT}"}},
        {{"Id": "{EXAMPLE_ID_2}", "ProductArn": "{EXAMPLE_PRODUCT}"}}
    ],
    "Note": {{"Text": "Known issue that is not a risk.", "UpdatedBy": "user1"}},
    "RelatedFindings": [{{"Id": "{EXAMPLE_ID_3}", "ProductArn": "{EXAMPLE_PRODUCT}"}}],
    "Severity": {{"Label": "LOW"}},
    "Types": ["Software and Configuration Checks/Vulnerabilities/CVE"],
    "UserDefinedFields": {{"reviewedByCio": "true"}},
    "VerificationState": "TRUE_POSITIVE",
    "Workflow": {{"Status": "RESOLVED"}}
}}"#
    );
    let input = match parse_cli_input_json(&doc) {
        Ok(i) => i,
        Err(e) => panic!("the API example should parse: {e}"),
    };
    assert_eq!(
        input.finding_identifiers,
        vec![
            FindingKey::new(EXAMPLE_ID_1, EXAMPLE_PRODUCT),
            FindingKey::new(EXAMPLE_ID_2, EXAMPLE_PRODUCT)
        ]
    );
    let d = &input.decision;
    assert_eq!(d.fields(), DecisionField::ALL[..9].to_vec());
    assert!(!d.is_v2());
    assert_eq!(d.confidence, Some(80));
    assert_eq!(d.verification_state, Some(VerificationState::TruePositive));
    assert!(d.validate().is_ok());
    // What goes on the wire is the same document, minus the identifiers.
    let mut expected: serde_json::Value = serde_json::from_str(&doc).unwrap();
    expected
        .as_object_mut()
        .map(|m| m.remove("FindingIdentifiers"));
    assert_eq!(serde_json::to_value(d).unwrap(), expected);
}

#[test]
fn cli_input_json_edge_cases() {
    // Null members are absent; an empty document is an empty decision.
    let input = parse_cli_input_json(r#"{"Note": null, "Confidence": 5}"#).unwrap();
    assert_eq!(input.decision.fields(), vec![DecisionField::Confidence]);
    assert!(parse_cli_input_json("{}").unwrap().decision.is_empty());

    let bad: &[(&str, &[&str])] = &[
        (
            r#"{"Note": {"Text": "t", "UpdatedBy": "u"}, "Remark": "x"}"#,
            &[
                "--cli-input-json",
                "unknown member \"Remark\"",
                "FindingIdentifiers",
            ],
        ),
        // A V2 member beside a V1 one: two operations, refused saying why.
        (
            r#"{"Note": {"Text": "t", "UpdatedBy": "u"}, "Comment": "x"}"#,
            &["--cli-input-json", "--note", "--comment", "cannot be mixed"],
        ),
        (
            r#"{"Note": {"Text": "t", "UpdateBy": "u"}}"#,
            &[
                "--cli-input-json (Note)",
                "unknown member \"UpdateBy\"",
                "Text, UpdatedBy",
            ],
        ),
        (
            r#"{"Confidence": "80"}"#,
            &[
                "--cli-input-json (Confidence)",
                "expected an integer",
                "\"80\"",
            ],
        ),
        (
            r#"{"Confidence": 80.5}"#,
            &["(Confidence)", "expected an integer", "80.5"],
        ),
        (
            r#"{"Confidence": 101}"#,
            &["(Confidence)", "101 is out of range: must be 0 to 100"],
        ),
        (
            r#"{"UserDefinedFields": {"reviewed": true}}"#,
            &[
                "(UserDefinedFields.reviewed)",
                "expected a string",
                "boolean",
            ],
        ),
        (
            r#"{"FindingIdentifiers": [{"Id": "x"}]}"#,
            &[
                "(FindingIdentifiers[0])",
                "missing required member ProductArn",
            ],
        ),
        (
            r#"{"FindingIdentifiers": [{"Id": " ", "ProductArn": "p"}]}"#,
            &["(FindingIdentifiers[0].Id)", "non-whitespace"],
        ),
        (r#"["Note"]"#, &["--cli-input-json", "expected an object"]),
        (
            r#"{"Note": {"Text": "t""#,
            &["--cli-input-json", "invalid JSON", "line 1"],
        ),
        (
            r#"{"Workflow": {"Status": "CLOSED"}}"#,
            &[
                "(Workflow.Status)",
                "\"CLOSED\"",
                "NEW, NOTIFIED, RESOLVED, SUPPRESSED",
            ],
        ),
    ];
    for (doc, fragments) in bad {
        let message = match parse_cli_input_json(doc) {
            Ok(i) => panic!("{doc} should be refused, got {i:?}"),
            Err(e) => e.to_string(),
        };
        for fragment in *fragments {
            assert!(
                message.contains(fragment),
                "{doc}: {message:?} lacks {fragment:?}"
            );
        }
    }
}

#[test]
fn file_values_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &[u8]| {
        let path = dir.path().join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(text).unwrap();
        format!("file://{}", path.display())
    };
    let json_note = write(
        "note.json",
        b"\xEF\xBB\xBF{\"Text\": \"from a file\", \"UpdatedBy\": \"me\"}\n",
    );
    assert_eq!(
        flag(DecisionField::Note, &[&json_note]),
        note("from a file", "me")
    );
    let shorthand_note = write("note.txt", b"Text=from a file,UpdatedBy=me\n");
    assert_eq!(
        flag(DecisionField::Note, &[&shorthand_note]),
        note("from a file", "me")
    );
    let confidence = write("c.txt", b"80\n");
    assert_eq!(
        flag(DecisionField::Confidence, &[&confidence]).confidence,
        Some(80)
    );
    let state = write("v.txt", b"FALSE_POSITIVE\n");
    assert_eq!(
        flag(DecisionField::VerificationState, &[&state]).verification_state,
        Some(VerificationState::FalsePositive)
    );
    let doc = write(
        "input.json",
        br#"{"Workflow": {"Status": "NOTIFIED"}, "FindingIdentifiers": [{"Id": "a", "ProductArn": "b"}]}"#,
    );
    let input = parse_cli_input_json(&doc).unwrap();
    assert_eq!(input.decision, status(WorkflowStatus::Notified));
    assert_eq!(input.finding_identifiers, vec![FindingKey::new("a", "b")]);

    let missing = format!("file://{}", dir.path().join("absent.json").display());
    let e = parse_flag(DecisionField::Note, &[missing]).unwrap_err();
    assert!(
        matches!(e.kind(), DecisionErrorKind::ReadFile { .. }),
        "{e:?}"
    );
    assert!(e.to_string().starts_with("--note: cannot read "), "{e}");
    assert!(std::error::Error::source(&e).is_some());
    let latin1 = write("latin1.txt", b"Text=caf\xE9,UpdatedBy=me");
    let e = flag_error(DecisionField::Note, &[&latin1]);
    assert!(e.contains("not valid UTF-8"), "{e}");
}

/// Each invalid value names the flag (and member path when nested), the rule
/// and the value.
#[test]
fn invalid_values_name_field_and_rule() {
    use DecisionField as F;
    let long_text = "x".repeat(513);
    let long_note = format!("Text={long_text},UpdatedBy=me");
    let long_author = format!("Text=t,UpdatedBy={long_text}");
    let long_key = format!("{}=v", "k".repeat(129));
    let long_value = format!("k={}", "v".repeat(1025));
    let many_types: Vec<String> = (0..51).map(|i| format!("TTPs/Category {i}")).collect();
    let many_types: Vec<&str> = many_types.iter().map(String::as_str).collect();
    let many_fields = (0..51)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    let many_related: Vec<String> = (0..11).map(|i| format!("Id=f{i},ProductArn=p")).collect();
    let many_related: Vec<&str> = many_related.iter().map(String::as_str).collect();

    let cases: Vec<(F, Vec<&str>, Vec<&str>)> = vec![
        (
            F::Confidence,
            vec!["101"],
            vec!["--confidence: 101 is out of range: must be 0 to 100"],
        ),
        (
            F::Confidence,
            vec!["-1"],
            vec!["--confidence:", "out of range"],
        ),
        (
            F::Confidence,
            vec!["99999999999999999999999"],
            vec!["--confidence:", "out of range"],
        ),
        (
            F::Confidence,
            vec!["eighty"],
            vec!["--confidence:", "\"eighty\" is not an integer"],
        ),
        (
            F::Confidence,
            vec!["80", "90"],
            vec!["--confidence:", "takes one value, got 2"],
        ),
        (
            F::Confidence,
            vec![],
            vec!["--confidence:", "expected a value"],
        ),
        (
            F::Criticality,
            vec!["200"],
            vec!["--criticality:", "out of range: must be 0 to 100"],
        ),
        (
            F::VerificationState,
            vec!["true_positive"],
            vec![
                "--verification-state:",
                "\"true_positive\" is not a valid value",
                "BENIGN_POSITIVE",
                "did you mean TRUE_POSITIVE?",
            ],
        ),
        (
            F::Workflow,
            vec!["Status=CLOSED"],
            vec![
                "--workflow (Workflow.Status):",
                "\"CLOSED\"",
                "must be one of NEW, NOTIFIED, RESOLVED, SUPPRESSED",
            ],
        ),
        (
            F::Workflow,
            vec!["{}"],
            vec!["--workflow: missing required member Status"],
        ),
        (
            F::Workflow,
            vec!["State=NEW"],
            vec!["--workflow: unknown member \"State\": must be one of Status"],
        ),
        (
            F::Severity,
            vec!["Label=SEVERE"],
            vec![
                "--severity (Severity.Label):",
                "INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL",
            ],
        ),
        (
            F::Severity,
            vec!["Normalized=101"],
            vec![
                "--severity (Severity.Normalized):",
                "101 is out of range: must be 0 to 100",
            ],
        ),
        (
            F::Severity,
            vec!["Normalized=high"],
            vec!["--severity (Severity.Normalized):", "not an integer"],
        ),
        (
            F::Severity,
            vec![r#"{"Normalized": "40"}"#],
            vec![
                "--severity (Severity.Normalized):",
                "expected an integer",
                "\"40\"",
            ],
        ),
        (
            F::Severity,
            vec!["Product=nan"],
            vec!["--severity (Severity.Product):", "not a finite number"],
        ),
        (
            F::Severity,
            vec!["Product=1e400"],
            vec!["--severity (Severity.Product):", "not a finite number"],
        ),
        (
            F::Severity,
            vec!["Product=lots"],
            vec!["--severity (Severity.Product):", "\"lots\" is not a number"],
        ),
        (
            F::Severity,
            vec!["{}"],
            vec![
                "--severity:",
                "give at least one of Label, Normalized, Product",
            ],
        ),
        (
            F::Severity,
            vec!["Label=LOW,Normalized=50"],
            vec![
                "--severity:",
                "Label LOW disagrees with Normalized 50",
                "MEDIUM",
                "undocumented",
            ],
        ),
        (
            F::Note,
            vec!["Text=,UpdatedBy=me"],
            vec![
                "--note (Note.Text):",
                "\"\" must contain a non-whitespace character",
            ],
        ),
        (
            F::Note,
            vec![r#"{"Text": "   ", "UpdatedBy": "me"}"#],
            vec!["--note (Note.Text):", "non-whitespace"],
        ),
        (
            F::Note,
            vec!["Text=ok"],
            vec!["--note: missing required member UpdatedBy"],
        ),
        (
            F::Note,
            vec!["Text=a,b,UpdatedBy=me"],
            vec![
                "--note (Note.Text):",
                "expected a string",
                "quote a value that contains commas",
                "a list",
            ],
        ),
        (
            F::Note,
            vec![&long_note],
            vec![
                "--note (Note.Text):",
                "is 513 characters long: must be at most 512",
                "…",
            ],
        ),
        (
            F::Note,
            vec![&long_author],
            vec!["--note (Note.UpdatedBy):", "at most 512"],
        ),
        (
            F::Note,
            vec!["Text=t,UpdatedBy"],
            vec!["--note (Note.Text):", "expected a string"],
        ),
        (
            F::Note,
            vec!["Text=t,,UpdatedBy=me"],
            vec!["--note:", "shorthand syntax error", "at character 8"],
        ),
        (
            F::Note,
            vec!["Text=\"unclosed,UpdatedBy=me"],
            vec!["--note:", "never closed", "at character 6"],
        ),
        (
            F::Note,
            vec![r#"{"Text": "t", "UpdatedBy": "me""#],
            vec!["--note:", "invalid JSON", "column"],
        ),
        (
            F::Note,
            vec![r#"["Text"]"#],
            vec!["--note: expected an object, got a list"],
        ),
        (
            F::Types,
            vec!["Vulnerabilities/CVE"],
            vec![
                "--types (Types[0]):",
                "\"Vulnerabilities\" is not a documented type namespace",
                "TTPs",
            ],
        ),
        (
            F::Types,
            vec!["TTPs/a/b/c"],
            vec!["--types (Types[0]):", "not a valid finding type", "4 parts"],
        ),
        (
            F::Types,
            vec!["TTPs//x"],
            vec!["--types (Types[0]):", "part 2 is empty"],
        ),
        (
            F::Types,
            vec!["Effects", " "],
            vec!["--types (Types[1]):", "non-whitespace"],
        ),
        (
            F::Types,
            vec![r#"["TTPs", 3]"#],
            vec!["--types (Types[1]):", "expected a string", "the number 3"],
        ),
        (
            F::Types,
            many_types,
            vec!["--types:", "has 51 entries: at most 50 are allowed"],
        ),
        (
            F::UserDefinedFields,
            vec![r#"{"k": ""}"#],
            vec![
                "--user-defined-fields (UserDefinedFields.k):",
                "non-whitespace",
            ],
        ),
        (
            F::UserDefinedFields,
            vec![r#"{" ": "v"}"#],
            vec![
                "--user-defined-fields (UserDefinedFields[\" \"] key):",
                "non-whitespace",
            ],
        ),
        (
            F::UserDefinedFields,
            vec![&long_key],
            vec![
                "--user-defined-fields",
                "key):",
                "is 129 characters long: must be at most 128",
            ],
        ),
        (
            F::UserDefinedFields,
            vec![&long_value],
            vec![
                "--user-defined-fields (UserDefinedFields.k):",
                "is 1025 characters long: must be at most 1024",
            ],
        ),
        (
            F::UserDefinedFields,
            vec![&many_fields],
            vec!["--user-defined-fields:", "has 51 entries: at most 50"],
        ),
        (
            F::UserDefinedFields,
            vec!["k=a,b"],
            vec!["(UserDefinedFields.k):", "expected a string"],
        ),
        (
            F::RelatedFindings,
            vec!["[]"],
            vec!["--related-findings:", "has 0 entries: at least 1 required"],
        ),
        (
            F::RelatedFindings,
            many_related,
            vec!["--related-findings:", "has 11 entries: at most 10"],
        ),
        (
            F::RelatedFindings,
            vec!["Id=x"],
            vec![
                "--related-findings (RelatedFindings[0]):",
                "missing required member ProductArn",
            ],
        ),
        (
            F::RelatedFindings,
            vec!["Id=x,ProductArn=p", "Id= ,ProductArn=p"],
            vec![
                "--related-findings (RelatedFindings[1].Id):",
                "non-whitespace",
            ],
        ),
        (
            F::RelatedFindings,
            vec!["Id=x,ProductArn=p,Extra=1"],
            vec![
                "(RelatedFindings[0]):",
                "unknown member \"Extra\"",
                "Id, ProductArn",
            ],
        ),
    ];
    for (field, values, fragments) in cases {
        let message = flag_error(field, &values);
        for fragment in fragments {
            assert!(
                message.contains(fragment),
                "{} {:?}: {message:?} lacks {fragment:?}",
                field.flag(),
                values
                    .iter()
                    .map(|v| v.chars().take(40).collect::<String>())
                    .collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn unknown_namespaces_can_be_allowed() {
    let rules = Rules::default().allow_unknown_type_namespaces(true);
    let d = parse_flag_with(
        DecisionField::Types,
        &strings(&["Vendor/Custom/Thing"]),
        &rules,
    )
    .unwrap();
    assert!(d.validate_with(&rules).is_ok());
    let e = d.validate().unwrap_err();
    assert_eq!(e.path(), "Types[0]");
    assert!(matches!(
        e.kind(),
        DecisionErrorKind::UnknownTypeNamespace { .. }
    ));
    // The format is still checked.
    assert!(parse_flag_with(DecisionField::Types, &strings(&["a/b/c/d"]), &rules).is_err());
}

#[test]
fn severity_label_and_normalized_that_agree_are_fine() {
    for (l, n) in [
        ("INFORMATIONAL", 0),
        ("LOW", 1),
        ("LOW", 39),
        ("MEDIUM", 40),
        ("HIGH", 89),
        ("CRITICAL", 100),
    ] {
        let d = flag(
            DecisionField::Severity,
            &[&format!("Label={l},Normalized={n}")],
        );
        assert!(d.validate().is_ok(), "{l} {n}");
    }
    for l in SeverityLabel::ALL {
        assert_eq!(SeverityLabel::from_normalized(l.normalized()), Some(*l));
    }
    assert_eq!(SeverityLabel::from_normalized(101), None);
}

#[test]
fn an_empty_decision_is_refused() {
    let e = Decision::default().validate().unwrap_err();
    let message = e.to_string();
    assert!(
        message.starts_with("nothing to update: give at least one of --note"),
        "{message}"
    );
    for field in DecisionField::ALL {
        assert!(
            message.contains(field.flag()),
            "{message} lacks {}",
            field.flag()
        );
    }
}

#[test]
fn validate_names_member_paths_without_a_flag() {
    let d = Decision {
        confidence: Some(101),
        ..Decision::default()
    };
    assert_eq!(
        d.validate().unwrap_err().to_string(),
        "Confidence: 101 is out of range: must be 0 to 100"
    );
    let d = note("", "me");
    let e = d.validate().unwrap_err();
    assert_eq!(e.path(), "Note.Text");
    assert_eq!(e.flag(), None);
    assert!(e.to_string().starts_with("Note.Text: "), "{e}");
}

#[test]
fn flags_win_over_cli_input_json_field_by_field() {
    let mut d = parse_cli_input_json(
        r#"{"Note": {"Text": "from json", "UpdatedBy": "a"}, "Confidence": 10, "Workflow": {"Status": "NEW"}}"#,
    )
    .unwrap()
    .decision;
    d.merge_from(flag(DecisionField::Note, &["Text=from flag,UpdatedBy=b"]));
    d.merge_from(flag(DecisionField::Criticality, &["5"]));
    assert_eq!(d.note, note("from flag", "b").note);
    assert_eq!(d.confidence, Some(10));
    assert_eq!(d.criticality, Some(5));
    assert_eq!(d.workflow, status(WorkflowStatus::New).workflow);
    // An empty decision changes nothing.
    let before = d.clone();
    d.merge_from(Decision::default());
    assert_eq!(d, before);
    // A Severity from a later source replaces the whole Severity.
    let mut s = flag(DecisionField::Severity, &["Label=LOW,Product=3"]);
    s.merge_from(flag(DecisionField::Severity, &["Normalized=95"]));
    assert_eq!(s.severity.as_ref().and_then(|s| s.label), None);
    assert!(s.validate().is_ok());
}

#[test]
fn serializes_as_the_request_body_part() {
    let mut d = note("Known issue", "secops");
    d.merge_from(status(WorkflowStatus::Suppressed));
    d.merge_from(flag(DecisionField::UserDefinedFields, &["b=2,a=1"]));
    d.merge_from(flag(DecisionField::Severity, &["Product=2.5"]));
    d.merge_from(flag(DecisionField::RelatedFindings, &["Id=i,ProductArn=p"]));
    assert_eq!(
        serde_json::to_string(&d).unwrap(),
        r#"{"Note":{"Text":"Known issue","UpdatedBy":"secops"},"Severity":{"Product":2.5},"UserDefinedFields":{"a":"1","b":"2"},"Workflow":{"Status":"SUPPRESSED"},"RelatedFindings":[{"Id":"i","ProductArn":"p"}]}"#
    );
    assert_eq!(serde_json::to_string(&Decision::default()).unwrap(), "{}");
    assert!(serde_json::from_str::<Decision>(r#"{"Nope": 1}"#).is_err());
}

#[test]
fn field_names() {
    for field in DecisionField::ALL {
        assert_eq!(DecisionField::from_flag(field.flag()), Some(field));
        assert_eq!(DecisionField::from_member(field.member()), Some(field));
        assert_eq!(
            field.flag().trim_start_matches("--").replace('-', ""),
            field.member().to_ascii_lowercase()
        );
    }
    assert_eq!(DecisionField::from_flag("--remark"), None);
    let v2: Vec<_> = DecisionField::ALL
        .into_iter()
        .filter(|f| f.is_v2())
        .collect();
    assert_eq!(
        v2,
        [
            DecisionField::Comment,
            DecisionField::SeverityId,
            DecisionField::StatusId
        ]
    );
}

#[test]
fn equal_decisions_hash_equal_and_product_compares_by_bits() {
    use std::collections::HashSet;
    let a = flag(DecisionField::Severity, &["Product=0.1"]);
    let b = flag(DecisionField::Severity, &[r#"{"Product": 0.1}"#]);
    let c = flag(DecisionField::Severity, &["Product=-0.0"]);
    let d = flag(DecisionField::Severity, &["Product=0"]);
    let set: HashSet<Decision> = [a.clone(), b, c, d].into_iter().collect();
    assert_eq!(set.len(), 3);
    assert!(set.contains(&a));
    assert!(FiniteF64::new(f64::NAN).is_none());
    assert!(FiniteF64::new(f64::INFINITY).is_none());
}

/// `apply` sets exactly the decision's fields on the SDK request; nothing is sent.
#[test]
fn apply_builds_the_sdk_request() {
    use aws_sdk_securityhub::config::{BehaviorVersion, Region};
    use aws_sdk_securityhub::types as sdk;

    let config = aws_sdk_securityhub::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-west-1"))
        .build();
    let client = aws_sdk_securityhub::Client::from_conf(config);

    let doc = format!(
        r#"{{"Confidence": 80, "Criticality": 70,
            "Note": {{"Text": "Known issue that is not a risk.", "UpdatedBy": "user1"}},
            "RelatedFindings": [{{"Id": "{EXAMPLE_ID_3}", "ProductArn": "{EXAMPLE_PRODUCT}"}}],
            "Severity": {{"Label": "LOW", "Normalized": 1, "Product": 2.5}},
            "Types": ["Software and Configuration Checks/Vulnerabilities/CVE", "TTPs"],
            "UserDefinedFields": {{"reviewedByCio": "true"}},
            "VerificationState": "BENIGN_POSITIVE",
            "Workflow": {{"Status": "RESOLVED"}}}}"#
    );
    let d = parse_cli_input_json(&doc).unwrap().decision;
    let b = d.apply(client.batch_update_findings());
    let input = b.as_input();
    assert_eq!(
        input.get_note(),
        &Some(
            sdk::NoteUpdate::builder()
                .text("Known issue that is not a risk.")
                .updated_by("user1")
                .build()
        )
    );
    assert_eq!(
        input.get_severity(),
        &Some(
            sdk::SeverityUpdate::builder()
                .label(sdk::SeverityLabel::Low)
                .normalized(1)
                .product(2.5)
                .build()
        )
    );
    assert_eq!(input.get_confidence(), &Some(80));
    assert_eq!(input.get_criticality(), &Some(70));
    assert_eq!(
        input.get_verification_state(),
        &Some(sdk::VerificationState::BenignPositive)
    );
    assert_eq!(
        input.get_types(),
        &Some(strings(&[
            "Software and Configuration Checks/Vulnerabilities/CVE",
            "TTPs"
        ]))
    );
    assert_eq!(
        input
            .get_user_defined_fields()
            .as_ref()
            .and_then(|m| m.get("reviewedByCio"))
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(
        input.get_workflow(),
        &Some(
            sdk::WorkflowUpdate::builder()
                .status(sdk::WorkflowStatus::Resolved)
                .build()
        )
    );
    assert_eq!(
        input.get_related_findings(),
        &Some(vec![
            sdk::RelatedFinding::builder()
                .id(EXAMPLE_ID_3)
                .product_arn(EXAMPLE_PRODUCT)
                .build()
        ])
    );
    assert_eq!(input.get_finding_identifiers(), &None);

    // Only the set fields are touched.
    let b = status(WorkflowStatus::New).apply(client.batch_update_findings().confidence(3));
    let input = b.as_input();
    assert_eq!(input.get_confidence(), &Some(3));
    assert_eq!(input.get_note(), &None);
    assert_eq!(input.get_types(), &None);
    assert_eq!(
        input.get_workflow().as_ref().and_then(|w| w.status()),
        Some(&sdk::WorkflowStatus::New)
    );

    // Every enum value maps to the SDK value of the same name.
    for v in VerificationState::ALL {
        let d = Decision {
            verification_state: Some(*v),
            ..Decision::default()
        };
        let b = d.apply(client.batch_update_findings());
        assert_eq!(
            b.as_input()
                .get_verification_state()
                .as_ref()
                .map(|s| s.as_str()),
            Some(v.as_str())
        );
    }
    for s in WorkflowStatus::ALL {
        let b = status(*s).apply(client.batch_update_findings());
        let got = b.as_input().get_workflow().clone();
        assert_eq!(
            got.and_then(|w| w.status().map(|s| s.as_str().to_owned())),
            Some(s.as_str().to_owned())
        );
    }
    for l in SeverityLabel::ALL {
        let b = label(*l).apply(client.batch_update_findings());
        let got = b.as_input().get_severity().clone();
        assert_eq!(
            got.and_then(|s| s.label().map(|l| l.as_str().to_owned())),
            Some(l.as_str().to_owned())
        );
    }
}

// --- Properties --------------------------------------------------------------

fn arb_key() -> impl Strategy<Value = FindingKey> {
    (any::<String>(), any::<String>()).prop_map(|(id, arn)| FindingKey::new(id, arn))
}

prop_compose! {
    fn arb_decision()(
        note in proptest::option::of((any::<String>(), any::<String>())),
        severity in proptest::option::of((
            proptest::option::of(proptest::sample::select(SeverityLabel::ALL)),
            proptest::option::of(any::<i32>()),
            proptest::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
        )),
        verification_state in proptest::option::of(proptest::sample::select(VerificationState::ALL)),
        confidence in proptest::option::of(any::<i32>()),
        criticality in proptest::option::of(any::<i32>()),
        types in proptest::option::of(proptest::collection::vec(any::<String>(), 0..4)),
        user_defined_fields in proptest::option::of(proptest::collection::btree_map(any::<String>(), any::<String>(), 0..4)),
        workflow in proptest::option::of(proptest::sample::select(WorkflowStatus::ALL)),
        related_findings in proptest::option::of(proptest::collection::vec(arb_key(), 0..4)),
    ) -> Decision {
        Decision {
            note: note.map(|(text, updated_by)| NoteUpdate { text, updated_by }),
            severity: severity.map(|(label, normalized, product)| SeverityUpdate {
                label,
                normalized,
                product: product.and_then(FiniteF64::new),
            }),
            verification_state,
            confidence,
            criticality,
            types,
            user_defined_fields,
            workflow: workflow.map(|status| WorkflowUpdate { status }),
            related_findings,
            ..Decision::default()
        }
    }
}

/// A string the service accepts: starts with a visible character.
fn arb_text(max_more: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9]\\PC{{0,{max_more}}}"))
        .expect("a valid regex")
}

prop_compose! {
    fn arb_valid_decision()(
        note in proptest::option::of((arb_text(60), arb_text(20))),
        severity in proptest::option::of((
            proptest::option::of(0i32..=100),
            any::<bool>(),
            proptest::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
        )),
        verification_state in proptest::option::of(proptest::sample::select(VerificationState::ALL)),
        confidence in proptest::option::of(0i32..=100),
        criticality in proptest::option::of(0i32..=100),
        types in proptest::option::of(proptest::collection::vec(
            "[A-Za-z][A-Za-z0-9 ]{0,8}(/[A-Za-z][A-Za-z0-9 :.-]{0,8}){0,2}", 0..5)),
        user_defined_fields in proptest::option::of(proptest::collection::btree_map(arb_text(20), arb_text(40), 0..5)),
        workflow in proptest::option::of(proptest::sample::select(WorkflowStatus::ALL)),
        related_findings in proptest::option::of(proptest::collection::vec(
            (arb_text(30), arb_text(30)).prop_map(|(id, arn)| FindingKey::new(id, arn)), 1..=10)),
    ) -> Decision {
        Decision {
            note: note.map(|(text, updated_by)| NoteUpdate { text, updated_by }),
            // Label, when given with Normalized, is the one Normalized maps to.
            severity: severity
                .map(|(normalized, with_label, product)| SeverityUpdate {
                    label: normalized
                        .and_then(SeverityLabel::from_normalized)
                        .filter(|_| with_label)
                        .or(if with_label && normalized.is_none() { Some(SeverityLabel::High) } else { None }),
                    normalized,
                    product: product.and_then(FiniteF64::new),
                })
                .filter(|s| s.label.is_some() || s.normalized.is_some() || s.product.is_some()),
            verification_state,
            confidence,
            criticality,
            types,
            user_defined_fields,
            workflow: workflow.map(|status| WorkflowUpdate { status }),
            related_findings,
            ..Decision::default()
        }
    }
}

/// Renders a string as a double-quoted shorthand value.
fn shorthand_quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

proptest! {
    #[test]
    fn decision_json_round_trips(d in arb_decision()) {
        let json = serde_json::to_string(&d).unwrap();
        let back: Decision = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &d);
    }

    /// What `--cli-input-json` accepts is what `Decision` serializes to: a
    /// valid decision comes back unchanged.
    #[test]
    fn valid_decisions_round_trip_through_cli_input_json(d in arb_valid_decision()) {
        let rules = Rules::default().allow_unknown_type_namespaces(true);
        // An empty decision is valid input for --cli-input-json (flags may add to it).
        if let Err(e) = d.validate_with(&rules).or_else(|e| if d.is_empty() { Ok(()) } else { Err(e) }) {
            return Err(TestCaseError::fail(format!("generator made an invalid decision: {e}")));
        }
        let json = serde_json::to_string(&d).unwrap();
        let back = parse_cli_input_json_with(&json, &rules).unwrap();
        prop_assert_eq!(back.decision, d);
    }

    /// Any note text and author survive double-quoted shorthand.
    #[test]
    fn quoted_shorthand_note_round_trips(text in "\\PC{0,80}", by in "\\PC{0,20}") {
        let text = format!("t{text}");
        let by = format!("u{by}");
        let value = format!("Text={},UpdatedBy={}", shorthand_quoted(&text), shorthand_quoted(&by));
        let d = parse_flag(DecisionField::Note, &[value]).unwrap();
        prop_assert_eq!(d, note(&text, &by));
    }

    /// Shorthand user-defined fields with simple keys and quoted values round-trip.
    #[test]
    fn quoted_shorthand_fields_round_trip(
        map in proptest::collection::btree_map("[A-Za-z0-9_.:/#-]{1,12}", arb_text(30), 1..6)
    ) {
        let value = map
            .iter()
            .map(|(k, v)| format!("{k}={}", shorthand_quoted(v)))
            .collect::<Vec<_>>()
            .join(",");
        let d = parse_flag(DecisionField::UserDefinedFields, &[value]).unwrap();
        prop_assert_eq!(d.user_defined_fields, Some(map));
    }

    /// Nothing panics on arbitrary flag values, and errors always name the flag.
    #[test]
    fn arbitrary_values_never_panic(value in any::<String>(), i in 0usize..9) {
        let field = DecisionField::ALL[i];
        if let Err(e) = parse_flag(field, &[value]) {
            prop_assert!(e.to_string().starts_with(field.flag()));
        }
    }
}

// --- On the wire ---------------------------------------------------------------

/// Reads one HTTP/1.1 request from `stream` and returns its body; answers 200
/// with an empty BatchUpdateFindings response.
async fn capture_one_request(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the headers ended");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    assert!(head.starts_with("patch /findings/batchupdate "), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("a content-length header");
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the body ended");
        buf.extend_from_slice(&chunk[..n]);
    }
    let reply = r#"{"ProcessedFindings":[],"UnprocessedFindings":[]}"#;
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-amzn-requestid: test\r\ncontent-length: {}\r\n\r\n{reply}",
        reply.len()
    );
    stream.write_all(response.as_bytes()).await.unwrap();
    buf[header_end..header_end + length].to_vec()
}

/// Numbers compared by value: the SDK may write `3` where serde_json writes `3.0`.
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => x.as_f64() == y.as_f64(),
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

/// `serde_json::to_value(&decision)` is what the real SDK puts in the request
/// body next to `FindingIdentifiers`, sent over loopback HTTP.
#[tokio::test]
async fn the_sdk_sends_the_serialized_decision() {
    use aws_sdk_securityhub::config::{BehaviorVersion, Credentials, Region};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = aws_sdk_securityhub::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-west-1"))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(Credentials::new(
            "AKIDTEST",
            "test-secret",
            None,
            None,
            "test",
        ))
        .retry_config(aws_sdk_securityhub::config::retry::RetryConfig::disabled())
        .build();
    let client = aws_sdk_securityhub::Client::from_conf(config);

    let full = parse_cli_input_json(&format!(
        r#"{{"Confidence": 80, "Criticality": 0,
            "Note": {{"Text": "Known issue, \"quoted\" and ünïcode", "UpdatedBy": "user1"}},
            "RelatedFindings": [{{"Id": "{EXAMPLE_ID_3}", "ProductArn": "{EXAMPLE_PRODUCT}"}}],
            "Severity": {{"Label": "LOW", "Normalized": 1, "Product": 3}},
            "Types": ["Software and Configuration Checks/Vulnerabilities/CVE"],
            "UserDefinedFields": {{"reviewedByCio": "true", "ticket": "SEC-1"}},
            "VerificationState": "TRUE_POSITIVE",
            "Workflow": {{"Status": "RESOLVED"}}}}"#
    ))
    .unwrap()
    .decision;
    let decisions = [
        full,
        status(WorkflowStatus::Suppressed),
        flag(DecisionField::Severity, &["Product=0.1"]),
    ];
    for decision in decisions {
        let request = decision
            .apply(client.batch_update_findings())
            .finding_identifiers(
                aws_sdk_securityhub::types::AwsSecurityFindingIdentifier::builder()
                    .id(EXAMPLE_ID_1)
                    .product_arn(EXAMPLE_PRODUCT)
                    .build(),
            );
        let server = async {
            let (mut stream, _) = listener.accept().await.unwrap();
            capture_one_request(&mut stream).await
        };
        let (sent, body) = tokio::join!(request.send(), server);
        assert!(sent.is_ok(), "{sent:?}");
        let mut body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let ids = body
            .as_object_mut()
            .and_then(|m| m.remove("FindingIdentifiers"));
        assert_eq!(
            ids,
            Some(serde_json::json!([{"Id": EXAMPLE_ID_1, "ProductArn": EXAMPLE_PRODUCT}]))
        );
        let ours = serde_json::to_value(&decision).unwrap();
        assert!(same_json(&body, &ours), "sent {body}\nours {ours}");
    }
}

// ------------------------------------------------- the new Security Hub (V2)

#[test]
fn v2_flags_parse_validate_and_serialize_as_the_v2_request_members() {
    let status = parse_flag(DecisionField::StatusId, &["3".into()]).unwrap();
    assert_eq!(status.status_id, Some(3));
    assert!(status.is_v2() && !status.is_v1());
    let sev = parse_flag(DecisionField::SeverityId, &[" 99\n".into()]).unwrap();
    assert_eq!(sev.severity_id, Some(99));
    let comment = parse_flag(DecisionField::Comment, &["accepted risk".into()]).unwrap();
    // Only the field asked for: no StatusId beside a comment.
    assert_eq!(
        serde_json::to_string(&comment).unwrap(),
        r#"{"Comment":"accepted risk"}"#
    );
    for (field, bad, fragment) in [
        (DecisionField::StatusId, "6", "must be one of 0 (Unknown)"),
        (DecisionField::StatusId, "-1", "must be one of"),
        (DecisionField::SeverityId, "7", "6 (Fatal), 99 (Other)"),
        (DecisionField::SeverityId, "high", "--severity-id"),
        (DecisionField::Comment, "  ", "non-whitespace"),
    ] {
        let e = parse_flag(field, &[bad.into()]).unwrap_err().to_string();
        assert!(e.contains(fragment), "{field} {bad:?}: {e}");
    }
    let long = "x".repeat(COMMENT_MAX_CHARS + 1);
    let e = parse_flag(DecisionField::Comment, &[long])
        .unwrap_err()
        .to_string();
    assert!(e.contains("512"), "{e}");
    assert!(parse_flag(DecisionField::Comment, &["é".repeat(512)]).is_ok());
    for id in STATUS_IDS {
        assert!(parse_flag(DecisionField::StatusId, &[id.to_string()]).is_ok());
    }
    for id in SEVERITY_IDS {
        assert!(parse_flag(DecisionField::SeverityId, &[id.to_string()]).is_ok());
    }
}

#[test]
fn a_decision_mixing_the_two_operations_is_refused_saying_why() {
    let mut d = parse_flag(DecisionField::Workflow, &["Status=RESOLVED".into()]).unwrap();
    d.merge_from(parse_flag(DecisionField::StatusId, &["4".into()]).unwrap());
    let e = d.validate().unwrap_err();
    assert!(matches!(
        e.kind(),
        DecisionErrorKind::MixedOperations { .. }
    ));
    let text = e.to_string();
    for fragment in [
        "--workflow",
        "--status-id",
        "BatchUpdateFindingsV2",
        "cannot be mixed",
    ] {
        assert!(text.contains(fragment), "{text}");
    }
    assert!(check_not_mixed(&d).is_err());
    assert!(check_not_mixed(&Decision::default()).is_ok());
}

#[test]
fn cli_input_json_takes_the_batch_update_findings_v2_document() {
    let doc = r#"{
        "FindingIdentifiers": [{"CloudAccountUid": "111122223333", "FindingInfoUid": "f-1",
            "MetadataProductUid": "arn:aws:securityhub:us-east-1::productv2/aws/guardduty"}],
        "MetadataUids": ["m-1", "m-2"],
        "Comment": "ok", "SeverityId": 2, "StatusId": 99
    }"#;
    let input = parse_cli_input_json(doc).unwrap();
    assert_eq!(
        input.finding_identifiers,
        vec![FindingKey::ocsf(
            "111122223333",
            "f-1",
            "arn:aws:securityhub:us-east-1::productv2/aws/guardduty"
        )]
    );
    assert_eq!(
        input.metadata_uids,
        vec!["m-1".to_string(), "m-2".to_string()]
    );
    let d = &input.decision;
    assert_eq!(
        (d.comment.as_deref(), d.severity_id, d.status_id),
        (Some("ok"), Some(2), Some(99))
    );
    // Strictly typed, as botocore checks JSON.
    let e = parse_cli_input_json(r#"{"StatusId": "3"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("StatusId"), "{e}");
    let e = parse_cli_input_json(
        r#"{"StatusId": 3, "FindingIdentifiers": [{"Id": "a", "ProductArn": "p"}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("CloudAccountUid"),
        "a V2 document's identifiers are OCSF: {e}"
    );
    let e = parse_cli_input_json(r#"{"SeverityId": 8}"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--cli-input-json (SeverityId)") || e.contains("SeverityId"),
        "{e}"
    );
}
