//! ASFF vocabulary the emulator needs: the enums it filters and updates on,
//! the Severity Label/Normalized mapping, and ASFF timestamps.
//!
//! Only what the three emulated operations touch; this is not a full ASFF
//! model (findings are otherwise kept as the JSON the provider sent).

use std::time::{SystemTime, UNIX_EPOCH};

macro_rules! asff_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub(crate) enum $name { $($variant),+ }

        // Not every enum needs every helper.
        #[allow(dead_code)]
        impl $name {
            pub(crate) const ALL: &'static [$name] = &[$($name::$variant),+];

            pub(crate) fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub(crate) fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The allowed values, for error messages.
            pub(crate) fn allowed() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

asff_enum!(
    /// `Workflow.Status`.
    WorkflowStatus { New = "NEW", Notified = "NOTIFIED", Resolved = "RESOLVED", Suppressed = "SUPPRESSED" }
);
asff_enum!(
    /// `Severity.Label`.
    SeverityLabel {
        Informational = "INFORMATIONAL",
        Low = "LOW",
        Medium = "MEDIUM",
        High = "HIGH",
        Critical = "CRITICAL",
    }
);
asff_enum!(
    /// `RecordState`.
    RecordState { Active = "ACTIVE", Archived = "ARCHIVED" }
);
asff_enum!(
    /// `Compliance.Status`.
    ComplianceStatus { Passed = "PASSED", Warning = "WARNING", Failed = "FAILED", NotAvailable = "NOT_AVAILABLE" }
);
asff_enum!(
    /// `VerificationState`.
    VerificationState {
        Unknown = "UNKNOWN",
        TruePositive = "TRUE_POSITIVE",
        FalsePositive = "FALSE_POSITIVE",
        BenignPositive = "BENIGN_POSITIVE",
    }
);
asff_enum!(
    /// The retired `WorkflowState` (only validated, never changed).
    WorkflowState {
        New = "NEW",
        Assigned = "ASSIGNED",
        InProgress = "IN_PROGRESS",
        Deferred = "DEFERRED",
        Resolved = "RESOLVED",
    }
);

impl SeverityLabel {
    /// Label derived from a Normalized score (docs/service-facts.md §8.1).
    pub(crate) fn from_normalized(n: u8) -> SeverityLabel {
        match n {
            0 => SeverityLabel::Informational,
            1..=39 => SeverityLabel::Low,
            40..=69 => SeverityLabel::Medium,
            70..=89 => SeverityLabel::High,
            _ => SeverityLabel::Critical,
        }
    }

    /// Normalized score derived from a Label (docs/service-facts.md §8.1).
    pub(crate) fn normalized(self) -> u8 {
        match self {
            SeverityLabel::Informational => 0,
            SeverityLabel::Low => 1,
            SeverityLabel::Medium => 40,
            SeverityLabel::High => 70,
            SeverityLabel::Critical => 90,
        }
    }
}

/// True when `s` matches the model's `NonEmptyString` pattern `.*\S.*`
/// (Smithy patterns are not anchored, so: at least one non-space character).
pub(crate) fn is_non_empty(s: &str) -> bool {
    s.chars().any(|c| !(c.is_whitespace() || c == '\u{FEFF}'))
}

/// Parses an ASFF timestamp (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM)`,
/// up to 9 fractional digits, offsets within ±18:00) to Unix milliseconds
/// (nanoseconds are rounded to milliseconds, as the service does).
pub(crate) fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b[i] == b'.' {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let digits = end - start;
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = num(start..end)? * 10i64.pow((9 - digits) as u32);
        i = end;
    }
    let offset_minutes = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let h = i64::from(h1 - b'0') * 10 + i64::from(h2 - b'0');
            let m = i64::from(m1 - b'0') * 10 + i64::from(m2 - b'0');
            if m > 59 || h * 60 + m > 18 * 60 {
                return None;
            }
            if *sign == b'-' {
                -(h * 60 + m)
            } else {
                h * 60 + m
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(secs * 1_000 + (nanos + 500_000) / 1_000_000)
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn format_timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1_000);
    let millis = ms.rem_euclid(1_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// The current time as an ASFF timestamp.
pub(crate) fn now_timestamp() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    format_timestamp(ms)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The partition a Region name belongs to (docs/service-facts.md §10).
pub(crate) fn partition_of_region(region: &str) -> &'static str {
    const TABLE: &[(&str, &str)] = &[
        ("us-gov-", "aws-us-gov"),
        ("us-isob-", "aws-iso-b"),
        ("us-isof-", "aws-iso-f"),
        ("us-iso-", "aws-iso"),
        ("eu-isoe-", "aws-iso-e"),
        ("eusc-", "aws-eusc"),
        ("cn-", "aws-cn"),
    ];
    TABLE
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map_or("aws", |(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_mapping_matches_reference() {
        let cases = [
            (0, "INFORMATIONAL"),
            (1, "LOW"),
            (39, "LOW"),
            (40, "MEDIUM"),
            (69, "MEDIUM"),
            (70, "HIGH"),
            (89, "HIGH"),
            (90, "CRITICAL"),
            (100, "CRITICAL"),
        ];
        for (n, label) in cases {
            assert_eq!(SeverityLabel::from_normalized(n).as_str(), label, "{n}");
        }
        assert_eq!(SeverityLabel::Medium.normalized(), 40);
        assert_eq!(SeverityLabel::parse("HIGH"), Some(SeverityLabel::High));
        assert_eq!(SeverityLabel::parse("high"), None);
    }

    #[test]
    fn non_empty_pattern() {
        assert!(is_non_empty("a"));
        assert!(is_non_empty("  x\n"));
        assert!(!is_non_empty(""));
        assert!(!is_non_empty(" \t\n\u{00A0}\u{FEFF}"));
    }

    #[test]
    fn timestamps_parse_and_format() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("2020-03-22T13:22:13.933Z"),
            Some(1_584_883_333_933)
        );
        assert_eq!(
            parse_timestamp("2020-03-22T15:22:13.933+02:00"),
            parse_timestamp("2020-03-22T13:22:13.933Z")
        );
        assert_eq!(
            parse_timestamp("2020-03-22T12:22:13.933-0100"),
            parse_timestamp("2020-03-22T13:22:13.933Z")
        );
        assert_eq!(
            parse_timestamp("2020-03-22T13:22:13.9339999Z"),
            Some(1_584_883_333_934)
        );
        for bad in [
            "2020-03-22",
            "2020-02-30T00:00:00Z",
            "2020-03-22T13:22:13",
            "2020-03-22T13:22:13.Z",
            "2020-03-22T13:22:13.1234567890Z",
            "2020-03-22T13:22:13+19:00",
            "2020-03-22 13:22:13Z",
            "20x0-03-22T13:22:13Z",
            "2020-03-22T13:22:13Zjunk",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
        for ms in [
            0,
            1_584_883_333_933,
            951_782_400_000, /* 2000-02-29 */
            -1,
        ] {
            assert_eq!(parse_timestamp(&format_timestamp(ms)), Some(ms));
        }
        assert_eq!(
            format_timestamp(1_584_883_333_933),
            "2020-03-22T13:22:13.933Z"
        );
        assert!(parse_timestamp(&now_timestamp()).is_some());
    }

    #[test]
    fn partitions() {
        assert_eq!(partition_of_region("us-east-1"), "aws");
        assert_eq!(partition_of_region("cn-north-1"), "aws-cn");
        assert_eq!(partition_of_region("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_of_region("us-isob-east-1"), "aws-iso-b");
    }
}
