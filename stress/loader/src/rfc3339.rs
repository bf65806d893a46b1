//! `realizada_em` as an instant: RFC 3339 (`2024-01-17T02:34:41.217753Z`), with any number
//! of fraction digits (Go trims trailing zeros: ".12Z") and a `Z` or a `±hh:mm` offset.
//! Compared as text, ".12Z" would come before ".125Z" and an offset would order wrongly.
//! The parsing is the `time` crate's (its well-known RFC 3339 description); RFC 3339's own
//! note lets a space stand for the `T`, which that parser does not take, so it is swapped in.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Nanoseconds since 1970-01-01T00:00:00Z, or `None` when `s` is not RFC 3339.
pub fn parse(s: &str) -> Option<i128> {
    let parsed = if s.as_bytes().get(10) == Some(&b' ') {
        OffsetDateTime::parse(&format!("{}T{}", &s[..10], &s[11..]), &Rfc3339)
    } else {
        OffsetDateTime::parse(s, &Rfc3339)
    };
    parsed.ok().map(OffsetDateTime::unix_timestamp_nanos)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn instants_order_as_time_not_as_text() {
        let t = |s| parse(s).unwrap_or_else(|| panic!("{s} is RFC 3339"));
        assert_eq!(t("1970-01-01T00:00:00Z"), 0);
        assert_eq!(t("1970-01-02T00:00:00.5Z"), 86_400_500_000_000);
        // Trimmed fractions: .12 is 120 ms, before .125 (as text it would sort after).
        assert!(t("2024-01-17T02:34:41.12Z") < t("2024-01-17T02:34:41.125Z"));
        assert_eq!(
            t("2024-01-17T02:34:41.120000Z"),
            t("2024-01-17T02:34:41.12Z")
        );
        // Offsets: 01:00+01:00 is midnight UTC, before 00:30Z.
        assert_eq!(t("2024-01-17T01:00:00+01:00"), t("2024-01-17T00:00:00Z"));
        assert!(t("2024-01-17T01:00:00+01:00") < t("2024-01-17T00:30:00Z"));
        assert_eq!(t("2024-02-29T23:59:59-03:00"), t("2024-03-01T02:59:59Z"));
        assert_eq!(
            t("2024-01-17 02:34:41.217753z"),
            t("2024-01-17T02:34:41.217753Z")
        );
        for bad in [
            "",
            "2024-01-17",
            "2024-01-17T02:34:41",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-17T02:34:41.Z",
            "2024-01-17T02:34:41+0100",
            "2024-01-17T02:34:41Zx",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
