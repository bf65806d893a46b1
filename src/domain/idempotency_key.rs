//! `Idempotency-Key`: what lets a client retry a POST whose outcome it does not know.
//!
//! The first request with a key applies the transaction and stores the key with its answer,
//! in the same database transaction; a later request with the same key (and client) gets
//! the stored answer and applies nothing. A key is 1 to 64 visible ASCII characters
//! (`!` to `~`: a UUID, a ULID, a counter…); anything else is refused with 422 before the
//! store is asked.

use super::Transaction;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

/// Why a header value is not a key (answered 422 with [`InvalidKey::MESSAGE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", Self::MESSAGE)]
pub struct InvalidKey;

impl InvalidKey {
    pub const MESSAGE: &'static str = "Idempotency-Key must be 1 to 64 visible ASCII characters";
}

impl IdempotencyKey {
    pub const MAX_LEN: usize = 64;

    pub fn parse(value: &[u8]) -> Result<IdempotencyKey, InvalidKey> {
        if value.is_empty()
            || value.len() > Self::MAX_LEN
            || !value.iter().all(|b| (b'!'..=b'~').contains(b))
        {
            return Err(InvalidKey);
        }
        // Visible ASCII is UTF-8.
        Ok(IdempotencyKey(String::from_utf8_lossy(value).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Transaction {
    /// What a key is bound to: the same key with a different request is refused. Stable
    /// across versions (stored with the key).
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}",
            self.amount.get(),
            self.kind.as_str(),
            self.description.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_1_to_64_visible_ascii_characters() {
        for ok in [
            "a",
            "550e8400-e29b-41d4-a716-446655440000",
            &"x".repeat(64),
            "!~",
        ] {
            assert_eq!(IdempotencyKey::parse(ok.as_bytes()).unwrap().as_str(), ok);
        }
        for bad in ["", " ", "a b", &"x".repeat(65), "é", "a\tb", "a\0"] {
            assert_eq!(
                IdempotencyKey::parse(bad.as_bytes()),
                Err(InvalidKey),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_fingerprint_tells_requests_apart() {
        let t = |b: &str| Transaction::parse_json(b.as_bytes()).unwrap().fingerprint();
        let a = t(r#"{"valor": 5, "tipo": "d", "descricao": "pix"}"#);
        assert_eq!(a, "5|d|pix");
        assert_eq!(a, t(r#"{"descricao": "pix", "tipo": "d", "valor": 5}"#));
        assert_ne!(a, t(r#"{"valor": 5, "tipo": "c", "descricao": "pix"}"#));
    }
}
