//! `GetFindings` string filters (docs/service-facts.md §6): compiles the `Filters` member
//! into a predicate over a finding's indexed fields.
//!
//! Supports the string filters `Id`, `ProductArn`, `AwsAccountId`, `Region`,
//! `WorkflowStatus`, `SeverityLabel`, `RecordState` and `ComplianceStatus`
//! with `EQUALS`, `NOT_EQUALS`, `PREFIX` and `PREFIX_NOT_EQUALS`, the four
//! comparisons the API reference says `GetFindings` takes. `CONTAINS`,
//! `NOT_CONTAINS` and `CONTAINS_WORD` are refused with an
//! `InvalidInputException` (400) saying where they work instead (automation
//! rules, the V2 query operations), like the service (its exact message is
//! UNVERIFIED). Any other non-empty filter is rejected with a clear
//! `InvalidInputException` rather than silently ignored, so a test never
//! believes it filtered when it did not.

use serde_json::{Map, Value};

use super::validate::InvalidInput;

/// The filterable fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Id,
    ProductArn,
    AwsAccountId,
    Region,
    WorkflowStatus,
    SeverityLabel,
    RecordState,
    ComplianceStatus,
}

const FIELDS: &[(&str, Field)] = &[
    ("Id", Field::Id),
    ("ProductArn", Field::ProductArn),
    ("AwsAccountId", Field::AwsAccountId),
    ("Region", Field::Region),
    ("WorkflowStatus", Field::WorkflowStatus),
    ("SeverityLabel", Field::SeverityLabel),
    ("RecordState", Field::RecordState),
    ("ComplianceStatus", Field::ComplianceStatus),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Equals,
    Prefix,
    NotEquals,
    PrefixNotEquals,
}

impl Cmp {
    fn parse(s: &str) -> Option<Cmp> {
        Some(match s {
            "EQUALS" => Cmp::Equals,
            "PREFIX" => Cmp::Prefix,
            "NOT_EQUALS" => Cmp::NotEquals,
            "PREFIX_NOT_EQUALS" => Cmp::PrefixNotEquals,
            _ => return None,
        })
    }

    fn is_negative(self) -> bool {
        matches!(self, Cmp::NotEquals | Cmp::PrefixNotEquals)
    }

    /// Whether `value` passes this comparison (for a negative one: whether
    /// it does not match the excluded pattern).
    fn test(self, value: &str, operand: &str) -> bool {
        match self {
            Cmp::Equals => value == operand,
            Cmp::Prefix => value.starts_with(operand),
            Cmp::NotEquals => value != operand,
            Cmp::PrefixNotEquals => !value.starts_with(operand),
        }
    }
}

/// A finding's filterable values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FilterView<'a> {
    pub id: &'a str,
    pub product_arn: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub workflow_status: &'a str,
    pub severity_label: Option<&'a str>,
    pub record_state: Option<&'a str>,
    pub compliance_status: Option<&'a str>,
}

impl<'a> FilterView<'a> {
    fn get(&self, f: Field) -> Option<&'a str> {
        match f {
            Field::Id => Some(self.id),
            Field::ProductArn => Some(self.product_arn),
            Field::AwsAccountId => Some(self.account),
            Field::Region => Some(self.region),
            Field::WorkflowStatus => Some(self.workflow_status),
            Field::SeverityLabel => self.severity_label,
            Field::RecordState => self.record_state,
            Field::ComplianceStatus => self.compliance_status,
        }
    }
}

#[derive(Debug)]
struct FieldFilter {
    field: Field,
    positive: Vec<(Cmp, String)>,
    negative: Vec<(Cmp, String)>,
}

/// A compiled `Filters` member. The default matches everything.
#[derive(Debug, Default)]
pub(crate) struct FindingFilter {
    fields: Vec<FieldFilter>,
}

impl FindingFilter {
    /// Compiles the `Filters` member of a `GetFindings` request.
    pub(crate) fn compile(filters: Option<Map<String, Value>>) -> Result<Self, InvalidInput> {
        let Some(filters) = filters else {
            return Ok(FindingFilter::default());
        };
        let mut out = Vec::new();
        for (name, list) in filters {
            let list = match list {
                Value::Null => continue,
                Value::Array(a) if a.is_empty() => continue,
                Value::Array(a) => a,
                other => {
                    return Err(InvalidInput(format!(
                        "Filters.{name}: expected an array of filters, got {other}"
                    )));
                }
            };
            let Some(&(_, field)) = FIELDS.iter().find(|(n, _)| *n == name) else {
                return Err(InvalidInput(format!(
                    "Filters.{name}: this filter is not supported by the emulator (supported: {})",
                    FIELDS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            if list.len() > 20 {
                return Err(InvalidInput(format!(
                    "Filters.{name}: at most 20 values per attribute, got {}",
                    list.len()
                )));
            }
            let mut ff = FieldFilter {
                field,
                positive: Vec::new(),
                negative: Vec::new(),
            };
            for (i, item) in list.into_iter().enumerate() {
                let path = format!("Filters.{name}[{i}]");
                let Value::Object(mut item) = item else {
                    return Err(InvalidInput(format!("{path}: expected an object")));
                };
                let value = match item.remove("Value") {
                    Some(Value::String(s)) => s,
                    Some(_) => {
                        return Err(InvalidInput(format!("{path}.Value: expected a string")));
                    }
                    None => return Err(InvalidInput(format!("{path}.Value: required"))),
                };
                let cmp = match item.remove("Comparison") {
                    Some(Value::String(s))
                        if matches!(s.as_str(), "CONTAINS" | "NOT_CONTAINS" | "CONTAINS_WORD") =>
                    {
                        return Err(InvalidInput(format!(
                            "{path}.Comparison: {s} is not valid in GetFindings (CONTAINS and \
                             NOT_CONTAINS work only in automation rules, CONTAINS_WORD only in \
                             the V2 query operations); use EQUALS, PREFIX, NOT_EQUALS or \
                             PREFIX_NOT_EQUALS"
                        )));
                    }
                    Some(Value::String(s)) => Cmp::parse(&s).ok_or_else(|| {
                        InvalidInput(format!(
                            "{path}.Comparison: {s:?} is not supported (EQUALS, NOT_EQUALS, \
                             PREFIX, PREFIX_NOT_EQUALS)"
                        ))
                    })?,
                    Some(_) => {
                        return Err(InvalidInput(format!(
                            "{path}.Comparison: expected a string"
                        )));
                    }
                    None => return Err(InvalidInput(format!("{path}.Comparison: required"))),
                };
                if cmp.is_negative() {
                    ff.negative.push((cmp, value));
                } else {
                    ff.positive.push((cmp, value));
                }
            }
            let has = |list: &[(Cmp, String)], c: Cmp| list.iter().any(|(x, _)| *x == c);
            if has(&ff.positive, Cmp::Equals)
                && (has(&ff.negative, Cmp::NotEquals) || has(&ff.negative, Cmp::PrefixNotEquals))
            {
                return Err(InvalidInput(format!(
                    "Filters.{name}: EQUALS cannot be combined with NOT_EQUALS or \
                     PREFIX_NOT_EQUALS on the same field"
                )));
            }
            out.push(ff);
        }
        if out.len() > 10 {
            return Err(InvalidInput(format!(
                "Filters: at most 10 attributes per request, got {}",
                out.len()
            )));
        }
        Ok(FindingFilter { fields: out })
    }

    /// Positive comparisons on one field are OR-ed, negative ones AND-ed,
    /// and fields AND-ed. A finding without the field (e.g. no
    /// `Compliance`) fails positive and passes negative comparisons.
    pub(crate) fn matches(&self, v: &FilterView<'_>) -> bool {
        self.fields.iter().all(|ff| {
            let value = v.get(ff.field);
            let pos = ff.positive.is_empty()
                || value.is_some_and(|x| ff.positive.iter().any(|(c, o)| c.test(x, o)));
            let neg = match value {
                None => true,
                Some(x) => ff.negative.iter().all(|(c, o)| c.test(x, o)),
            };
            pos && neg
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(v: Value) -> Result<FindingFilter, InvalidInput> {
        FindingFilter::compile(v.as_object().cloned())
    }

    fn view() -> FilterView<'static> {
        FilterView {
            id: "arn:aws:guardduty:us-east-1:111111111111:detector/d/finding/f",
            product_arn: "arn:aws:securityhub:us-east-1::product/aws/guardduty",
            account: "111111111111",
            region: "us-east-1",
            workflow_status: "NEW",
            severity_label: Some("HIGH"),
            record_state: Some("ACTIVE"),
            compliance_status: None,
        }
    }

    #[test]
    fn comparisons() {
        let yes = |f: Value| assert!(compile(f.clone()).unwrap().matches(&view()), "{f}");
        let no = |f: Value| assert!(!compile(f.clone()).unwrap().matches(&view()), "{f}");
        yes(json!({}));
        yes(json!({"Region": [{"Value": "us-east-1", "Comparison": "EQUALS"}]}));
        no(json!({"Region": [{"Value": "us-west-2", "Comparison": "EQUALS"}]}));
        yes(
            json!({"Region": [{"Value": "us-west-2", "Comparison": "EQUALS"}, {"Value": "us-east-1", "Comparison": "EQUALS"}]}),
        );
        yes(json!({"Id": [{"Value": "arn:aws:guardduty:", "Comparison": "PREFIX"}]}));
        no(json!({"Id": [{"Value": "arn:aws:securityhub:", "Comparison": "PREFIX"}]}));
        no(json!({"WorkflowStatus": [{"Value": "NEW", "Comparison": "NOT_EQUALS"}]}));
        no(
            json!({"WorkflowStatus": [{"Value": "RESOLVED", "Comparison": "NOT_EQUALS"}, {"Value": "NEW", "Comparison": "NOT_EQUALS"}]}),
        );
        yes(json!({"SeverityLabel": [{"Value": "LOW", "Comparison": "NOT_EQUALS"}]}));
        no(
            json!({"ProductArn": [{"Value": "arn:aws:securityhub:us-east-1::product/aws/g", "Comparison": "PREFIX_NOT_EQUALS"}]}),
        );
        // Absent field: positive fails, negative passes.
        no(json!({"ComplianceStatus": [{"Value": "FAILED", "Comparison": "EQUALS"}]}));
        yes(json!({"ComplianceStatus": [{"Value": "PASSED", "Comparison": "NOT_EQUALS"}]}));
        // Fields are AND-ed.
        no(
            json!({"Region": [{"Value": "us-east-1", "Comparison": "EQUALS"}], "AwsAccountId": [{"Value": "2", "Comparison": "PREFIX"}]}),
        );
        yes(
            json!({"RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}], "AwsAccountId": [{"Value": "1", "Comparison": "PREFIX"}]}),
        );
        // Empty lists are ignored, even for fields we do not support.
        yes(json!({"Title": [], "Region": null}));
    }

    #[test]
    fn rejects_what_it_cannot_do() {
        for (f, want) in [
            (
                json!({"Title": [{"Value": "x", "Comparison": "EQUALS"}]}),
                "not supported by the emulator",
            ),
            (
                json!({"Region": [{"Value": "x", "Comparison": "CONTAINS_WORD"}]}),
                "CONTAINS_WORD",
            ),
            (json!({"Region": [{"Value": "x"}]}), "Comparison: required"),
            (
                json!({"Region": [{"Comparison": "EQUALS"}]}),
                "Value: required",
            ),
            (json!({"Region": {"Value": "x"}}), "expected an array"),
            (
                json!({"Region": [{"Value": "a", "Comparison": "EQUALS"}, {"Value": "b", "Comparison": "NOT_EQUALS"}]}),
                "cannot be combined",
            ),
            (
                json!({"ProductArn": [{"Value": "guardduty", "Comparison": "CONTAINS"}]}),
                "Filters.ProductArn[0].Comparison: CONTAINS is not valid in GetFindings",
            ),
            (
                json!({"Region": [{"Value": "b", "Comparison": "NOT_CONTAINS"}]}),
                "NOT_CONTAINS is not valid in GetFindings",
            ),
            (
                json!({"Region": vec![json!({"Value": "a", "Comparison": "EQUALS"}); 21]}),
                "at most 20",
            ),
        ] {
            let err = compile(f.clone()).unwrap_err().0;
            assert!(err.contains(want), "{f}: {err}");
        }
    }
}
