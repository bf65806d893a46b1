//! `realizada_em` as an instant: RFC 3339 (`2024-01-17T02:34:41.217753Z`), with any number
//! of fraction digits (Go trims trailing zeros: ".12Z") and a `Z` or a `±hh:mm` offset.
//! Compared as text, ".12Z" would come before ".125Z" and an offset would order wrongly.

/// Nanoseconds since 1970-01-01T00:00:00Z, or `None` when `s` is not RFC 3339.
pub fn parse(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let sep = |at: usize, c: &[u8]| b.get(at).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    let mut nanos: i128 = 0;
    if sep(at, b".") {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 9 {
                nanos = nanos * 10 + i128::from(b[at] - b'0');
            }
            at += 1;
        }
        if at == start {
            return None;
        }
        for _ in (at - start)..9 {
            nanos *= 10;
        }
    }
    let offset = match b.get(at)? {
        b'Z' | b'z' if at + 1 == b.len() => 0,
        &c @ (b'+' | b'-') if at + 6 == b.len() && sep(at + 3, b":") => {
            let (h, m) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if c == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset * 60;
    Some(i128::from(seconds) * 1_000_000_000 + nanos)
}

fn days_in(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
