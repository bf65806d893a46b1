//! One user of the simulation: a new TCP connection, one HTTP/1.1 request, the answer read
//! to the end, and Gatling's checks applied to it.
//!
//! A hand-written client on purpose: what matters here is the loader's own CPU per request
//! (k6 spends ~0.8 ms, which on two cores makes it the bottleneck it is supposed to
//! measure), and one request on a fresh connection needs nothing an HTTP library adds.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::schedule::Scenario;
use crebito_loader::history;

/// What the client concluded from one attempt, as Gatling would count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every check passed.
    Ok,
    /// A status the scenario does not accept (a 5xx, a 404…).
    Status,
    /// An accepted status whose body is not the contract's JSON.
    Body,
    /// `saldo < -limite`, or a balance that is not an integer: the contest's fine.
    Inconsistent,
    /// No complete answer within the timeout.
    Timeout,
    /// Could not connect, or the connection broke before a complete answer.
    Connection,
}

impl Outcome {
    /// "Ambiguous": the effect of a POST with this outcome is unknown to the client (no
    /// complete answer, or a 5xx other than 503: [`history::ambiguous`], the one rule).
    pub fn ambiguous(self, status: u16) -> bool {
        matches!(self, Outcome::Timeout | Outcome::Connection) || history::ambiguous(status)
    }

    /// Worth sending again with the same Idempotency-Key: ambiguous, or refused with 503
    /// (not applied, retry).
    pub fn retryable(self, status: u16) -> bool {
        self.ambiguous(status) || status == 503
    }
}

/// One POST's transaction, for the ledger audit against the client's own log.
#[derive(Debug, Clone, Copy)]
pub struct Post {
    pub client: u32,
    pub credit: bool,
    pub valor: u32,
    /// Ten alphanumeric characters, unique within a run.
    pub descricao: [u8; 10],
}

pub struct Answer {
    pub outcome: Outcome,
    /// 0 when there was no answer.
    pub status: u16,
    /// The whole response, when the caller keeps a history (moved, never copied).
    pub response: Option<Vec<u8>>,
    /// The answer carried `Idempotent-Replayed: true`: it is the stored answer of an earlier
    /// request with the same key.
    pub replayed: bool,
    /// How long the answer asked the client to wait before asking again (`Retry-After` in
    /// delay-seconds: [`retry_after`]).
    pub retry_after: Option<Duration>,
}

/// The request bytes for one user.
pub fn render(scenario: Scenario, client: u32, post: Option<&Post>, idempotent: bool) -> Vec<u8> {
    let mut req = Vec::with_capacity(256);
    match (scenario, post) {
        (Scenario::Extratos, _) | (_, None) => {
            req.extend_from_slice(
                format!("GET /clientes/{client}/extrato HTTP/1.1\r\n").as_bytes(),
            );
            req.extend_from_slice(
                b"Host: localhost\r\nUser-Agent: Agente do Caos - 2024/Q1\r\nConnection: close\r\n\r\n",
            );
        }
        (_, Some(p)) => {
            let d = std::str::from_utf8(&p.descricao).expect("ascii");
            let body = format!(
                r#"{{"valor": {}, "tipo": "{}", "descricao": "{d}"}}"#,
                p.valor,
                if p.credit { 'c' } else { 'd' }
            );
            req.extend_from_slice(
                format!(
                    "POST /clientes/{client}/transacoes HTTP/1.1\r\nHost: localhost\r\n\
                     User-Agent: Agente do Caos - 2024/Q1\r\ncontent-type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            if idempotent {
                req.extend_from_slice(format!("Idempotency-Key: {d}\r\n").as_bytes());
            }
            req.extend_from_slice(b"\r\n");
            req.extend_from_slice(body.as_bytes());
        }
    }
    req
}

/// Sends `req` on a new connection and judges the answer for `scenario`; with `keep`, the
/// answer carries the response's bytes too.
pub async fn send(
    addr: SocketAddr,
    req: &[u8],
    scenario: Scenario,
    timeout: Duration,
    keep: bool,
) -> Answer {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        s.write_all(req).await?;
        let mut buf = Vec::with_capacity(1024);
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => {
            return Answer {
                outcome: Outcome::Timeout,
                status: 0,
                response: None,
                replayed: false,
                retry_after: None,
            };
        }
        Ok(Err(_)) => {
            return Answer {
                outcome: Outcome::Connection,
                status: 0,
                response: None,
                replayed: false,
                retry_after: None,
            };
        }
        Ok(Ok(buf)) => buf,
    };
    let mut answer = judge(scenario, &buf);
    answer.replayed = replayed(&buf);
    answer.retry_after = retry_after(&buf);
    if keep {
        answer.response = Some(buf);
    }
    answer
}

/// Whether the response's head carries `Idempotent-Replayed: true` (any case).
pub fn replayed(response: &[u8]) -> bool {
    header(response, b"idempotent-replayed").is_some_and(|v| v.eq_ignore_ascii_case(b"true"))
}

/// The response head's `Retry-After` (any case), when its value is delay-seconds (RFC 9110
/// §10.2.3: digits only, crebito's and nginx's `1`). An HTTP-date, an empty or negative value,
/// anything that is not a whole number of seconds, is ignored: `None`, as if absent. Only the
/// first `Retry-After` counts, and only in the head (never a body's text).
pub fn retry_after(response: &[u8]) -> Option<Duration> {
    let value = header(response, b"retry-after")?;
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value)
        .ok()?
        .parse()
        .ok()
        .map(Duration::from_secs)
}

/// The value of the first header called `name` (lower case; matched in any case) in the
/// response's head, trimmed; never a body's text.
fn header<'a>(response: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(response.len());
    response[..head_end]
        .split(|&b| b == b'\n')
        .skip(1) // the status line
        .find_map(|line| {
            let (key, value) = line.split_at(line.iter().position(|&b| b == b':')?);
            key.eq_ignore_ascii_case(name)
                .then(|| value[1..].trim_ascii())
        })
}

/// The body of a complete HTTP response (after the blank line), if there is one.
pub fn body(response: &[u8]) -> Option<&[u8]> {
    let at = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some(&response[at + 4..])
}

/// Gatling's checks (spec §2.1 G–I): débitos accept 200 or 422, créditos only 200,
/// extratos any 2xx; every accepted balance must be an integer with `saldo >= -limite`.
pub fn judge(scenario: Scenario, response: &[u8]) -> Answer {
    let Some(status) = response
        .get(9..12)
        .filter(|_| response.starts_with(b"HTTP/1."))
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse::<u16>().ok())
    else {
        return Answer {
            outcome: Outcome::Connection,
            status: 0,
            response: None,
            replayed: false,
            retry_after: None,
        };
    };
    let accepted = match scenario {
        Scenario::Debitos => status == 200 || status == 422,
        Scenario::Creditos => status == 200,
        Scenario::Extratos => (200..300).contains(&status),
    };
    if !accepted {
        return Answer {
            outcome: Outcome::Status,
            status,
            response: None,
            replayed: false,
            retry_after: None,
        };
    }
    if status == 422 {
        return Answer {
            outcome: Outcome::Ok,
            status,
            response: None,
            replayed: false,
            retry_after: None,
        };
    }
    let Some(json) =
        body(response).and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
    else {
        return Answer {
            outcome: Outcome::Body,
            status,
            response: None,
            replayed: false,
            retry_after: None,
        };
    };
    let (saldo, limite) = match scenario {
        Scenario::Extratos => (&json["saldo"]["total"], &json["saldo"]["limite"]),
        _ => (&json["saldo"], &json["limite"]),
    };
    let outcome = match (saldo.as_i64(), limite.as_i64()) {
        (Some(s), Some(l)) if s >= -l => Outcome::Ok,
        _ => Outcome::Inconsistent,
    };
    Answer {
        outcome,
        status,
        response: None,
        replayed: false,
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(scenario: Scenario, raw: &str) -> (Outcome, u16) {
        let a = judge(scenario, raw.as_bytes());
        (a.outcome, a.status)
    }

    #[test]
    fn gatling_checks() {
        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 30\r\n\r\n{\"limite\":1000,\"saldo\":-1000}";
        assert_eq!(answer(Scenario::Debitos, ok), (Outcome::Ok, 200));
        assert_eq!(answer(Scenario::Creditos, ok), (Outcome::Ok, 200));
        let over = "HTTP/1.1 200 OK\r\n\r\n{\"limite\":1000,\"saldo\":-1001}";
        assert_eq!(answer(Scenario::Debitos, over).0, Outcome::Inconsistent);
        let refused = "HTTP/1.1 422 Unprocessable Entity\r\n\r\nover the limit";
        assert_eq!(answer(Scenario::Debitos, refused), (Outcome::Ok, 422));
        assert_eq!(answer(Scenario::Creditos, refused), (Outcome::Status, 422));
        let down = "HTTP/1.1 503 Service Unavailable\r\n\r\nstore unavailable";
        assert_eq!(answer(Scenario::Debitos, down), (Outcome::Status, 503));
        assert!(!Outcome::Status.ambiguous(503) && Outcome::Status.retryable(503));
        assert!(Outcome::Status.ambiguous(504) && Outcome::Status.ambiguous(502));
        assert!(Outcome::Timeout.ambiguous(0) && Outcome::Connection.ambiguous(0));
        assert!(!Outcome::Status.ambiguous(404) && !Outcome::Status.retryable(404));
        let extrato = "HTTP/1.1 200 OK\r\n\r\n{\"saldo\":{\"total\":-5,\"limite\":5,\"data_extrato\":\"x\"},\"ultimas_transacoes\":[]}";
        assert_eq!(answer(Scenario::Extratos, extrato).0, Outcome::Ok);
        let not_int = "HTTP/1.1 200 OK\r\n\r\n{\"limite\":1000,\"saldo\":1.5}";
        assert_eq!(answer(Scenario::Creditos, not_int).0, Outcome::Inconsistent);
        assert_eq!(
            answer(Scenario::Creditos, "HTTP/1.1 200 OK\r\n\r\nnope").0,
            Outcome::Body
        );
        assert_eq!(answer(Scenario::Creditos, "").0, Outcome::Connection);
        assert!(replayed(
            b"HTTP/1.1 200 OK\r\nIdempotent-Replayed: true\r\ncontent-length: 2\r\n\r\n{}"
        ));
        assert!(!replayed(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"));
        assert!(!replayed(
            b"HTTP/1.1 200 OK\r\n\r\nIdempotent-Replayed: true\r\n"
        ));
        assert_eq!(
            answer(Scenario::Creditos, "HTTP/1.1 20").0,
            Outcome::Connection
        );
    }

    #[test]
    fn retry_after_is_delay_seconds_from_the_head_or_nothing() {
        let with = |value: &str| {
            retry_after(
                format!("HTTP/1.1 503 Service Unavailable\r\nRetry-After: {value}\r\ncontent-length: 6\r\n\r\nretry\n")
                    .as_bytes(),
            )
        };
        // A number of seconds, as crebito and nginx send it (any case, any spacing).
        assert_eq!(with("1"), Some(Duration::from_secs(1)));
        assert_eq!(with("120"), Some(Duration::from_secs(120)));
        assert_eq!(with("0"), Some(Duration::ZERO));
        assert_eq!(
            retry_after(b"HTTP/1.1 504 Gateway Timeout\r\nretry-after:\t2 \r\n\r\n"),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(b"HTTP/1.1 503 x\r\nRETRY-AFTER: 3\r\nRetry-After: 9\r\n\r\n"),
            Some(Duration::from_secs(3)),
            "the first one"
        );
        // Absent.
        assert_eq!(
            retry_after(b"HTTP/1.1 503 x\r\ncontent-length: 0\r\n\r\n"),
            None
        );
        assert_eq!(retry_after(b""), None);
        // An HTTP-date: ignored, as is every value that is not a whole number of seconds.
        assert_eq!(with("Fri, 31 Dec 1999 23:59:59 GMT"), None);
        for garbage in [
            "",
            "-1",
            "1.5",
            "1s",
            "+1",
            "one",
            "1 2",
            "99999999999999999999999",
        ] {
            assert_eq!(with(garbage), None, "{garbage:?}");
        }
        // Only the head counts: neither the status line nor the body.
        assert_eq!(
            retry_after(b"HTTP/1.1 503 x\r\ncontent-length: 16\r\n\r\nRetry-After: 1\r\n"),
            None
        );
        assert_eq!(retry_after(b"Retry-After: 1\r\n\r\n"), None);
        // A name that only starts like it.
        assert_eq!(
            retry_after(b"HTTP/1.1 503 x\r\nRetry-After-Not: 1\r\n\r\n"),
            None
        );
    }

    #[test]
    fn renders_the_official_requests() {
        let p = Post {
            client: 3,
            credit: false,
            valor: 42,
            descricao: *b"abcdefghij",
        };
        let r = String::from_utf8(render(Scenario::Debitos, 3, Some(&p), true)).unwrap();
        assert!(r.starts_with("POST /clientes/3/transacoes HTTP/1.1\r\n"));
        assert!(r.ends_with(r#"{"valor": 42, "tipo": "d", "descricao": "abcdefghij"}"#));
        assert!(r.contains("Idempotency-Key: abcdefghij\r\n"));
        let body_len = r.split("\r\n\r\n").nth(1).unwrap().len();
        assert!(r.contains(&format!("Content-Length: {body_len}\r\n")));
        let g = String::from_utf8(render(Scenario::Extratos, 5, None, false)).unwrap();
        assert!(g.starts_with("GET /clientes/5/extrato HTTP/1.1\r\n") && g.ends_with("\r\n\r\n"));
    }

    #[test]
    fn no_answer_is_always_status_0_so_the_status_alone_says_ambiguous() {
        for o in [Outcome::Timeout, Outcome::Connection] {
            assert!(o.ambiguous(0) && o.retryable(0) && history::ambiguous(0));
        }
        assert_eq!(judge(Scenario::Debitos, b"garbage").status, 0);
    }
}
