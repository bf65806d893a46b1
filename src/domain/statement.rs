//! What the API answers: a balance after a transaction, and a statement.

use serde::Serialize;

use super::{Amount, Kind, Timestamp};

/// The answer to an accepted transaction: `{"limite": 100000, "saldo": -9098}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Balance {
    pub limite: i64,
    pub saldo: i64,
}

/// One line of `ultimas_transacoes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementEntry {
    pub valor: i64,
    #[serde(serialize_with = "kind_str")]
    pub tipo: Kind,
    pub descricao: String,
    pub realizada_em: Timestamp,
}

/// A stored row that no accepted transaction could have produced (a `tipo` other than
/// `c`/`d`, a `valor` out of range): the store is corrupt, and the row is not shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt stored transaction: {0}")]
pub struct CorruptEntry(&'static str);

impl StatementEntry {
    /// Decodes one stored transaction, as both stores read it: the only place where a
    /// row becomes a statement line.
    pub fn decode(
        valor: i64,
        tipo: &str,
        descricao: String,
        realizada_em_us: i64,
    ) -> Result<StatementEntry, CorruptEntry> {
        let amount = Amount::new(valor).map_err(|_| CorruptEntry("valor out of range"))?;
        let tipo = Kind::parse(tipo).map_err(|_| CorruptEntry("tipo is neither c nor d"))?;
        Ok(StatementEntry {
            valor: i64::from(amount.get()),
            tipo,
            descricao,
            realizada_em: Timestamp::from_micros(realizada_em_us),
        })
    }
}

fn kind_str<S: serde::Serializer>(k: &Kind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

/// `GET /clientes/{id}/extrato`: the balance now and at most the 10 newest transactions,
/// newest first by insertion order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub saldo: StatementBalance,
    pub ultimas_transacoes: Vec<StatementEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StatementBalance {
    pub total: i64,
    pub data_extrato: Timestamp,
    pub limite: i64,
}

impl Statement {
    /// How many transactions a statement lists.
    pub const LAST: usize = 10;

    pub fn new(balance: Balance, entries: Vec<StatementEntry>) -> Statement {
        Statement {
            saldo: StatementBalance {
                total: balance.saldo,
                data_extrato: Timestamp::now(),
                limite: balance.limite,
            },
            ultimas_transacoes: entries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_stored_rows_and_refuses_corrupt_ones() {
        let e = StatementEntry::decode(5, "d", "pix".into(), 0).unwrap();
        assert_eq!((e.valor, e.tipo), (5, Kind::Debit));
        assert_eq!(
            StatementEntry::decode(5, "c", "pix".into(), 0)
                .unwrap()
                .tipo,
            Kind::Credit
        );
        for (valor, tipo) in [
            (5, "x"),
            (5, ""),
            (5, "D"),
            (0, "c"),
            (-1, "d"),
            (1 << 31, "c"),
        ] {
            assert!(
                StatementEntry::decode(valor, tipo, "pix".into(), 0).is_err(),
                "{valor} {tipo}"
            );
        }
    }

    #[test]
    fn serialises_to_the_contract_shape() {
        let s = Statement {
            saldo: StatementBalance {
                total: -9098,
                data_extrato: Timestamp::from_micros(1_705_458_881_217_753),
                limite: 100000,
            },
            ultimas_transacoes: vec![StatementEntry {
                valor: 90000,
                tipo: Kind::Debit,
                descricao: "descricao".into(),
                realizada_em: Timestamp::from_micros(1_705_458_878_543_030),
            }],
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"saldo":{"total":-9098,"data_extrato":"2024-01-17T02:34:41.217753Z","limite":100000},"ultimas_transacoes":[{"valor":90000,"tipo":"d","descricao":"descricao","realizada_em":"2024-01-17T02:34:38.543030Z"}]}"#
        );
        assert_eq!(
            serde_json::to_string(&Balance {
                limite: 100000,
                saldo: -9098
            })
            .unwrap(),
            r#"{"limite":100000,"saldo":-9098}"#
        );
    }
}
