//! The history of a load run as its clients saw it: every request with the instants it was
//! invoked and completed (nanoseconds since the run's start, one monotonic clock) and the
//! answer it got. `crebito-loader --history FILE` writes it (one JSON object a line);
//! `crebito-check` reads it, with the database's final rows, and decides whether one serial
//! order of the transactions, consistent with real time, explains every answer
//! ([`crate::check`]).

use serde::{Deserialize, Serialize};

/// One request, from the client's side. A POST retried with its `Idempotency-Key` is one
/// operation: invoked when its first attempt was sent, completed when its last answer came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub client: u32,
    pub invoke_ns: u64,
    pub complete_ns: u64,
    /// The transaction, for a POST; `None` for a GET of the statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<Tx>,
    /// The final answer's HTTP status; 0 when none came (timeout, broken connection).
    pub status: u16,
    /// An earlier attempt was ambiguous and no later answer settled it (the last was a 503:
    /// that attempt refused, the earlier one possibly applied): the outcome is unknown
    /// whatever `status` says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unknown: bool,
    /// The final answer's body when it was a 200: `{"limite", "saldo"}` for a POST, the
    /// whole statement for a GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tx {
    /// "c" or "d".
    pub tipo: String,
    pub valor: i64,
    /// Unique within a run: how a stored row is matched to the request that made it.
    pub descricao: String,
}

impl Tx {
    /// The transaction's effect on the balance.
    pub fn delta(&self) -> i64 {
        if self.tipo == "c" {
            self.valor
        } else {
            -self.valor
        }
    }
}

/// What a POST's final answer tells the client about its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// 200: applied, exactly once.
    Applied,
    /// 422 (over the limit) or any other 4xx, and 503 (refused before reaching the store,
    /// or the store certainly did not apply it): not applied.
    NotApplied,
    /// No answer, or another 5xx (504: the store did not answer in time; 502: the connection
    /// broke): the outcome is unknown, either way is correct.
    Unknown,
}

impl Op {
    pub fn fate(&self) -> Fate {
        if self.unknown {
            return Fate::Unknown;
        }
        match self.status {
            200 => Fate::Applied,
            400..=499 | 503 => Fate::NotApplied,
            _ => Fate::Unknown,
        }
    }
}

/// The database's final rows: every client (id, limite, saldo) and every stored transaction
/// (cliente_id, seq, valor, tipo, descricao), as `stress/ledger.sql` exports them. Within a
/// client, `seq` is the order the transactions were applied in (each numbers itself from the
/// client's counter, under the client's row lock).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ledger {
    pub clientes: Vec<(u32, i64, i64)>,
    pub transacoes: Vec<Row>,
}

/// A stored transaction: (cliente_id, seq, valor, tipo, descricao).
pub type Row = (u32, i64, i64, String, String);
