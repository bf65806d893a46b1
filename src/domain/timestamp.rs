//! Timestamps as the contract prints them: RFC 3339, UTC, microseconds, `Z`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch. Formatting is done by hand into a stack buffer
/// (`2024-01-17T02:34:41.217753Z`, always 27 bytes) so a statement allocates nothing per entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    pub fn now() -> Timestamp {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_micros() as i64)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// Writes the RFC 3339 form. Years outside 0000..=9999 are clamped to that range,
    /// which no clock this service runs on will produce.
    pub fn to_rfc3339(self) -> [u8; 27] {
        const MIN: i64 = -62_167_219_200_000_000; // 0000-01-01T00:00:00Z
        const MAX: i64 = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999Z
        let micros = self.0.clamp(MIN, MAX);
        let secs = micros.div_euclid(1_000_000);
        let frac = micros.rem_euclid(1_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);

        let mut out = *b"0000-00-00T00:00:00.000000Z";
        put(&mut out[0..4], y as u32);
        put(&mut out[5..7], m);
        put(&mut out[8..10], d);
        put(&mut out[11..13], sod / 3600);
        put(&mut out[14..16], sod / 60 % 60);
        put(&mut out[17..19], sod % 60);
        put(&mut out[20..26], frac);
        out
    }
}

fn put(dst: &mut [u8], mut value: u32) {
    for b in dst.iter_mut().rev() {
        *b = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let buf = self.to_rfc3339();
        // Only ASCII digits and separators were written.
        serializer.serialize_str(std::str::from_utf8(&buf).expect("ASCII"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fmt(micros: i64) -> String {
        String::from_utf8(Timestamp::from_micros(micros).to_rfc3339().to_vec()).unwrap()
    }

    #[test]
    fn known_instants() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(fmt(1_705_458_881_217_753), "2024-01-17T02:34:41.217753Z");
        assert_eq!(fmt(951_782_400_000_001), "2000-02-29T00:00:00.000001Z");
        assert_eq!(fmt(-1), "1969-12-31T23:59:59.999999Z");
    }

    proptest! {
        #[test]
        fn agrees_with_the_time_crate(micros in -62_167_219_200_000_000i64..=253_402_300_799_999_999) {
            let dt = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).unwrap();
            let expected = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                dt.year(), u8::from(dt.month()), dt.day(), dt.hour(), dt.minute(), dt.second(), dt.microsecond()
            );
            prop_assert_eq!(fmt(micros), expected);
        }
    }
}
