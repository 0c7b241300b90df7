//! The AWS CLI `get-findings --filters` document: read (JSON or
//! `file://PATH`), checked, its relative dates made absolute once, and
//! turned into the SDK's typed `AwsSecurityFindingFilters`.
//!
//! Every filter member the SDK knows is accepted (the table below is
//! generated from aws-sdk-securityhub's serializer); an unknown member, a
//! malformed filter or a comparison `GetFindings` does not take
//! (`CONTAINS`, `NOT_CONTAINS`, `CONTAINS_WORD`: docs/service-facts.md §6) is
//! an error naming its path, before any request.

use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use aws_sdk_securityhub::types::builders::AwsSecurityFindingFiltersBuilder;
use aws_sdk_securityhub::types::{
    AwsSecurityFindingFilters, BooleanFilter, DateFilter, IpFilter, KeywordFilter, MapFilter,
    MapFilterComparison, NumberFilter, StringFilter, StringFilterComparison,
};
use serde_json::{Map, Value};

/// Reads a `--filters` value: a JSON object, or `file://PATH` holding one
/// (the AWS CLI's `{"Filters": {...}}` input document is accepted too).
pub(crate) fn load(doc: &str) -> anyhow::Result<Map<String, Value>> {
    let (text, origin) = match doc.strip_prefix("file://") {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("--filters: cannot read {path}"))?,
            path.to_owned(),
        ),
        None => (doc.to_owned(), "--filters".to_owned()),
    };
    let value: Value = serde_json::from_str(text.trim()).with_context(|| {
        format!(
            "{origin}: not a JSON filter document (the AWS CLI shorthand is not supported; \
             give the JSON, e.g. '{{\"WorkflowStatus\":[{{\"Value\":\"NEW\",\"Comparison\":\"EQUALS\"}}]}}')"
        )
    })?;
    let Value::Object(mut map) = value else {
        bail!("{origin}: the filter document must be a JSON object");
    };
    if map.len() == 1
        && let Some(Value::Object(inner)) = map.get("Filters")
    {
        map = inner.clone();
    }
    Ok(map)
}

/// Turns every `DateRange` (relative: the last N days, or older than N
/// days) into absolute `Start`/`End` dates computed from `now`, once, so
/// that every page, Region and resumed run asks the same question.
pub(crate) fn absolutize(filters: &mut Map<String, Value>, now: SystemTime) -> anyhow::Result<()> {
    for (name, list) in filters.iter_mut() {
        let Value::Array(items) = list else { continue };
        for (i, item) in items.iter_mut().enumerate() {
            let Value::Object(obj) = item else { continue };
            absolutize_one(&format!("Filters.{name}[{i}]"), obj, now)?;
        }
    }
    Ok(())
}

/// [`absolutize`] for one `DateFilter` object at `path` (shared with the
/// OCSF filters, whose date filters are the same shape).
pub(crate) fn absolutize_one(
    path: &str,
    obj: &mut Map<String, Value>,
    now: SystemTime,
) -> anyhow::Result<()> {
    let stamp = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string();
    let Some(range) = obj.remove("DateRange") else {
        return Ok(());
    };
    let path = format!("{path}.DateRange");
    let days = range
        .get("Value")
        .and_then(Value::as_u64)
        .with_context(|| format!("{path}.Value: a whole number of days is required"))?;
    match range.get("Unit").and_then(Value::as_str) {
        Some("DAYS") => {}
        other => bail!("{path}.Unit: DAYS is the only unit, got {other:?}"),
    }
    let edge = now
        .checked_sub(Duration::from_secs(days.saturating_mul(86_400)))
        .with_context(|| format!("{path}.Value: {days} days is too far back"))?;
    match range.get("Comparison").and_then(Value::as_str) {
        None | Some("WITHIN") => {
            obj.insert("Start".into(), Value::String(stamp(edge)));
            obj.insert("End".into(), Value::String(stamp(now)));
        }
        Some("OLDER_THAN") => {
            obj.insert("End".into(), Value::String(stamp(edge)));
        }
        Some(other) => bail!("{path}.Comparison: WITHIN or OLDER_THAN, got {other:?}"),
    }
    Ok(())
}

fn items<'a>(name: &str, v: &'a Value) -> anyhow::Result<&'a [Value]> {
    match v {
        Value::Array(a) => Ok(a),
        _ => bail!("Filters.{name}: expected a list of filters"),
    }
}

pub(crate) fn obj<'a>(path: &str, v: &'a Value) -> anyhow::Result<&'a Map<String, Value>> {
    let Value::Object(o) = v else {
        bail!("{path}: expected an object");
    };
    Ok(o)
}

pub(crate) fn known_members(
    path: &str,
    o: &Map<String, Value>,
    allowed: &[&str],
) -> anyhow::Result<()> {
    if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        bail!(
            "{path}: unknown member {k:?} (expected {})",
            allowed.join(", ")
        );
    }
    Ok(())
}

pub(crate) fn text(
    path: &str,
    o: &Map<String, Value>,
    key: &str,
) -> anyhow::Result<Option<String>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => bail!("{path}.{key}: expected a string"),
    }
}

fn string_filter(path: &str, v: &Value) -> anyhow::Result<StringFilter> {
    let o = obj(path, v)?;
    known_members(path, o, &["Value", "Comparison"])?;
    let value = text(path, o, "Value")?.with_context(|| format!("{path}.Value: required"))?;
    let cmp =
        text(path, o, "Comparison")?.with_context(|| format!("{path}.Comparison: required"))?;
    let comparison = match cmp.as_str() {
        "EQUALS" | "PREFIX" | "NOT_EQUALS" | "PREFIX_NOT_EQUALS" => {
            StringFilterComparison::from(cmp.as_str())
        }
        "CONTAINS" | "NOT_CONTAINS" | "CONTAINS_WORD" => bail!(
            "{path}.Comparison: {cmp} is not valid in GetFindings (only in automation rules or the \
             V2 query operations); use EQUALS, PREFIX, NOT_EQUALS or PREFIX_NOT_EQUALS"
        ),
        _ => bail!(
            "{path}.Comparison: {cmp:?} is not a comparison (EQUALS, PREFIX, NOT_EQUALS, PREFIX_NOT_EQUALS)"
        ),
    };
    Ok(StringFilter::builder()
        .value(value)
        .comparison(comparison)
        .build())
}

pub(crate) fn date_filter(path: &str, v: &Value) -> anyhow::Result<DateFilter> {
    let o = obj(path, v)?;
    known_members(path, o, &["Start", "End", "DateRange"])?;
    if o.contains_key("DateRange") {
        // `absolutize` runs first; this is for a caller that skipped it.
        bail!("{path}.DateRange: relative dates must be made absolute first");
    }
    let start = text(path, o, "Start")?;
    let end = text(path, o, "End")?;
    for (k, d) in [("Start", &start), ("End", &end)] {
        if let Some(d) = d
            && humantime::parse_rfc3339_weak(d).is_err()
        {
            bail!("{path}.{k}: {d:?} is not an ISO 8601 date-time");
        }
    }
    if start.is_none() && end.is_none() {
        bail!("{path}: give Start, End or DateRange");
    }
    Ok(DateFilter::builder().set_start(start).set_end(end).build())
}

pub(crate) fn number_filter(path: &str, v: &Value) -> anyhow::Result<NumberFilter> {
    let o = obj(path, v)?;
    known_members(path, o, &["Gte", "Lte", "Eq", "Gt", "Lt"])?;
    let n = |k: &str| -> anyhow::Result<Option<f64>> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(x)) => Ok(x.as_f64()),
            Some(_) => bail!("{path}.{k}: expected a number"),
        }
    };
    Ok(NumberFilter::builder()
        .set_gte(n("Gte")?)
        .set_lte(n("Lte")?)
        .set_eq(n("Eq")?)
        .set_gt(n("Gt")?)
        .set_lt(n("Lt")?)
        .build())
}

fn map_filter(path: &str, v: &Value) -> anyhow::Result<MapFilter> {
    let o = obj(path, v)?;
    known_members(path, o, &["Key", "Value", "Comparison"])?;
    let cmp =
        text(path, o, "Comparison")?.with_context(|| format!("{path}.Comparison: required"))?;
    if !matches!(cmp.as_str(), "EQUALS" | "NOT_EQUALS") {
        bail!("{path}.Comparison: {cmp} is not valid in GetFindings (EQUALS or NOT_EQUALS)");
    }
    Ok(MapFilter::builder()
        .set_key(text(path, o, "Key")?)
        .set_value(text(path, o, "Value")?)
        .comparison(MapFilterComparison::from(cmp.as_str()))
        .build())
}

pub(crate) fn boolean_filter(path: &str, v: &Value) -> anyhow::Result<BooleanFilter> {
    let o = obj(path, v)?;
    known_members(path, o, &["Value"])?;
    match o.get("Value") {
        Some(Value::Bool(b)) => Ok(BooleanFilter::builder().value(*b).build()),
        _ => bail!("{path}.Value: expected true or false"),
    }
}

pub(crate) fn ip_filter(path: &str, v: &Value) -> anyhow::Result<IpFilter> {
    let o = obj(path, v)?;
    known_members(path, o, &["Cidr"])?;
    let cidr = text(path, o, "Cidr")?.with_context(|| format!("{path}.Cidr: required"))?;
    Ok(IpFilter::builder().cidr(cidr).build())
}

fn keyword_filter(path: &str, v: &Value) -> anyhow::Result<KeywordFilter> {
    let o = obj(path, v)?;
    known_members(path, o, &["Value"])?;
    let value = text(path, o, "Value")?.with_context(|| format!("{path}.Value: required"))?;
    Ok(KeywordFilter::builder().value(value).build())
}

fn list<T>(
    name: &str,
    v: &Value,
    one: fn(&str, &Value) -> anyhow::Result<T>,
) -> anyhow::Result<Option<Vec<T>>> {
    let items = items(name, v)?;
    if items.len() > 20 {
        bail!(
            "Filters.{name}: at most 20 values per attribute, got {}",
            items.len()
        );
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| one(&format!("Filters.{name}[{i}]"), item))
        .collect::<anyhow::Result<Vec<T>>>()
        .map(Some)
}

macro_rules! filter_table {
    ($($kind:ident: [$(($name:literal, $setter:ident)),* $(,)?]),* $(,)?) => {
        /// Every filter member's name (tests check the table is whole).
        #[cfg(test)]
        pub(crate) const MEMBERS: &[&str] = &[$($($name,)*)*];

        /// Sets member `name` on `b` from its JSON list; `None` when the
        /// SDK has no such member.
        #[allow(deprecated)]
        fn set(
            b: AwsSecurityFindingFiltersBuilder,
            name: &str,
            v: &Value,
        ) -> Option<anyhow::Result<AwsSecurityFindingFiltersBuilder>> {
            $($(
                if name == $name {
                    return Some(filter_table!(@kind $kind, name, v).map(|l| b.$setter(l)));
                }
            )*)*
            None
        }
    };
    (@kind string, $n:expr, $v:expr) => { list($n, $v, string_filter) };
    (@kind date, $n:expr, $v:expr) => { list($n, $v, date_filter) };
    (@kind number, $n:expr, $v:expr) => { list($n, $v, number_filter) };
    (@kind map, $n:expr, $v:expr) => { list($n, $v, map_filter) };
    (@kind boolean, $n:expr, $v:expr) => { list($n, $v, boolean_filter) };
    (@kind ip, $n:expr, $v:expr) => { list($n, $v, ip_filter) };
    (@kind keyword, $n:expr, $v:expr) => { list($n, $v, keyword_filter) };
}

/// Converts a checked, absolute filter document into the SDK's type.
pub(crate) fn to_sdk(filters: &Map<String, Value>) -> anyhow::Result<AwsSecurityFindingFilters> {
    let mut b = AwsSecurityFindingFilters::builder();
    for (name, v) in filters {
        b = match set(b, name, v) {
            Some(r) => r?,
            None => bail!(
                "Filters.{name}: not a GetFindings filter (see `aws securityhub get-findings help`; \
                 e.g. WorkflowStatus, RecordState, ComplianceStatus, ProductName, ResourceId, UpdatedAt)"
            ),
        };
    }
    Ok(b.build())
}

include!("filter_table.rs");

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn converts_each_kind_and_names_bad_paths() {
        let f = to_sdk(&map(json!({
            "WorkflowStatus": [{"Value": "NEW", "Comparison": "EQUALS"}],
            "Confidence": [{"Gte": 70}],
            "UpdatedAt": [{"Start": "2026-01-01T00:00:00Z", "End": "2026-02-01T00:00:00Z"}],
            "UserDefinedFields": [{"Key": "run", "Value": "q3", "Comparison": "EQUALS"}],
            "Sample": [{"Value": false}],
        })))
        .unwrap();
        assert_eq!(f.workflow_status()[0].value(), Some("NEW"));
        assert_eq!(f.confidence()[0].gte(), Some(70.0));
        assert_eq!(f.updated_at()[0].start(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(f.user_defined_fields()[0].key(), Some("run"));
        for (doc, want) in [
            (
                json!({"Nope": []}),
                "Filters.Nope: not a GetFindings filter",
            ),
            (
                json!({"Title": [{"Value": "x", "Comparison": "CONTAINS"}]}),
                "Filters.Title[0].Comparison: CONTAINS is not valid in GetFindings",
            ),
            (
                json!({"Title": [{"Value": "x"}]}),
                "Filters.Title[0].Comparison: required",
            ),
            (json!({"Title": {"Value": "x"}}), "expected a list"),
            (
                json!({"UpdatedAt": [{"Start": "yesterday"}]}),
                "not an ISO 8601",
            ),
            (
                json!({"Title": [{"Value": "x", "Comparison": "EQUALS", "X": 1}]}),
                "unknown member \"X\"",
            ),
        ] {
            let e = to_sdk(&map(doc.clone())).unwrap_err().to_string();
            assert!(e.contains(want), "{doc}: {e}");
        }
        assert!(MEMBERS.len() > 100);
    }

    #[test]
    fn relative_dates_become_absolute_once() {
        let now = humantime::parse_rfc3339("2026-12-04T12:00:00Z").unwrap();
        let mut f = map(json!({
            "UpdatedAt": [{"DateRange": {"Value": 7, "Unit": "DAYS"}}],
            "CreatedAt": [{"DateRange": {"Value": 90, "Unit": "DAYS", "Comparison": "OLDER_THAN"}}],
        }));
        absolutize(&mut f, now).unwrap();
        assert_eq!(
            Value::Object(f.clone()),
            json!({
                "UpdatedAt": [{"Start": "2026-11-27T12:00:00Z", "End": "2026-12-04T12:00:00Z"}],
                "CreatedAt": [{"End": "2026-09-05T12:00:00Z"}],
            })
        );
        to_sdk(&f).unwrap();
        let mut bad = map(json!({"UpdatedAt": [{"DateRange": {"Value": 7, "Unit": "HOURS"}}]}));
        assert!(
            absolutize(&mut bad, now)
                .unwrap_err()
                .to_string()
                .contains("DAYS")
        );
    }

    #[test]
    fn loads_json_and_files() {
        let m = load(r#"{"RecordState":[{"Value":"ACTIVE","Comparison":"EQUALS"}]}"#).unwrap();
        assert!(m.contains_key("RecordState"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        std::fs::write(
            &p,
            r#"{"Filters":{"Id":[{"Value":"a","Comparison":"EQUALS"}]}}"#,
        )
        .unwrap();
        let m = load(&format!("file://{}", p.display())).unwrap();
        assert!(m.contains_key("Id"));
        assert!(
            load("WorkflowStatus=NEW")
                .unwrap_err()
                .to_string()
                .contains("shorthand")
        );
    }
}
