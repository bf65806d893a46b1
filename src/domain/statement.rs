//! What the API answers: a balance after a transaction, and a statement.

use serde::Serialize;

use super::{Kind, Timestamp};

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
