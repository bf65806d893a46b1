//! The client id taken from the URL path.

/// A client id as it appears in `/clientes/{id}/...`: decimal digits only, positive, and
/// small enough for the `INTEGER` column that stores it.
///
/// Anything else (`abc`, `-1`, `1.0`, `99999999999`) is not a client that can exist, so the
/// HTTP layer answers 404 for it — the same as for a well-formed id nobody registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(i32);

impl ClientId {
    /// Parses a path segment. Leading `+`, whitespace, signs and non-ASCII digits are refused;
    /// leading zeros are not significant (`01` and `0001` are client 1, whatever their length).
    pub fn parse(segment: &str) -> Option<ClientId> {
        if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let segment = segment.trim_start_matches('0');
        if segment.is_empty() || segment.len() > 10 {
            return None;
        }
        // At most 10 ASCII digits: fits an i64 without overflow.
        let value: i64 = segment
            .bytes()
            .fold(0, |acc, b| acc * 10 + i64::from(b - b'0'));
        if value == 0 || value > i64::from(i32::MAX) {
            return None;
        }
        Some(ClientId(value as i32))
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_plain_positive_integers() {
        assert_eq!(ClientId::parse("1").map(ClientId::get), Some(1));
        assert_eq!(ClientId::parse("0005").map(ClientId::get), Some(5));
        assert_eq!(
            ClientId::parse("2147483647").map(ClientId::get),
            Some(i32::MAX)
        );
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1.0",
            "abc",
            "2147483648",
            "99999999999",
            "١",
            "0x1",
            "1e3",
        ] {
            assert_eq!(ClientId::parse(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in ".*") {
            let _ = ClientId::parse(&s);
        }

        #[test]
        fn round_trips_every_positive_i32(n in 1..=i32::MAX) {
            prop_assert_eq!(ClientId::parse(&n.to_string()).map(ClientId::get), Some(n));
        }
    }
}
