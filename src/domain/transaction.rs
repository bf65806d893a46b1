//! A transaction as posted to `POST /clientes/{id}/transacoes`.

use std::borrow::Cow;

use serde::Deserialize;

/// Why a request body is not a transaction. Every variant is answered with 422 and a short,
/// stable message ([`Rejection::message`]); none of them carries internal detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    Amount,
    Kind,
    Description,
}

impl Rejection {
    /// The one-line reason sent to the client (static: no formatting on the error path).
    pub fn message(self) -> &'static str {
        match self {
            Rejection::Malformed => {
                "body must be a JSON object with exactly valor (positive integer), tipo (\"c\" or \"d\") and descricao (1 to 10 characters)"
            }
            Rejection::Amount => "valor must be a positive integer no larger than 2147483647",
            Rejection::Kind => "tipo must be \"c\" or \"d\"",
            Rejection::Description => "descricao must be a string of 1 to 10 characters",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Rejection {}

/// A positive amount in cents, at most `i32::MAX` (the `INTEGER` column that stores it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(i32);

impl Amount {
    pub const MAX: i64 = i32::MAX as i64;

    pub fn new(value: i64) -> Result<Amount, Rejection> {
        if (1..=Self::MAX).contains(&value) {
            Ok(Amount(value as i32))
        } else {
            Err(Rejection::Amount)
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// Credit (`"c"`) or debit (`"d"`). Nothing else, not even `"C"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Credit,
    Debit,
}

impl Kind {
    pub fn parse(s: &str) -> Result<Kind, Rejection> {
        match s {
            "c" => Ok(Kind::Credit),
            "d" => Ok(Kind::Debit),
            _ => Err(Rejection::Kind),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Credit => "c",
            Kind::Debit => "d",
        }
    }
}

/// A description of 1 to 10 characters (Unicode scalar values, not bytes), stored inline:
/// 10 characters take at most 40 bytes of UTF-8, so parsing one never allocates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Description {
    bytes: [u8; Description::MAX_BYTES],
    len: u8,
}

impl Description {
    pub const MAX_CHARS: usize = 10;
    const MAX_BYTES: usize = 4 * Self::MAX_CHARS;

    pub fn parse(s: &str) -> Result<Description, Rejection> {
        let chars = s.chars().count();
        if chars == 0 || chars > Self::MAX_CHARS {
            return Err(Rejection::Description);
        }
        let mut bytes = [0u8; Self::MAX_BYTES];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Ok(Description {
            bytes,
            len: s.len() as u8,
        })
    }

    pub fn as_str(&self) -> &str {
        // The bytes were copied from a `&str` and never changed.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).expect("valid UTF-8")
    }
}

impl std::fmt::Debug for Description {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// A valid transaction: only [`Transaction::parse_json`] and [`Transaction::new`] make one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transaction {
    pub amount: Amount,
    pub kind: Kind,
    pub description: Description,
}

/// The body as it arrives. Fields are optional so that a missing one and a `null` one get
/// the same field-specific answer; unknown fields and duplicates are refused by serde.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    valor: Option<serde_json::Number>,
    #[serde(borrow)]
    tipo: Option<Cow<'a, str>>,
    #[serde(borrow)]
    descricao: Option<Cow<'a, str>>,
}

impl Transaction {
    pub fn new(amount: Amount, kind: Kind, description: Description) -> Transaction {
        Transaction {
            amount,
            kind,
            description,
        }
    }

    /// Parses a request body. Any input — truncated, nested, huge numbers, invalid UTF-8 —
    /// ends in `Ok` or a [`Rejection`], never in a panic.
    pub fn parse_json(body: &[u8]) -> Result<Transaction, Rejection> {
        // serde would also accept a struct written as an array (`[1, "c", "x"]`): only an
        // object is the contract.
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(Rejection::Malformed);
        }
        let wire: Wire<'_> = serde_json::from_slice(body).map_err(|_| Rejection::Malformed)?;
        // `as_i64` is `None` for fractions (1.2, 1.0), exponents and integers beyond i64.
        let amount = wire
            .valor
            .and_then(|n| n.as_i64())
            .ok_or(Rejection::Amount)
            .and_then(Amount::new)?;
        let kind = Kind::parse(wire.tipo.as_deref().ok_or(Rejection::Kind)?)?;
        let description =
            Description::parse(wire.descricao.as_deref().ok_or(Rejection::Description)?)?;
        Ok(Transaction::new(amount, kind, description))
    }

    /// The signed change this transaction makes to a balance.
    pub fn delta(&self) -> i64 {
        match self.kind {
            Kind::Credit => i64::from(self.amount.get()),
            Kind::Debit => -i64::from(self.amount.get()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<Transaction, Rejection> {
        Transaction::parse_json(s.as_bytes())
    }

    #[test]
    fn accepts_the_contract_example() {
        let t = parse(r#"{"valor": 1000, "tipo": "c", "descricao": "descricao"}"#).unwrap();
        assert_eq!(t.amount.get(), 1000);
        assert_eq!(t.kind, Kind::Credit);
        assert_eq!(t.description.as_str(), "descricao");
        assert_eq!(t.delta(), 1000);
        let d = parse(r#"{"tipo":"d","descricao":"x","valor":7}"#).unwrap();
        assert_eq!(d.delta(), -7);
    }

    #[test]
    fn the_official_invalid_payloads_are_rejected() {
        assert_eq!(
            parse(r#"{"valor": 1.2, "tipo": "d", "descricao": "devolve"}"#),
            Err(Rejection::Amount)
        );
        assert_eq!(
            parse(r#"{"valor": 1, "tipo": "x", "descricao": "devolve"}"#),
            Err(Rejection::Kind)
        );
        assert_eq!(
            parse(r#"{"valor": 1, "tipo": "c", "descricao": "123456789 e mais um pouco"}"#),
            Err(Rejection::Description)
        );
        assert_eq!(
            parse(r#"{"valor": 1, "tipo": "c", "descricao": ""}"#),
            Err(Rejection::Description)
        );
        assert_eq!(
            parse(r#"{"valor": 1, "tipo": "c", "descricao": null}"#),
            Err(Rejection::Description)
        );
    }

    #[test]
    fn the_cases_the_contest_never_sent_are_rejected() {
        let cases = [
            (
                r#"{"valor": 0, "tipo": "c", "descricao": "a"}"#,
                Rejection::Amount,
            ),
            (
                r#"{"valor": -5, "tipo": "c", "descricao": "a"}"#,
                Rejection::Amount,
            ),
            (
                r#"{"valor": 1.0, "tipo": "c", "descricao": "a"}"#,
                Rejection::Amount,
            ),
            (
                r#"{"valor": 1e3, "tipo": "c", "descricao": "a"}"#,
                Rejection::Amount,
            ),
            (
                r#"{"valor": 2147483648, "tipo": "c", "descricao": "a"}"#,
                Rejection::Amount,
            ),
            (
                r#"{"valor": 99999999999999999999999, "tipo": "c", "descricao": "a"}"#,
                Rejection::Amount,
            ),
            (
                r#"{"valor": null, "tipo": "c", "descricao": "a"}"#,
                Rejection::Amount,
            ),
            (r#"{"tipo": "c", "descricao": "a"}"#, Rejection::Amount),
            (
                r#"{"valor": "1", "tipo": "c", "descricao": "a"}"#,
                Rejection::Malformed,
            ),
            (
                r#"{"valor": 1, "tipo": "C", "descricao": "a"}"#,
                Rejection::Kind,
            ),
            (
                r#"{"valor": 1, "tipo": "cd", "descricao": "a"}"#,
                Rejection::Kind,
            ),
            (r#"{"valor": 1, "descricao": "a"}"#, Rejection::Kind),
            (r#"{"valor": 1, "tipo": "c"}"#, Rejection::Description),
            (
                r#"{"valor": 1, "tipo": "c", "descricao": 5}"#,
                Rejection::Malformed,
            ),
            (
                r#"{"valor": 1, "tipo": "c", "descricao": "a", "extra": 1}"#,
                Rejection::Malformed,
            ),
            (
                r#"{"valor": 1, "valor": 2, "tipo": "c", "descricao": "a"}"#,
                Rejection::Malformed,
            ),
            (r#"[1, "c", "a"]"#, Rejection::Malformed),
            ("", Rejection::Malformed),
            ("null", Rejection::Malformed),
            (
                r#"{"valor": 1, "tipo": "c", "descricao": "a""#,
                Rejection::Malformed,
            ),
            (
                r#"{"valor": 1, "tipo": "c", "descricao": "a"} trailing"#,
                Rejection::Malformed,
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(parse(body), Err(expected), "{body}");
        }
        assert_eq!(
            Transaction::parse_json(b"{\"valor\":1,\"tipo\":\"c\",\"descricao\":\"\xff\"}"),
            Err(Rejection::Malformed)
        );
    }

    #[test]
    fn description_counts_characters_not_bytes() {
        let t = parse(r#"{"valor": 1, "tipo": "c", "descricao": "ação💸ção€ñ"}"#).unwrap();
        assert_eq!(t.description.as_str(), "ação💸ção€ñ");
        assert_eq!(t.description.as_str().chars().count(), 10);
        assert_eq!(
            parse(r#"{"valor": 1, "tipo": "c", "descricao": "💸💸💸💸💸💸💸💸💸💸"}"#)
                .unwrap()
                .description
                .as_str()
                .len(),
            40
        );
        assert_eq!(
            parse(r#"{"valor": 1, "tipo": "c", "descricao": "💸💸💸💸💸💸💸💸💸💸💸"}"#),
            Err(Rejection::Description)
        );
        // JSON escapes are decoded before counting.
        let e = parse(r#"{"valor": 1, "tipo": "c", "descricao": "\u00e7\n\"x"}"#).unwrap();
        assert_eq!(e.description.as_str(), "ç\n\"x");
    }

    #[test]
    fn bounds_of_amount() {
        assert!(Amount::new(1).is_ok());
        assert!(Amount::new(Amount::MAX).is_ok());
        assert_eq!(Amount::new(0), Err(Rejection::Amount));
        assert_eq!(Amount::new(Amount::MAX + 1), Err(Rejection::Amount));
    }

    /// The contract's limit on `valor`, written out (2³¹ − 1), not taken from the code under test.
    const CONTRACT_MAX: i64 = 2_147_483_647;

    /// A valid body, as a template for mutated inputs.
    const VALID: &str = r#"{"valor": 1000, "tipo": "d", "descricao": "descricao"}"#;

    /// `valor` literals: mostly in the contract's range, its edges on both sides, any i64,
    /// floats and other JSON types.
    fn valor() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (1..=CONTRACT_MAX).prop_map(|v| v.to_string()),
            3 => proptest::sample::select(vec![0, 1, 2, CONTRACT_MAX - 1, CONTRACT_MAX, CONTRACT_MAX + 1, -1, i64::MAX, i64::MIN])
                .prop_map(|v| v.to_string()),
            1 => any::<i64>().prop_map(|v| v.to_string()),
            1 => any::<f64>().prop_filter("finite", |v| v.is_finite()).prop_map(|v| format!("{v:?}")),
            1 => proptest::sample::select(vec!["null", "\"1\"", "1.0", "1e3", "true", "[]"]).prop_map(str::to_string),
        ]
    }

    fn tipo() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => proptest::sample::select(vec!["\"c\"", "\"d\""]).prop_map(str::to_string),
            1 => "\"[a-zA-Z]{0,3}\"",
            1 => proptest::sample::select(vec!["null", "1", "\"C\"", "\"D\""]).prop_map(str::to_string),
        ]
    }

    /// `descricao`: mostly 1 to 10 characters (any Unicode), the edges 0, 10 and 11, other types.
    fn descricao() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "\\PC{1,10}",
            2 => "\\PC{0}|\\PC{10}|\\PC{11}",
            1 => "\\PC{0,14}",
        ]
        .prop_map(|s| serde_json::to_string(&s).unwrap())
        .boxed()
        .prop_union(
            proptest::sample::select(vec!["null", "[]", "7"])
                .prop_map(str::to_string)
                .boxed(),
        )
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..256),
                // Past the leading `{`: a valid body with bytes changed, cut or appended.
                (0..VALID.len(), any::<u8>()).prop_map(|(at, b)| {
                    let mut v = VALID.as_bytes().to_vec();
                    v[at] = b;
                    v
                }),
                (0..VALID.len()).prop_map(|at| VALID.as_bytes()[..at].to_vec()),
                proptest::collection::vec(any::<u8>(), 0..64).prop_map(|tail| {
                    let mut v = b"{\"valor\": ".to_vec();
                    v.extend(tail);
                    v
                }),
            ]
        ) {
            let _ = Transaction::parse_json(&bytes);
        }

        #[test]
        fn arbitrary_json_values_are_valid_only_when_the_contract_says_so(
            valor in valor(),
            tipo in tipo(),
            descricao in descricao(),
        ) {
            let body = format!(r#"{{"valor": {valor}, "tipo": {tipo}, "descricao": {descricao}}}"#);
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let expected_ok = v["valor"].as_i64().is_some_and(|n| (1..=CONTRACT_MAX).contains(&n))
                && valor.bytes().all(|b| b == b'-' || b.is_ascii_digit())
                && matches!(v["tipo"].as_str(), Some("c" | "d"))
                && v["descricao"].as_str().is_some_and(|s| (1..=10).contains(&s.chars().count()));
            let parsed = Transaction::parse_json(body.as_bytes());
            prop_assert_eq!(parsed.is_ok(), expected_ok, "{}", body);
            if let Ok(t) = parsed {
                prop_assert_eq!(i64::from(t.amount.get()), v["valor"].as_i64().unwrap());
                prop_assert_eq!(t.kind.as_str(), v["tipo"].as_str().unwrap());
                prop_assert_eq!(t.description.as_str(), v["descricao"].as_str().unwrap());
            }
        }
    }
}
