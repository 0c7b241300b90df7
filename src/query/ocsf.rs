//! Selecting findings of the new Security Hub by query (`--ocsf-filters`):
//! the AWS CLI `get-findings-v2 --filters` document (`OcsfFindingFilters`:
//! `CompositeFilters`, `CompositeOperator`), run against `GetFindingsV2`
//! (`POST /findingsv2`) in each Region asked for.
//!
//! The design and the page loop are the V1 query's ([`super::read`], one
//! loop for both operations): pages are handed on one OCSF document a line,
//! so the engine reads the selection exactly like an OCSF JSON Lines export
//! (`status_id`, `severity_id`, `comment` as recorded state), spooled whole
//! before the first update when the decision writes a field the filter
//! matches on, else streamed into the run as they are read. Relative dates
//! (`DateRange` in `DateFilters`) are made absolute once, at the start.
//!
//! The pace: no quota for `GetFindingsV2` is documented
//! (docs/service-facts.md §13), so it gets the same default as
//! `GetFindings`, 3 requests/s burst 6 per Region, under its own limiter
//! (never the update limiter's), changed with `--query-rate` and
//! `--query-burst`. Throttles and transient errors are retried with
//! backoff; a rejected `NextToken` restarts the Region's paging; a page
//! that keeps failing stops the command: it never stops silently short.

use std::hash::Hasher;
use std::time::SystemTime;

use anyhow::{Context, bail};
use aws_sdk_securityhub::types::{
    AllowedOperators, CompositeFilter, MapFilter, MapFilterComparison, OcsfBooleanField,
    OcsfBooleanFilter, OcsfDateField, OcsfDateFilter, OcsfFindingFilters, OcsfIpField,
    OcsfIpFilter, OcsfMapField, OcsfMapFilter, OcsfNumberField, OcsfNumberFilter, OcsfStringField,
    OcsfStringFilter, StringFilter, StringFilterComparison,
};
use aws_smithy_types::{Document, Number};
use serde_json::{Map, Value};

use super::QueryArgs;
use super::filters::{
    absolutize_one, boolean_filter, date_filter, ip_filter, known_members, number_filter, obj, text,
};
use crate::decision::Decision;

/// Most top-level composite filters (API reference).
const MAX_COMPOSITES: usize = 10;
/// Most filters of one type in one composite (API reference).
const MAX_PER_TYPE: usize = 20;
/// Most levels of composite nesting, the top level being 1 (service facts §13).
const MAX_DEPTH: usize = 3;

/// The operation a V2 query runs, as the journal records it.
pub(crate) const OPERATION: &str = "GetFindingsV2";

/// Reads an `--ocsf-filters` value: a JSON object, or `file://PATH`
/// holding one (the AWS CLI's `{"Filters": {...}}` input document too).
pub(crate) fn load(doc: &str) -> anyhow::Result<Map<String, Value>> {
    let (text, origin) = match doc.strip_prefix("file://") {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("--ocsf-filters: cannot read {path}"))?,
            path.to_owned(),
        ),
        None => (doc.to_owned(), "--ocsf-filters".to_owned()),
    };
    let value: Value = serde_json::from_str(text.trim()).with_context(|| {
        format!(
            "{origin}: not a JSON filter document (give the get-findings-v2 JSON, e.g. \
             '{{\"CompositeFilters\":[{{\"NumberFilters\":[{{\"FieldName\":\"status_id\",\"Filter\":{{\"Eq\":1}}}}]}}]}}')"
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

fn composites_mut(v: &mut Value) -> impl Iterator<Item = &mut Value> {
    match v {
        Value::Array(a) => a.iter_mut(),
        _ => [].iter_mut(),
    }
}

fn absolutize_composite(path: &str, c: &mut Value, now: SystemTime) -> anyhow::Result<()> {
    let Value::Object(c) = c else { return Ok(()) };
    if let Some(dates) = c.get_mut("DateFilters") {
        for (i, d) in composites_mut(dates).enumerate() {
            if let Some(Value::Object(f)) = d.get_mut("Filter") {
                absolutize_one(&format!("{path}.DateFilters[{i}].Filter"), f, now)?;
            }
        }
    }
    if let Some(nested) = c.get_mut("NestedCompositeFilters") {
        for (i, n) in composites_mut(nested).enumerate() {
            absolutize_composite(&format!("{path}.NestedCompositeFilters[{i}]"), n, now)?;
        }
    }
    Ok(())
}

/// Turns every `DateRange` into absolute `Start`/`End` dates computed from
/// `now`, once, so that every page, Region and resumed run asks the same
/// question.
pub(crate) fn absolutize(filters: &mut Map<String, Value>, now: SystemTime) -> anyhow::Result<()> {
    if let Some(list) = filters.get_mut("CompositeFilters") {
        for (i, c) in composites_mut(list).enumerate() {
            absolutize_composite(&format!("Filters.CompositeFilters[{i}]"), c, now)?;
        }
    }
    Ok(())
}

fn operator(path: &str, v: Option<&Value>) -> anyhow::Result<Option<AllowedOperators>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s == "AND" || s == "OR" => {
            Ok(Some(AllowedOperators::from(s.as_str())))
        }
        Some(other) => bail!("{path}: AND or OR, got {other}"),
    }
}

fn items<'a>(path: &str, v: Option<&'a Value>) -> anyhow::Result<&'a [Value]> {
    match v {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) if a.len() <= MAX_PER_TYPE => Ok(a),
        Some(Value::Array(a)) => bail!(
            "{path}: at most {MAX_PER_TYPE} filters of one type in a composite filter, got {}",
            a.len()
        ),
        Some(_) => bail!("{path}: expected a list"),
    }
}

/// The field name at `path.FieldName`, checked against the SDK's list.
fn field_name(path: &str, o: &Map<String, Value>, known: &[&str]) -> anyhow::Result<String> {
    let name =
        text(path, o, "FieldName")?.with_context(|| format!("{path}.FieldName: required"))?;
    if !known.contains(&name.as_str()) {
        let some: Vec<&str> = known.iter().take(12).copied().collect();
        bail!(
            "{path}.FieldName: {name:?} is not a field GetFindingsV2 filters on with this filter \
             type (e.g. {}{})",
            some.join(", "),
            if known.len() > some.len() {
                ", ..."
            } else {
                ""
            }
        );
    }
    Ok(name)
}

/// `(FieldName, Filter)` of one filter, checked.
fn pair<'a>(
    path: &str,
    v: &'a Value,
    known: &[&str],
) -> anyhow::Result<(String, &'a Value, String)> {
    let o = obj(path, v)?;
    known_members(path, o, &["FieldName", "Filter"])?;
    let name = field_name(path, o, known)?;
    let filter = o
        .get("Filter")
        .with_context(|| format!("{path}.Filter: required"))?;
    Ok((name, filter, format!("{path}.Filter")))
}

fn string_filter(path: &str, v: &Value) -> anyhow::Result<StringFilter> {
    let o = obj(path, v)?;
    known_members(path, o, &["Value", "Comparison"])?;
    let value = text(path, o, "Value")?.with_context(|| format!("{path}.Value: required"))?;
    let cmp =
        text(path, o, "Comparison")?.with_context(|| format!("{path}.Comparison: required"))?;
    if !StringFilterComparison::values().contains(&cmp.as_str()) {
        bail!(
            "{path}.Comparison: {cmp:?} is not a comparison ({})",
            StringFilterComparison::values().join(", ")
        );
    }
    Ok(StringFilter::builder()
        .value(value)
        .comparison(StringFilterComparison::from(cmp.as_str()))
        .build())
}

fn map_filter(path: &str, v: &Value) -> anyhow::Result<MapFilter> {
    let o = obj(path, v)?;
    known_members(path, o, &["Key", "Value", "Comparison"])?;
    let cmp =
        text(path, o, "Comparison")?.with_context(|| format!("{path}.Comparison: required"))?;
    if !MapFilterComparison::values().contains(&cmp.as_str()) {
        bail!(
            "{path}.Comparison: {cmp:?} is not a comparison ({})",
            MapFilterComparison::values().join(", ")
        );
    }
    Ok(MapFilter::builder()
        .set_key(text(path, o, "Key")?)
        .set_value(text(path, o, "Value")?)
        .comparison(MapFilterComparison::from(cmp.as_str()))
        .build())
}

fn composite(path: &str, v: &Value, depth: usize) -> anyhow::Result<CompositeFilter> {
    if depth > MAX_DEPTH {
        bail!("{path}: composite filters nest at most {MAX_DEPTH} levels");
    }
    let o = obj(path, v)?;
    known_members(
        path,
        o,
        &[
            "StringFilters",
            "DateFilters",
            "BooleanFilters",
            "NumberFilters",
            "MapFilters",
            "IpFilters",
            "NestedCompositeFilters",
            "Operator",
        ],
    )?;
    let mut b = CompositeFilter::builder();
    let at = |k: &str| format!("{path}.{k}");
    for (i, f) in items(&at("StringFilters"), o.get("StringFilters"))?
        .iter()
        .enumerate()
    {
        let p = format!("{path}.StringFilters[{i}]");
        let (name, filter, fp) = pair(&p, f, OcsfStringField::values())?;
        b = b.string_filters(
            OcsfStringFilter::builder()
                .field_name(OcsfStringField::from(name.as_str()))
                .filter(string_filter(&fp, filter)?)
                .build(),
        );
    }
    for (i, f) in items(&at("DateFilters"), o.get("DateFilters"))?
        .iter()
        .enumerate()
    {
        let p = format!("{path}.DateFilters[{i}]");
        let (name, filter, fp) = pair(&p, f, OcsfDateField::values())?;
        b = b.date_filters(
            OcsfDateFilter::builder()
                .field_name(OcsfDateField::from(name.as_str()))
                .filter(date_filter(&fp, filter)?)
                .build(),
        );
    }
    for (i, f) in items(&at("BooleanFilters"), o.get("BooleanFilters"))?
        .iter()
        .enumerate()
    {
        let p = format!("{path}.BooleanFilters[{i}]");
        let (name, filter, fp) = pair(&p, f, OcsfBooleanField::values())?;
        b = b.boolean_filters(
            OcsfBooleanFilter::builder()
                .field_name(OcsfBooleanField::from(name.as_str()))
                .filter(boolean_filter(&fp, filter)?)
                .build(),
        );
    }
    for (i, f) in items(&at("NumberFilters"), o.get("NumberFilters"))?
        .iter()
        .enumerate()
    {
        let p = format!("{path}.NumberFilters[{i}]");
        let (name, filter, fp) = pair(&p, f, OcsfNumberField::values())?;
        b = b.number_filters(
            OcsfNumberFilter::builder()
                .field_name(OcsfNumberField::from(name.as_str()))
                .filter(number_filter(&fp, filter)?)
                .build(),
        );
    }
    for (i, f) in items(&at("MapFilters"), o.get("MapFilters"))?
        .iter()
        .enumerate()
    {
        let p = format!("{path}.MapFilters[{i}]");
        let (name, filter, fp) = pair(&p, f, OcsfMapField::values())?;
        b = b.map_filters(
            OcsfMapFilter::builder()
                .field_name(OcsfMapField::from(name.as_str()))
                .filter(map_filter(&fp, filter)?)
                .build(),
        );
    }
    for (i, f) in items(&at("IpFilters"), o.get("IpFilters"))?
        .iter()
        .enumerate()
    {
        let p = format!("{path}.IpFilters[{i}]");
        let (name, filter, fp) = pair(&p, f, OcsfIpField::values())?;
        b = b.ip_filters(
            OcsfIpFilter::builder()
                .field_name(OcsfIpField::from(name.as_str()))
                .filter(ip_filter(&fp, filter)?)
                .build(),
        );
    }
    let nested = match o.get("NestedCompositeFilters") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a,
        Some(_) => bail!("{path}.NestedCompositeFilters: expected a list"),
    };
    for (i, n) in nested.iter().enumerate() {
        b = b.nested_composite_filters(composite(
            &format!("{path}.NestedCompositeFilters[{i}]"),
            n,
            depth + 1,
        )?);
    }
    Ok(
        b.set_operator(operator(&at("Operator"), o.get("Operator"))?)
            .build(),
    )
}

/// Converts a checked, absolute `get-findings-v2` filter document into the
/// SDK's type; an unknown member or field, a malformed filter or a relative
/// date left relative is an error naming its path.
pub(crate) fn to_sdk(filters: &Map<String, Value>) -> anyhow::Result<OcsfFindingFilters> {
    known_members(
        "Filters",
        filters,
        &["CompositeFilters", "CompositeOperator"],
    )?;
    let list = match filters.get("CompositeFilters") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a,
        Some(_) => bail!("Filters.CompositeFilters: expected a list"),
    };
    if list.len() > MAX_COMPOSITES {
        bail!(
            "Filters.CompositeFilters: at most {MAX_COMPOSITES} composite filters, got {}",
            list.len()
        );
    }
    let mut b = OcsfFindingFilters::builder();
    for (i, c) in list.iter().enumerate() {
        b = b.composite_filters(composite(&format!("Filters.CompositeFilters[{i}]"), c, 1)?);
    }
    Ok(b.set_composite_operator(operator(
        "Filters.CompositeOperator",
        filters.get("CompositeOperator"),
    )?)
    .build())
}

/// Reads, checks and makes absolute an `--ocsf-filters` document: (as
/// given, absolute).
pub(crate) fn prepare_filters(
    doc: &str,
    now: SystemTime,
) -> anyhow::Result<(Map<String, Value>, Map<String, Value>)> {
    let given = load(doc)?;
    let mut filters = given.clone();
    absolutize(&mut filters, now)?;
    to_sdk(&filters)?;
    Ok((given, filters))
}

/// Refuses a query whose operation does not match the decision: a
/// `GetFindings` selection (ASFF) feeds `BatchUpdateFindings` (V1
/// decisions), a `GetFindingsV2` selection (OCSF) feeds
/// `BatchUpdateFindingsV2` (`--status-id`, `--severity-id`, `--comment`).
pub(crate) fn check_decision(args: &QueryArgs, decision: &Decision) -> anyhow::Result<()> {
    if args.ocsf_filters.is_some() && args.filters.is_some() {
        bail!(
            "--filters and --ocsf-filters: give one (--filters queries Security Hub CSPM with \
             GetFindings, --ocsf-filters the new Security Hub with GetFindingsV2)"
        );
    }
    if decision.is_empty() {
        return Ok(());
    }
    if args.filters.is_some() && decision.is_v2() {
        bail!(
            "--filters selects Security Hub CSPM findings (GetFindings, ASFF), but --status-id, \
             --severity-id and --comment update the new Security Hub's (BatchUpdateFindingsV2): \
             select them with --ocsf-filters (the get-findings-v2 filter document)"
        );
    }
    if args.ocsf_filters.is_some() && !decision.is_v2() {
        bail!(
            "--ocsf-filters selects the new Security Hub's findings (GetFindingsV2, OCSF), which \
             only --status-id, --severity-id and --comment update (BatchUpdateFindingsV2): for \
             --workflow, --note and the other BatchUpdateFindings fields, select with --filters"
        );
    }
    Ok(())
}

/// A Smithy document (what `GetFindingsV2` returns) as JSON.
pub(crate) fn to_json(d: &Document) -> Value {
    match d {
        Document::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        Document::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Document::Number(Number::PosInt(n)) => Value::from(*n),
        Document::Number(Number::NegInt(n)) => Value::from(*n),
        Document::Number(Number::Float(f)) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        Document::String(s) => Value::String(s.clone()),
        Document::Bool(b) => Value::Bool(*b),
        Document::Null => Value::Null,
    }
}

fn path<'a>(v: &'a Value, p: &[&str]) -> Option<&'a str> {
    p.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// The finding's identity for dropping repeats: `metadata.uid`, else the
/// triple; `None` when it has neither (it is written: the reader reports it).
pub(super) fn identity(v: &Value) -> Option<u64> {
    let mut h = twox_hash::XxHash3_64::new();
    if let Some(uid) = path(v, &["metadata", "uid"]) {
        h.write(b"m\0");
        h.write(uid.as_bytes());
    } else {
        for p in [
            &["cloud", "account", "uid"][..],
            &["finding_info", "uid"],
            &["metadata", "product", "uid"],
        ] {
            h.write(path(v, p)?.as_bytes());
            h.write(&[0]);
        }
    }
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn converts_every_filter_type_and_nesting() {
        let f = to_sdk(&map(json!({
            "CompositeOperator": "OR",
            "CompositeFilters": [{
                "Operator": "AND",
                "StringFilters": [{"FieldName": "comment", "Filter": {"Value": "CHG-", "Comparison": "CONTAINS"}}],
                "NumberFilters": [{"FieldName": "status_id", "Filter": {"Eq": 1}}],
                "DateFilters": [{"FieldName": "finding_info.modified_time_dt", "Filter": {"Start": "2026-01-01T00:00:00Z"}}],
                "BooleanFilters": [{"FieldName": "compliance.assessments.meets_criteria", "Filter": {"Value": false}}],
                "MapFilters": [{"FieldName": "resources.tags", "Filter": {"Key": "env", "Value": "dev", "Comparison": "EQUALS"}}],
                "NestedCompositeFilters": [{"StringFilters": [{"FieldName": "cloud.account.uid", "Filter": {"Value": "1", "Comparison": "PREFIX"}}]}]
            }]
        })))
        .unwrap();
        assert_eq!(f.composite_operator(), Some(&AllowedOperators::Or));
        let c = &f.composite_filters()[0];
        assert_eq!(
            c.string_filters()[0].field_name(),
            Some(&OcsfStringField::Comment)
        );
        assert_eq!(c.number_filters()[0].filter().unwrap().eq(), Some(1.0));
        assert_eq!(c.nested_composite_filters().len(), 1);
        assert_eq!(c.map_filters().len(), 1);
        assert_eq!(c.boolean_filters().len(), 1);
    }

    #[test]
    fn refusals_name_the_path() {
        let s = |field: &str, cmp: &str| json!({"FieldName": field, "Filter": {"Value": "x", "Comparison": cmp}});
        for (doc, want) in [
            (json!({"Nope": []}), "Filters: unknown member \"Nope\""),
            (
                json!({"CompositeFilters": [{"StringFilters": [s("no.such.field", "EQUALS")]}]}),
                "Filters.CompositeFilters[0].StringFilters[0].FieldName: \"no.such.field\" is not a field",
            ),
            (
                json!({"CompositeFilters": [{"StringFilters": [s("status", "SOUNDS_LIKE")]}]}),
                "StringFilters[0].Filter.Comparison: \"SOUNDS_LIKE\" is not a comparison",
            ),
            (
                json!({"CompositeFilters": [{"NumberFilters": [{"FieldName": "status", "Filter": {"Eq": 1}}]}]}),
                "NumberFilters[0].FieldName: \"status\" is not a field",
            ),
            (json!({"CompositeOperator": "XOR"}), "AND or OR"),
            (
                json!({"CompositeFilters": [{"NestedCompositeFilters": [{"NestedCompositeFilters": [{"NestedCompositeFilters": [{}]}]}]}]}),
                "nest at most 3",
            ),
            (
                json!({"CompositeFilters": (0..11).map(|_| json!({})).collect::<Vec<_>>()}),
                "at most 10",
            ),
            (
                json!({"CompositeFilters": [{"DateFilters": [{"FieldName": "finding_info.modified_time_dt", "Filter": {"DateRange": {"Value": 1, "Unit": "DAYS"}}}]}]}),
                "made absolute first",
            ),
        ] {
            let e = to_sdk(&map(doc.clone())).unwrap_err().to_string();
            assert!(e.contains(want), "{doc}: {e}");
        }
        // CONTAINS is valid here (it is not in GetFindings).
        to_sdk(&map(json!({"CompositeFilters": [{"StringFilters": [s("comment", "CONTAINS"), s("finding_info.title", "CONTAINS_WORD")]}]}))).unwrap();
    }

    #[test]
    fn relative_dates_become_absolute_once_at_any_depth() {
        let now = humantime::parse_rfc3339("2026-12-04T12:00:00Z").unwrap();
        let range = json!({"FieldName": "finding_info.modified_time_dt",
            "Filter": {"DateRange": {"Value": 7, "Unit": "DAYS"}}});
        let mut f = map(json!({"CompositeFilters": [
            {"DateFilters": [range.clone()], "NestedCompositeFilters": [{"DateFilters": [range]}]}
        ]}));
        absolutize(&mut f, now).unwrap();
        let want = json!({"FieldName": "finding_info.modified_time_dt",
            "Filter": {"Start": "2026-11-27T12:00:00Z", "End": "2026-12-04T12:00:00Z"}});
        assert_eq!(f["CompositeFilters"][0]["DateFilters"][0], want);
        assert_eq!(
            f["CompositeFilters"][0]["NestedCompositeFilters"][0]["DateFilters"][0],
            want
        );
        to_sdk(&f).unwrap();
        let mut bad = map(
            json!({"CompositeFilters": [{"DateFilters": [{"FieldName": "finding_info.modified_time_dt",
            "Filter": {"DateRange": {"Value": 7, "Unit": "HOURS"}}}]}]}),
        );
        let e = absolutize(&mut bad, now).unwrap_err().to_string();
        assert!(
            e.contains("Filters.CompositeFilters[0].DateFilters[0].Filter.DateRange.Unit"),
            "{e}"
        );
    }

    #[test]
    fn documents_become_json_and_repeats_are_known() {
        let d = Document::Object(
            [
                ("status_id".to_owned(), Document::Number(Number::PosInt(1))),
                ("x".to_owned(), Document::Number(Number::NegInt(-2))),
                ("f".to_owned(), Document::Number(Number::Float(0.5))),
                (
                    "metadata".to_owned(),
                    Document::Object(
                        [("uid".to_owned(), Document::String("m1".into()))]
                            .into_iter()
                            .collect(),
                    ),
                ),
                (
                    "a".to_owned(),
                    Document::Array(vec![Document::Bool(true), Document::Null]),
                ),
            ]
            .into_iter()
            .collect(),
        );
        let v = to_json(&d);
        assert_eq!(
            v,
            json!({"status_id": 1, "x": -2, "f": 0.5, "metadata": {"uid": "m1"}, "a": [true, null]})
        );
        assert_eq!(identity(&v), identity(&json!({"metadata": {"uid": "m1"}})));
        assert_ne!(identity(&v), identity(&json!({"metadata": {"uid": "m2"}})));
        let triple = json!({"cloud": {"account": {"uid": "1"}}, "finding_info": {"uid": "f"},
            "metadata": {"product": {"uid": "p"}}});
        assert!(identity(&triple).is_some());
        assert_eq!(identity(&json!({"finding_info": {"uid": "f"}})), None);
    }

    #[test]
    fn the_decision_must_match_the_query() {
        let v1 = Decision {
            confidence: Some(50),
            ..Decision::default()
        };
        let v2 = Decision {
            status_id: Some(3),
            ..Decision::default()
        };
        let asff = QueryArgs {
            filters: Some("{}".into()),
            ..QueryArgs::default()
        };
        let ocsf = QueryArgs {
            ocsf_filters: Some("{}".into()),
            ..QueryArgs::default()
        };
        check_decision(&asff, &v1).unwrap();
        check_decision(&ocsf, &v2).unwrap();
        let e = check_decision(&asff, &v2).unwrap_err().to_string();
        assert!(e.contains("select them with --ocsf-filters"), "{e}");
        let e = check_decision(&ocsf, &v1).unwrap_err().to_string();
        assert!(e.contains("select with --filters"), "{e}");
        let both = QueryArgs {
            filters: Some("{}".into()),
            ocsf_filters: Some("{}".into()),
            ..QueryArgs::default()
        };
        assert!(check_decision(&both, &v2).is_err());
    }
}
