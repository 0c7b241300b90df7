//! Finding-identifier rules shared by every reader: which columns hold the
//! identifiers, and whether a record's identifiers are usable.
//!
//! Every reader funnels each record through [`check`], so that CSV, Parquet
//! and JSON reject exactly the same values with exactly the same reasons.
//! This module does no I/O.

use std::borrow::Cow;
use std::sync::Arc;

use crate::arn::{parse_product_arn, to_v1_product_arn};
use crate::model::{FindingKey, InvalidRecord, Location, SourceItem, SourceRecord};

use super::error::SourceErrorKind;
use super::recent::Recent;

/// Limit on `Id` from the ASFF documentation (docs/service-facts.md §2.3).
pub(crate) const MAX_ID_CHARS: usize = 512;
/// Limits on `ProductArn` from the ASFF documentation (docs/service-facts.md §2.3).
pub(crate) const MIN_PRODUCT_ARN_CHARS: usize = 12;
/// Upper limit on `ProductArn` (docs/service-facts.md §2.3).
pub(crate) const MAX_PRODUCT_ARN_CHARS: usize = 2048;
/// Identifiers kept in an invalid record are cut to this many characters so
/// that a megabyte-long cell does not end up in the results file.
const MAX_KEPT_CHARS: usize = 1024;

/// Normalised names of columns that hold the finding Id, in order of
/// preference: ASFF `Id`, snake_case `finding_id`, OCSF 1.1 `finding_info.uid`,
/// OCSF 1.0 `finding.uid` (docs/service-facts.md §9).
const ID_NAMES: &[&str] = &["id", "findingid", "findinginfouid", "findinguid"];
/// Normalised names of columns that hold the product ARN.
const ARN_NAMES: &[&str] = &["productarn", "metadataproductuid"];
/// The normalised name of OCSF `metadata.uid`, which names a finding for
/// `BatchUpdateFindingsV2` (its `MetadataUids`) when an input has no Id.
pub(crate) const METADATA_UID_NAME: &str = "metadatauid";

/// Which of the two identifiers a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ident {
    Id,
    ProductArn,
}

impl Ident {
    fn what(self) -> &'static str {
        match self {
            Ident::Id => "finding Id",
            Ident::ProductArn => "product ARN",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Ident::Id => "--id-column",
            Ident::ProductArn => "--product-arn-column",
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Ident::Id => ID_NAMES,
            Ident::ProductArn => ARN_NAMES,
        }
    }
}

/// Lower-cases a column name and drops the separators exports disagree on
/// (`_`, `-`, `.`, spaces, a BOM), so `Product_Arn`, `productarn` and
/// `metadata.product.uid`/`metadata_product_uid` compare as intended.
pub(crate) fn normalize(name: &str) -> String {
    name.trim_start_matches('\u{feff}')
        .trim()
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' ' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Finds the column holding `which` among `names` (column names or dotted
/// paths). A user-given name wins and is matched exactly, then ignoring case,
/// then normalised; otherwise the well-known names are tried in order of
/// preference. Returns the index into `names`.
pub(crate) fn find_column(names: &[String], which: Ident, user: Option<&str>) -> Option<usize> {
    if let Some(user) = user {
        let user_norm = normalize(user);
        return names
            .iter()
            .position(|n| n == user)
            .or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case(user)))
            .or_else(|| names.iter().position(|n| normalize(n) == user_norm));
    }
    let normalized: Vec<String> = names.iter().map(|n| normalize(n)).collect();
    which
        .names()
        .iter()
        .find_map(|want| normalized.iter().position(|n| n == want))
}

/// The fatal error for a missing identifier column, listing what was found.
pub(crate) fn missing_column(
    which: Ident,
    names: &[String],
    user: Option<&str>,
    extra_hint: &str,
) -> SourceErrorKind {
    const MAX_LISTED: usize = 40;
    let mut found: Vec<String> = names
        .iter()
        .take(MAX_LISTED)
        .map(|n| super::error::printable(n, super::error::QUOTED_MAX_CHARS))
        .collect();
    if found.is_empty() {
        found.push("none".into());
    }
    let mut found = found.join(", ");
    if names.len() > MAX_LISTED {
        found.push_str(&format!(" and {} more", names.len() - MAX_LISTED));
    }
    let mut hint = String::new();
    if let Some(user) = user {
        hint.push_str(&format!(
            "; the column named by {} (\"{}\") does not exist",
            which.flag(),
            super::error::printable(user, super::error::QUOTED_MAX_CHARS)
        ));
    }
    hint.push_str(extra_hint);
    SourceErrorKind::MissingColumn {
        what: which.what(),
        found,
        flag: which.flag(),
        hint,
    }
}

/// A header that names a column twice: exactly the same name, or (for the
/// identifier columns chosen) another column that reads the same once
/// case and separators are ignored (`Id` and `ID`), since which one holds
/// the identifier would be a guess.
pub(crate) fn duplicate_column(names: &[String], chosen: &[usize]) -> Option<SourceErrorKind> {
    let trimmed: Vec<&str> = names.iter().map(|n| n.trim()).collect();
    let mut first_dup: Option<(usize, usize)> = None;
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, n) in trimmed.iter().enumerate() {
        if n.is_empty() {
            continue;
        }
        if let Some(&j) = seen.get(n) {
            first_dup = Some((j, i));
            break;
        }
        seen.insert(n, i);
    }
    if first_dup.is_none() {
        for &c in chosen {
            let want = normalize(&names[c]);
            if let Some(i) = (0..names.len()).find(|&i| i != c && normalize(&names[i]) == want) {
                first_dup = Some((c.min(i), c.max(i)));
                break;
            }
        }
    }
    let (a, b) = first_dup?;
    Some(SourceErrorKind::DuplicateColumn {
        name: super::error::printable(trimmed[a], super::error::QUOTED_MAX_CHARS),
        positions: if trimmed[a] == trimmed[b] {
            format!("{} and {}", a + 1, b + 1)
        } else {
            format!(
                "{} and {}, as \"{}\"",
                a + 1,
                b + 1,
                super::error::printable(trimmed[b], super::error::QUOTED_MAX_CHARS)
            )
        },
    })
}

/// One identifier as a reader found it in a record.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cell<'a> {
    /// No such field in this record (short CSV row, absent JSON key, null).
    Missing,
    /// Text.
    Text(&'a str),
    /// Bytes that are not UTF-8; `valid_up_to` is the offset of the first bad byte.
    NotUtf8 { valid_up_to: usize },
    /// A value of another type (a JSON number or object, ...), named.
    NotText(&'static str),
}

impl<'a> Cell<'a> {
    /// Interprets raw bytes (a CSV field, a Parquet binary value).
    pub(crate) fn from_bytes(bytes: &'a [u8]) -> Cell<'a> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Cell::Text(s),
            Err(e) => Cell::NotUtf8 {
                valid_up_to: e.valid_up_to(),
            },
        }
    }

    fn text(self) -> Option<&'a str> {
        match self {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// How to report a bad identifier: the column (or JSON path) names as the
/// input spells them.
#[derive(Clone, Debug)]
pub(crate) struct IdentColumns {
    pub id: Arc<str>,
    pub product_arn: Arc<str>,
}

/// Checks records' identifiers and turns them into [`SourceItem`]s.
///
/// Rules (the same for every format, docs/service-facts.md §2.3): the Id must contain a
/// non-whitespace character, no line break, and at most 512 characters; the
/// product ARN 12–2048 characters, and unless `any_arn` (`--region` given)
/// must parse as a Security Hub product ARN. `::productv2/` ARNs are turned
/// into the `::product/` form first. Values are otherwise taken exactly as
/// written: an Id is free text and trimming it could name another finding.
///
/// One per reader: it remembers its verdict on recent product ARNs, because
/// an export holds millions of rows but only a handful of products, and
/// re-checking and converting the same ARN was most of the per-row cost.
pub(crate) struct Checker {
    any_arn: bool,
    /// Verdicts on recent raw ARNs (trimmed): the `::product/` form, or why
    /// the ARN is unusable.
    arns: Recent<Result<String, String>>,
}

impl Checker {
    pub(crate) fn new(any_arn: bool) -> Self {
        Checker {
            any_arn,
            arns: Recent::new(),
        }
    }

    /// The verdict on one product ARN cell: its `::product/` form, or why it
    /// is unusable.
    fn arn_verdict(&mut self, arn: Cell<'_>) -> Result<String, String> {
        let Cell::Text(raw) = arn else {
            return common_problem(arn, "product ARN").map(str::to_owned);
        };
        let any_arn = self.any_arn;
        self.arns.get_or(raw, || {
            common_problem(arn, "product ARN").and_then(|raw| check_arn(raw, any_arn))
        })
    }

    /// Checks one record and turns it into a [`SourceItem`].
    pub(crate) fn check(
        &mut self,
        id: Cell<'_>,
        arn: Cell<'_>,
        cols: &IdentColumns,
        location: Location,
    ) -> SourceItem {
        // The product ARN cannot legitimately contain whitespace, so
        // surrounding blanks (common in hand-edited CSV) are dropped from it,
        // never from the Id.
        let arn = match arn {
            Cell::Text(s) => Cell::Text(s.trim()),
            other => other,
        };
        let problem = match check_id(id) {
            Some(reason) => Some((&cols.id, reason)),
            None => match self.arn_verdict(arn) {
                Ok(v1) => {
                    let id = id.text().unwrap_or_default();
                    return SourceItem::Record(SourceRecord::new(
                        location,
                        FindingKey::new(id, v1),
                    ));
                }
                Err(reason) => Some((&cols.product_arn, reason)),
            },
        };
        let (column, reason) = problem.unwrap_or_else(|| (&cols.id, String::new()));
        let (id, arn) = (id.text(), arn.text());
        let key = (id.is_some() || arn.is_some()).then(|| {
            FindingKey::new(
                shorten(id.unwrap_or_default()),
                shorten(&to_v1_product_arn(arn.unwrap_or_default())),
            )
        });
        SourceItem::Invalid(InvalidRecord {
            location,
            column: Some(column.to_string()),
            reason,
            key,
        })
    }
}

impl Checker {
    /// Checks one record of an input that names findings by OCSF
    /// `metadata.uid` (the V2 export job's CSV without `finding_info.uid`):
    /// the uid as an Id is checked, the product (`metadata.product.uid`,
    /// which names the Region) only when the record has one. The key is the
    /// uid with the product's `::product/` form, or with none.
    pub(crate) fn check_metadata_uid(
        &mut self,
        uid: Cell<'_>,
        product: Cell<'_>,
        cols: &IdentColumns,
        location: Location,
    ) -> SourceItem {
        match product {
            Cell::Missing => {}
            Cell::Text(s) if s.trim().is_empty() => {}
            _ => return self.check(uid, product, cols, location),
        }
        match check_id(uid) {
            None => SourceItem::Record(SourceRecord::new(
                location,
                FindingKey::new(uid.text().unwrap_or_default(), ""),
            )),
            Some(reason) => SourceItem::Invalid(InvalidRecord {
                location,
                column: Some(cols.id.to_string()),
                reason,
                key: uid.text().map(|id| FindingKey::new(shorten(id), "")),
            }),
        }
    }
}

fn check_id(id: Cell<'_>) -> Option<String> {
    let s = match common_problem(id, "finding Id") {
        Ok(s) => s,
        Err(reason) => return Some(reason),
    };
    if s.trim().is_empty() {
        return Some("finding Id has no non-whitespace character".into());
    }
    // Count characters only when the byte length could exceed the limit.
    if s.len() > MAX_ID_CHARS {
        let chars = s.chars().count();
        if chars > MAX_ID_CHARS {
            return Some(format!(
                "finding Id is {chars} characters long (at most {MAX_ID_CHARS} allowed)"
            ));
        }
    }
    None
}

/// Checks a product ARN that passed [`common_problem`]; returns its
/// `::product/` form.
fn check_arn(s: &str, any_arn: bool) -> Result<String, String> {
    let s: Cow<'_, str> = to_v1_product_arn(s);
    let chars = if s.len() > MAX_PRODUCT_ARN_CHARS || s.len() < MIN_PRODUCT_ARN_CHARS {
        s.chars().count()
    } else {
        s.len()
    };
    if !(MIN_PRODUCT_ARN_CHARS..=MAX_PRODUCT_ARN_CHARS).contains(&chars) {
        return Err(format!(
            "product ARN is {chars} characters long ({MIN_PRODUCT_ARN_CHARS}-{MAX_PRODUCT_ARN_CHARS} allowed)"
        ));
    }
    if !any_arn && let Err(e) = parse_product_arn(&s) {
        return Err(e.to_string());
    }
    Ok(s.into_owned())
}

/// Problems that apply to both identifiers: absent, empty, not text, line breaks.
fn common_problem<'a>(cell: Cell<'a>, what: &str) -> Result<&'a str, String> {
    match cell {
        Cell::Missing => Err(format!("no {what} in this record")),
        Cell::NotUtf8 { valid_up_to } => Err(format!(
            "{what} is not valid UTF-8 (bad byte at offset {valid_up_to})"
        )),
        Cell::NotText(kind) => Err(format!("{what} is {kind}, not text")),
        Cell::Text("") => Err(format!("empty {what}")),
        // A byte scan without early exit: it vectorises, and Ids are short.
        Cell::Text(s) if has_line_break(s.as_bytes()) => Err(format!(
            "{what} contains a line break (in CSV, often an unterminated quote earlier in the row)"
        )),
        Cell::Text(s) => Ok(s),
    }
}

/// Whether `s` holds `\n` or `\r`, eight bytes at a time (the classic
/// "has zero byte" bit trick): this runs for both identifiers of every row.
fn has_line_break(s: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    const CR: u64 = LO * b'\r' as u64;
    let has_zero = |x: u64| x.wrapping_sub(LO) & !x & HI != 0;
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        if has_zero(w ^ NL) || has_zero(w ^ CR) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| b == b'\n' || b == b'\r')
}

/// `line N`, the detail of a text-format location. Built by hand because
/// `format!` was a visible share of the per-row cost.
pub(crate) fn line_detail(line: u64) -> String {
    let mut s = String::with_capacity(24);
    s.push_str("line ");
    push_number(&mut s, line);
    s
}

/// `row group G, row R`, the detail of a Parquet location.
pub(crate) fn row_group_detail(group: u64, row: u64) -> String {
    let mut s = String::with_capacity(40);
    s.push_str("row group ");
    push_number(&mut s, group);
    s.push_str(", row ");
    push_number(&mut s, row);
    s
}

fn push_number(s: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        s.push(char::from(d));
    }
}

fn shorten(s: &str) -> String {
    match s.char_indices().nth(MAX_KEPT_CHARS) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GD: &str = "arn:aws:securityhub:us-east-1::product/aws/guardduty";

    fn cols() -> IdentColumns {
        IdentColumns {
            id: "Id".into(),
            product_arn: "ProductArn".into(),
        }
    }

    fn loc() -> Location {
        Location {
            file: "f".into(),
            row: 1,
            detail: None,
        }
    }

    fn check(
        id: Cell<'_>,
        arn: Cell<'_>,
        cols: &IdentColumns,
        location: Location,
        any_arn: bool,
    ) -> SourceItem {
        Checker::new(any_arn).check(id, arn, cols, location)
    }

    fn invalid(item: SourceItem) -> InvalidRecord {
        match item {
            SourceItem::Invalid(i) => i,
            SourceItem::Record(r) => panic!("expected invalid, got {r:?}"),
        }
    }

    #[test]
    fn accepts_and_converts_productv2() {
        let item = check(
            Cell::Text("f-1"),
            Cell::Text(" arn:aws:securityhub:eu-west-1::productv2/aws/guardduty "),
            &cols(),
            loc(),
            false,
        );
        let SourceItem::Record(r) = item else {
            panic!("{item:?}")
        };
        assert_eq!(
            r.key,
            FindingKey::new(
                "f-1",
                "arn:aws:securityhub:eu-west-1::product/aws/guardduty"
            )
        );
    }

    #[test]
    fn id_rules() {
        let i = invalid(check(
            Cell::Text("  "),
            Cell::Text(GD),
            &cols(),
            loc(),
            false,
        ));
        assert_eq!(i.column.as_deref(), Some("Id"));
        assert!(i.reason.contains("non-whitespace"), "{}", i.reason);
        assert_eq!(i.key, Some(FindingKey::new("  ", GD)));

        let long = "x".repeat(513);
        let i = invalid(check(
            Cell::Text(&long),
            Cell::Text(GD),
            &cols(),
            loc(),
            false,
        ));
        assert!(i.reason.contains("513 characters"), "{}", i.reason);
        // 512 multi-byte characters are fine even though they are > 512 bytes.
        let ok = "é".repeat(512);
        assert!(matches!(
            check(Cell::Text(&ok), Cell::Text(GD), &cols(), loc(), false),
            SourceItem::Record(_)
        ));

        let i = invalid(check(Cell::Missing, Cell::Text(GD), &cols(), loc(), false));
        assert_eq!(i.reason, "no finding Id in this record");
        let i = invalid(check(Cell::Text(""), Cell::Text(GD), &cols(), loc(), false));
        assert_eq!(i.reason, "empty finding Id");
        let i = invalid(check(
            Cell::NotUtf8 { valid_up_to: 3 },
            Cell::Text(GD),
            &cols(),
            loc(),
            false,
        ));
        assert!(i.reason.contains("UTF-8"));
        let i = invalid(check(
            Cell::Text("a\nb"),
            Cell::Text(GD),
            &cols(),
            loc(),
            false,
        ));
        assert!(i.reason.contains("line break"));
    }

    #[test]
    fn arn_rules() {
        let i = invalid(check(
            Cell::Text("a"),
            Cell::Text("arn:x"),
            &cols(),
            loc(),
            false,
        ));
        assert_eq!(i.column.as_deref(), Some("ProductArn"));
        assert!(i.reason.contains("5 characters"), "{}", i.reason);

        let i = invalid(check(
            Cell::Text("a"),
            Cell::Text("arn:aws:guardduty:us-east-1:1:detector/x"),
            &cols(),
            loc(),
            false,
        ));
        assert_eq!(
            i.reason,
            crate::arn::ArnError::WrongService("guardduty".into()).to_string()
        );
        // With --region, any ARN of a sane length is accepted.
        assert!(matches!(
            check(
                Cell::Text("a"),
                Cell::Text("arn:aws:guardduty:us-east-1:1:detector/x"),
                &cols(),
                loc(),
                true
            ),
            SourceItem::Record(_)
        ));
        let i = invalid(check(
            Cell::Text("a"),
            Cell::NotText("a number"),
            &cols(),
            loc(),
            false,
        ));
        assert_eq!(i.reason, "product ARN is a number, not text");
    }

    #[test]
    fn location_details() {
        assert_eq!(line_detail(0), "line 0");
        assert_eq!(line_detail(17), "line 17");
        assert_eq!(line_detail(u64::MAX), format!("line {}", u64::MAX));
        assert_eq!(row_group_detail(3, 1_000_000), "row group 3, row 1000000");
    }

    #[test]
    fn line_break_detection() {
        for len in 0..40 {
            let clean = vec![b'x'; len];
            assert!(!has_line_break(&clean));
            for pos in 0..len {
                for b in [b'\n', b'\r'] {
                    let mut dirty = clean.clone();
                    dirty[pos] = b;
                    assert!(has_line_break(&dirty), "{len} {pos}");
                }
            }
        }
        // Bytes near 0x0a/0x0d (and high bytes) are not mistaken for them.
        assert!(!has_line_break(&[
            0x0b, 0x0c, 0x0e, 0x09, 0x8a, 0x8d, 0xff, 0x00, 0x1a
        ]));
    }

    #[test]
    fn cached_verdicts_match_fresh_ones() {
        let mut checker = Checker::new(false);
        for _ in 0..3 {
            let SourceItem::Record(r) = checker.check(
                Cell::Text("a"),
                Cell::Text("arn:aws:securityhub:us-east-1::productv2/aws/guardduty"),
                &cols(),
                loc(),
            ) else {
                panic!()
            };
            assert_eq!(r.key.product_arn, GD);
            let i = invalid(checker.check(
                Cell::Text("a"),
                Cell::Text("arn:aws:s3:::bucket-x"),
                &cols(),
                loc(),
            ));
            assert!(i.reason.contains("not a Security Hub ARN"), "{}", i.reason);
        }
        assert_eq!(checker.arns.held(), 2);
    }

    #[test]
    fn huge_cells_are_shortened_in_invalid_keys() {
        let big = "y".repeat(5_000_000);
        let i = invalid(check(
            Cell::Text(&big),
            Cell::Text(GD),
            &cols(),
            loc(),
            false,
        ));
        assert!(i.key.unwrap().id.len() < 2_000);
    }

    #[test]
    fn column_matching() {
        let names: Vec<String> = ["Title", " Product_Arn", "\u{feff}ID", "GeneratorId"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(find_column(&names, Ident::Id, None), Some(2));
        assert_eq!(find_column(&names, Ident::ProductArn, None), Some(1));
        assert_eq!(find_column(&names, Ident::Id, Some("generatorid")), Some(3));
        assert_eq!(find_column(&names, Ident::Id, Some("nope")), None);

        let ocsf: Vec<String> = ["finding_info.uid", "metadata.product.uid", "finding.uid"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // OCSF 1.1 is preferred over the older finding.uid.
        assert_eq!(find_column(&ocsf, Ident::Id, None), Some(0));
        assert_eq!(find_column(&ocsf, Ident::ProductArn, None), Some(1));
    }
}
