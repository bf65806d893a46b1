//! The history of a load run as its clients saw it: every request with the instants it was
//! invoked and completed (nanoseconds since the run's start, one monotonic clock) and the
//! answer it got. `crebito-loader --history FILE` writes it (one JSON object a line);
//! `crebito-check` reads it, with the database's final rows, and decides whether one serial
//! order of the transactions, consistent with real time, explains every answer
//! ([`crate::check`]).

use serde::{Deserialize, Serialize};

/// One request, from the client's side. A POST retried with its `Idempotency-Key` is one
/// operation: invoked when its first attempt was sent, completed when its last answer came;
/// every attempt's answer is in `attempts`.
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
    /// Every attempt, in order, when the request was retried with its key (absent for a
    /// request answered at the first attempt, and in histories older than the field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
}

/// One attempt of a request: when it was sent, how long until its answer (or until it
/// failed), and what the answer was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Nanoseconds since the run's start.
    pub sent_ns: u64,
    pub took_ns: u64,
    /// The HTTP status; 0 when no complete answer came (timeout, broken connection).
    pub status: u16,
    /// The answer carried `Idempotent-Replayed: true`: the stored answer of an earlier
    /// attempt with the same key, nothing applied by this one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

/// Whether an answer with this status leaves a POST's outcome unknown to the client: no
/// complete answer (0), or a 5xx other than 503 (504: the store did not answer in time; 502,
/// 500: the connection broke). A 503 says "not applied" (the glossary in
/// docs/src/architecture.md): refused, not ambiguous.
pub fn ambiguous(status: u16) -> bool {
    status == 0 || (status >= 500 && status != 503)
}

/// Whether this answer to a keyed retry settles what an earlier, ambiguous attempt left
/// unknown. A 200 (fresh or replayed) or a 4xx does: the key is stored with the transaction,
/// so a retry either replays it or runs it afresh. A 503 does not: it says only that *this*
/// attempt was refused, nothing of the earlier one.
pub fn settles(status: u16) -> bool {
    !ambiguous(status) && status != 503
}

/// The client's knowledge of one POST after one more answer: unknown from the first
/// ambiguous answer until a later one settles it.
pub fn unknown_after(unknown: bool, status: u16) -> bool {
    ambiguous(status) || (unknown && !settles(status))
}

/// The attempt a replay vouches for, judged: a replay says an earlier attempt with the key
/// was stored, so one of the attempts before the first replay must have been able to store
/// it — an ambiguous one (its outcome unknown). When every attempt before it was refused (a
/// 503 or a 4xx, each "not applied"), one of those answers was false: the index of that
/// first replay. `None` when there is no replay, or it is explained.
pub fn replay_of_refused(attempts: &[Attempt]) -> Option<usize> {
    let first = attempts.iter().position(|a| a.replayed)?;
    let explained = attempts[..first].iter().any(|a| ambiguous(a.status));
    (!explained).then_some(first)
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

/// Histories for the checkers' tests: client 1, limit [`fixtures::LIMIT`], instants in ms.
#[cfg(test)]
pub(crate) mod fixtures {
    use serde_json::json;

    use super::{Op, Tx};

    pub const MS: u64 = 1_000_000;
    pub const LIMIT: i64 = 1000;

    /// A POST: answered `status`, with `saldo` in its body when it has one.
    pub fn post(
        tipo: &str,
        valor: i64,
        d: &str,
        invoke_ms: u64,
        complete_ms: u64,
        status: u16,
        saldo: Option<i64>,
    ) -> Op {
        Op {
            client: 1,
            invoke_ns: invoke_ms * MS,
            complete_ns: complete_ms * MS,
            tx: Some(Tx {
                tipo: tipo.into(),
                valor,
                descricao: d.into(),
            }),
            status,
            unknown: false,
            body: saldo.map(|s| json!({"limite": LIMIT, "saldo": s})),
            attempts: Vec::new(),
        }
    }

    /// A statement answered 200: its total and its entries, newest first.
    pub fn statement(
        invoke_ms: u64,
        complete_ms: u64,
        total: i64,
        newest_first: &[(&str, i64, &str)],
    ) -> Op {
        let list: Vec<_> = newest_first
            .iter()
            .enumerate()
            .map(|(i, (tipo, valor, d))| {
                json!({"valor": valor, "tipo": tipo, "descricao": d,
                       "realizada_em": format!("2026-01-01T00:00:{:02}.000000Z", 59 - i)})
            })
            .collect();
        Op {
            client: 1,
            invoke_ns: invoke_ms * MS,
            complete_ns: complete_ms * MS,
            tx: None,
            status: 200,
            unknown: false,
            body: Some(
                json!({"saldo": {"total": total, "limite": LIMIT, "data_extrato": "x"}, "ultimas_transacoes": list}),
            ),
            attempts: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(statuses: &[u16]) -> bool {
        statuses.iter().fold(false, |u, &s| unknown_after(u, s))
    }

    #[test]
    fn a_503_after_an_ambiguous_attempt_leaves_the_post_unknown() {
        // Refused outright: known, not applied.
        assert!(!unknown(&[503, 503]));
        // 504, then refusals until the retries ran out: the 504 may have applied it.
        assert!(unknown(&[504, 503, 503]));
        assert!(unknown(&[0, 503]));
        // Settled by a replay or a fresh answer; unsettled again by a later ambiguity.
        assert!(!unknown(&[504, 503, 200]));
        assert!(!unknown(&[504, 422]));
        assert!(unknown(&[503, 502]));
        assert!(ambiguous(0) && ambiguous(500) && ambiguous(502) && ambiguous(504));
        assert!(!ambiguous(503) && !ambiguous(200) && !ambiguous(422) && !ambiguous(404));
    }

    #[test]
    fn a_replay_is_vouched_for_by_an_ambiguous_attempt_before_it() {
        let a = |status, replayed| Attempt {
            sent_ns: 0,
            took_ns: 0,
            status,
            replayed,
        };
        assert_eq!(replay_of_refused(&[a(503, false), a(200, false)]), None);
        assert_eq!(
            replay_of_refused(&[a(503, false), a(504, false), a(200, true)]),
            None
        );
        assert_eq!(
            replay_of_refused(&[a(0, false), a(503, false), a(422, true)]),
            None
        );
        // Only refusals before the replay: one of them stored it.
        assert_eq!(
            replay_of_refused(&[a(503, false), a(503, false), a(200, true)]),
            Some(2)
        );
        // A replay at the first attempt: no attempt of this request stored it.
        assert_eq!(replay_of_refused(&[a(200, true)]), Some(0));
        // An ambiguous attempt *after* the replay explains nothing.
        assert_eq!(
            replay_of_refused(&[a(503, false), a(200, true), a(504, false)]),
            Some(1)
        );
    }
}
