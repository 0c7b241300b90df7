//! `GetFindingsV2` filters (`OcsfFindingFilters`), compiled once per request.
//!
//! Semantics: a `CompositeFilter` combines each of its string and number
//! filters and each of its `NestedCompositeFilters` with its `Operator`
//! (default `AND`); the top-level `CompositeFilters` are combined with
//! `CompositeOperator` (default `AND`). An empty composite matches
//! everything. A string comparison on a field the finding lacks fails when
//! positive (`EQUALS`, `PREFIX`, `CONTAINS`) and passes when negative; a
//! number filter on a missing field fails. Limits (API reference): 10
//! composite filters, 20 filters of each type per composite, 3 levels.
//! Unsupported fields, comparisons and filter types are refused with a 400
//! that says so, never silently ignored.

use serde_json::Value;

use super::ocsf::Record;
use super::validate::Invalid;

/// Most top-level composite filters.
const MAX_COMPOSITES: usize = 10;
/// Most filters of one type in one composite.
const MAX_PER_TYPE: usize = 20;
/// Most levels of composite nesting (top level = 1).
const MAX_DEPTH: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StrField {
    MetadataUid,
    FindingInfoUid,
    ProductUid,
    ProductName,
    AccountUid,
    Region,
    Status,
    Severity,
    Comment,
    ComplianceStatus,
    ComplianceControl,
    Title,
}

const STR_FIELDS: &[(&str, StrField)] = &[
    ("metadata.uid", StrField::MetadataUid),
    ("finding_info.uid", StrField::FindingInfoUid),
    ("metadata.product.uid", StrField::ProductUid),
    ("metadata.product.name", StrField::ProductName),
    ("cloud.account.uid", StrField::AccountUid),
    ("cloud.region", StrField::Region),
    ("status", StrField::Status),
    ("severity", StrField::Severity),
    ("comment", StrField::Comment),
    ("compliance.status", StrField::ComplianceStatus),
    ("compliance.control", StrField::ComplianceControl),
    ("finding_info.title", StrField::Title),
];

impl StrField {
    fn get(self, r: &Record) -> Option<&str> {
        match self {
            StrField::MetadataUid => Some(&r.metadata_uid),
            StrField::FindingInfoUid => Some(&r.triple.finding_info_uid),
            StrField::ProductUid => Some(&r.triple.metadata_product_uid),
            StrField::ProductName => r.product_name.as_deref(),
            StrField::AccountUid => Some(&r.triple.cloud_account_uid),
            StrField::Region => Some(&r.region),
            StrField::Status => r.status.as_deref(),
            StrField::Severity => r.severity.as_deref(),
            StrField::Comment => r.comment.as_deref(),
            StrField::ComplianceStatus => r.compliance_status.as_deref(),
            StrField::ComplianceControl => r.compliance_control.as_deref(),
            StrField::Title => r.title.as_deref(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NumField {
    StatusId,
    SeverityId,
}

const NUM_FIELDS: &[(&str, NumField)] = &[
    ("status_id", NumField::StatusId),
    ("severity_id", NumField::SeverityId),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Equals,
    NotEquals,
    Prefix,
    PrefixNotEquals,
    Contains,
    NotContains,
}

#[derive(Debug)]
enum Cond {
    Str {
        field: StrField,
        cmp: Cmp,
        value: String,
    },
    Num {
        field: NumField,
        bounds: [Option<f64>; 5], // Eq, Gt, Gte, Lt, Lte
    },
}

impl Cond {
    fn matches(&self, r: &Record) -> bool {
        match self {
            Cond::Str { field, cmp, value } => {
                let Some(v) = field.get(r) else {
                    return matches!(
                        cmp,
                        Cmp::NotEquals | Cmp::PrefixNotEquals | Cmp::NotContains
                    );
                };
                match cmp {
                    Cmp::Equals => v == value,
                    Cmp::NotEquals => v != value,
                    Cmp::Prefix => v.starts_with(value.as_str()),
                    Cmp::PrefixNotEquals => !v.starts_with(value.as_str()),
                    Cmp::Contains => v.contains(value.as_str()),
                    Cmp::NotContains => !v.contains(value.as_str()),
                }
            }
            Cond::Num { field, bounds } => {
                let v = match field {
                    NumField::StatusId => r.status_id,
                    NumField::SeverityId => r.severity_id,
                };
                let Some(v) = v.map(|x| x as f64) else {
                    return false;
                };
                let [eq, gt, gte, lt, lte] = *bounds;
                eq.is_none_or(|b| v == b)
                    && gt.is_none_or(|b| v > b)
                    && gte.is_none_or(|b| v >= b)
                    && lt.is_none_or(|b| v < b)
                    && lte.is_none_or(|b| v <= b)
            }
        }
    }
}

#[derive(Debug)]
struct Composite {
    op: Op,
    conds: Vec<Cond>,
    nested: Vec<Composite>,
}

impl Composite {
    fn matches(&self, r: &Record) -> bool {
        let mut results = self
            .conds
            .iter()
            .map(|c| c.matches(r))
            .chain(self.nested.iter().map(|n| n.matches(r)));
        match self.op {
            Op::And => results.all(|x| x),
            Op::Or => {
                if self.conds.is_empty() && self.nested.is_empty() {
                    true
                } else {
                    results.any(|x| x)
                }
            }
        }
    }
}

/// A compiled `Filters` document.
#[derive(Debug)]
pub(crate) struct OcsfFilter {
    op: Op,
    composites: Vec<Composite>,
}

fn bad<T>(m: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid(m.into()))
}

fn op_of(v: Option<&Value>, at: &str) -> Result<Op, Invalid> {
    match v {
        None | Some(Value::Null) => Ok(Op::And),
        Some(Value::String(s)) if s == "AND" => Ok(Op::And),
        Some(Value::String(s)) if s == "OR" => Ok(Op::Or),
        Some(other) => bad(format!("{at}: must be AND or OR, got {other}")),
    }
}

fn list<'a>(v: Option<&'a Value>, at: &str) -> Result<&'a [Value], Invalid> {
    match v {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => bad(format!("{at}: expected a list, got {other}")),
    }
}

fn str_member<'a>(o: &'a Value, k: &str, at: &str) -> Result<&'a str, Invalid> {
    match o.get(k) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => bad(format!("{at}.{k}: required member is missing")),
        Some(other) => bad(format!("{at}.{k}: expected a string, got {other}")),
    }
}

fn supported(fields: &[(&str, impl Copy)]) -> String {
    fields
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn compile_composite(v: &Value, at: &str, depth: usize) -> Result<Composite, Invalid> {
    if depth > MAX_DEPTH {
        return bad(format!(
            "{at}: composite filters nest at most {MAX_DEPTH} levels"
        ));
    }
    if !v.is_object() {
        return bad(format!("{at}: expected an object, got {v}"));
    }
    for unsupported in ["DateFilters", "BooleanFilters", "MapFilters", "IpFilters"] {
        if !list(v.get(unsupported), &format!("{at}.{unsupported}"))?.is_empty() {
            return bad(format!(
                "{at}.{unsupported}: the emulator does not support this filter type \
                 (it supports StringFilters and NumberFilters)"
            ));
        }
    }
    let mut conds = Vec::new();
    let strings = list(v.get("StringFilters"), &format!("{at}.StringFilters"))?;
    let numbers = list(v.get("NumberFilters"), &format!("{at}.NumberFilters"))?;
    for (name, l) in [("StringFilters", strings), ("NumberFilters", numbers)] {
        if l.len() > MAX_PER_TYPE {
            return bad(format!(
                "{at}.{name}: at most {MAX_PER_TYPE} filters are allowed, got {}",
                l.len()
            ));
        }
    }
    for (i, f) in strings.iter().enumerate() {
        let at = format!("{at}.StringFilters[{i}]");
        let name = str_member(f, "FieldName", &at)?;
        let Some(&(_, field)) = STR_FIELDS.iter().find(|(n, _)| *n == name) else {
            return bad(format!(
                "{at}.FieldName: {name:?} is not supported by the emulator (supported: {})",
                supported(STR_FIELDS)
            ));
        };
        let Some(filter) = f.get("Filter").filter(|x| x.is_object()) else {
            return bad(format!("{at}.Filter: required member is missing"));
        };
        let cmp = match str_member(filter, "Comparison", &format!("{at}.Filter"))? {
            "EQUALS" => Cmp::Equals,
            "NOT_EQUALS" => Cmp::NotEquals,
            "PREFIX" => Cmp::Prefix,
            "PREFIX_NOT_EQUALS" => Cmp::PrefixNotEquals,
            "CONTAINS" => Cmp::Contains,
            "NOT_CONTAINS" => Cmp::NotContains,
            "CONTAINS_WORD" => {
                return bad(format!(
                    "{at}.Filter.Comparison: the emulator does not support CONTAINS_WORD"
                ));
            }
            other => {
                return bad(format!(
                    "{at}.Filter.Comparison: {other:?} is not a comparison"
                ));
            }
        };
        let value = str_member(filter, "Value", &format!("{at}.Filter"))?.to_owned();
        conds.push(Cond::Str { field, cmp, value });
    }
    for (i, f) in numbers.iter().enumerate() {
        let at = format!("{at}.NumberFilters[{i}]");
        let name = str_member(f, "FieldName", &at)?;
        let Some(&(_, field)) = NUM_FIELDS.iter().find(|(n, _)| *n == name) else {
            return bad(format!(
                "{at}.FieldName: {name:?} is not supported by the emulator (supported: {})",
                supported(NUM_FIELDS)
            ));
        };
        let Some(filter) = f.get("Filter").filter(|x| x.is_object()) else {
            return bad(format!("{at}.Filter: required member is missing"));
        };
        let mut bounds = [None; 5];
        for (slot, k) in bounds.iter_mut().zip(["Eq", "Gt", "Gte", "Lt", "Lte"]) {
            *slot = match filter.get(k) {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => n.as_f64(),
                Some(other) => {
                    return bad(format!("{at}.Filter.{k}: expected a number, got {other}"));
                }
            };
        }
        if bounds.iter().all(Option::is_none) {
            return bad(format!(
                "{at}.Filter: one of Eq, Gt, Gte, Lt, Lte is required"
            ));
        }
        conds.push(Cond::Num { field, bounds });
    }
    let nested_list = list(
        v.get("NestedCompositeFilters"),
        &format!("{at}.NestedCompositeFilters"),
    )?;
    let mut nested = Vec::with_capacity(nested_list.len());
    for (i, n) in nested_list.iter().enumerate() {
        nested.push(compile_composite(
            n,
            &format!("{at}.NestedCompositeFilters[{i}]"),
            depth + 1,
        )?);
    }
    Ok(Composite {
        op: op_of(v.get("Operator"), &format!("{at}.Operator"))?,
        conds,
        nested,
    })
}

impl OcsfFilter {
    /// Compiles `Filters` (absent: everything matches).
    pub(crate) fn compile(filters: Option<&Value>) -> Result<OcsfFilter, Invalid> {
        let Some(f) = filters else {
            return Ok(OcsfFilter {
                op: Op::And,
                composites: Vec::new(),
            });
        };
        let items = list(f.get("CompositeFilters"), "Filters.CompositeFilters")?;
        if items.len() > MAX_COMPOSITES {
            return bad(format!(
                "Filters.CompositeFilters: at most {MAX_COMPOSITES} are allowed, got {}",
                items.len()
            ));
        }
        let mut composites = Vec::with_capacity(items.len());
        for (i, c) in items.iter().enumerate() {
            composites.push(compile_composite(
                c,
                &format!("Filters.CompositeFilters[{i}]"),
                1,
            )?);
        }
        Ok(OcsfFilter {
            op: op_of(f.get("CompositeOperator"), "Filters.CompositeOperator")?,
            composites,
        })
    }

    pub(crate) fn matches(&self, r: &Record) -> bool {
        match self.op {
            Op::And => self.composites.iter().all(|c| c.matches(r)),
            Op::Or => self.composites.is_empty() || self.composites.iter().any(|c| c.matches(r)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(status_id: i64, account: &str, comment: Option<&str>) -> Record {
        let mut d = json!({
            "metadata": {"uid": format!("m-{account}-{status_id}"), "product": {"uid": "arn:aws:securityhub:us-east-1::productv2/aws/guardduty"}},
            "finding_info": {"uid": "f"},
            "cloud": {"account": {"uid": account}, "region": "us-east-1"},
            "status_id": status_id, "severity_id": 4,
        });
        if let Some(c) = comment {
            d["comment"] = json!(c);
        }
        Record::from_doc(d.as_object().unwrap()).unwrap()
    }

    fn f(v: Value) -> OcsfFilter {
        OcsfFilter::compile(Some(&v)).unwrap()
    }

    fn s(field: &str, cmp: &str, value: &str) -> Value {
        json!({"FieldName": field, "Filter": {"Comparison": cmp, "Value": value}})
    }

    #[test]
    fn and_or_and_nesting() {
        let new_a = rec(1, "A", None);
        let resolved_b = rec(4, "B", Some("fixed in CHG-1"));
        let either = f(
            json!({"CompositeFilters": [{"Operator": "OR", "StringFilters": [
            s("status", "EQUALS", "New"), s("comment", "CONTAINS", "CHG-")]}]}),
        );
        assert!(either.matches(&new_a) && either.matches(&resolved_b));
        let both = f(json!({"CompositeFilters": [{"StringFilters": [
            s("cloud.account.uid", "EQUALS", "B"), s("comment", "PREFIX", "fixed")]}]}));
        assert!(!both.matches(&new_a) && both.matches(&resolved_b));
        // missing comment: negative passes, positive fails
        let no_chg = f(
            json!({"CompositeFilters": [{"StringFilters": [s("comment", "NOT_CONTAINS", "CHG")]}]}),
        );
        assert!(no_chg.matches(&new_a) && !no_chg.matches(&resolved_b));
        let numbers = f(json!({"CompositeFilters": [{"NumberFilters": [
            {"FieldName": "status_id", "Filter": {"Gte": 2, "Lt": 5}},
            {"FieldName": "severity_id", "Filter": {"Eq": 4}}]}]}));
        assert!(!numbers.matches(&new_a) && numbers.matches(&resolved_b));
        let top_or = f(json!({"CompositeOperator": "OR", "CompositeFilters": [
            {"StringFilters": [s("cloud.account.uid", "EQUALS", "A")]},
            {"NestedCompositeFilters": [{"StringFilters": [s("cloud.region", "EQUALS", "us-east-1")],
                "NumberFilters": [{"FieldName": "status_id", "Filter": {"Eq": 4}}]}]}]}));
        assert!(top_or.matches(&new_a) && top_or.matches(&resolved_b));
        let top_and = f(json!({"CompositeFilters": [
            {"StringFilters": [s("cloud.account.uid", "EQUALS", "A")]},
            {"StringFilters": [s("metadata.product.uid", "PREFIX", "arn:aws:securityhub:")]}]}));
        assert!(top_and.matches(&new_a) && !top_and.matches(&resolved_b));
        assert!(OcsfFilter::compile(None).unwrap().matches(&new_a));
    }

    #[test]
    fn refusals_name_the_member() {
        let err = |v: Value| OcsfFilter::compile(Some(&v)).unwrap_err().0;
        assert!(err(json!({"CompositeFilters": [{"StringFilters": [s("resources.uid", "EQUALS", "x")]}]}))
            .starts_with("Filters.CompositeFilters[0].StringFilters[0].FieldName: \"resources.uid\" is not supported"));
        assert!(err(json!({"CompositeFilters": [{"StringFilters": [s("status", "CONTAINS_WORD", "x")]}]}))
            .contains("CONTAINS_WORD"));
        assert!(err(json!({"CompositeFilters": [{"DateFilters": [{"FieldName": "finding_info.modified_time_dt"}]}]}))
            .contains("DateFilters"));
        let deep = json!({"NestedCompositeFilters": [{"NestedCompositeFilters": [{"NestedCompositeFilters": [{}]}]}]});
        assert!(err(json!({"CompositeFilters": [deep]})).contains("nest at most 3"));
        let eleven: Vec<Value> = (0..11).map(|_| json!({})).collect();
        assert!(err(json!({"CompositeFilters": eleven})).contains("at most 10"));
        let many: Vec<Value> = (0..21).map(|_| s("status", "EQUALS", "New")).collect();
        assert!(err(json!({"CompositeFilters": [{"StringFilters": many}]})).contains("at most 20"));
        assert!(err(json!({"CompositeOperator": "XOR"})).contains("AND or OR"));
        assert!(err(json!({"CompositeFilters": [{"NumberFilters": [{"FieldName": "status_id", "Filter": {}}]}]}))
            .contains("one of Eq"));
    }
}
