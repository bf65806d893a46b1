//! The clients' retry budget: how many refused POSTs may be sent again, as a share of the
//! POSTs sent for the first time.
//!
//! Why: a POST refused with 503 was not applied, so sending it again is safe but optional,
//! and during an outage every POST is refused. Without a budget each one keeps coming back
//! until the outage ends, and the stack meets, on top of the new requests, the whole outage's
//! worth of retries at once: at 4× the official rate a 10 s freeze of PostgreSQL left about
//! 13 000 of them, and new requests were served normally only 9 s after the thaw
//! (docs/reports/faults/freeze-4x). A client library that retries keeps such a budget for that
//! reason: Finagle's `RetryBudget` (20 % of requests, plus a reserve), gRPC's retry throttling
//! (a token bucket), the SRE book's "Handling Overload" (a per-client budget of 10 %).
//!
//! The bucket starts with a reserve of [`RESERVE`] tokens and never holds more. Each POST's
//! first attempt adds `share` of a token; each budgeted retry takes one, and a retry that
//! finds less than one is not sent: the POST ends refused (503, not applied), which the
//! client was already told. Retries that settle an unknown outcome (the POST had an ambiguous
//! answer: a timeout, a broken connection, a 5xx other than 503) are never budgeted: leaving
//! them unsent would leave the client not knowing whether its money moved.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The most tokens the bucket holds, and what it starts with: a short outage's refusals can
/// all be retried at once, a long one's cannot.
pub const RESERVE: u64 = 100;

/// Tokens are counted in thousandths, so that shares add up exactly.
const MILLI: u64 = 1000;

/// A retry budget shared by every user of the run.
#[derive(Debug)]
pub struct Budget {
    /// Tokens added per first attempt; `None`: unlimited (every refused POST is retried).
    share: Option<f64>,
    /// The same share in thousandths of a token.
    share_milli: u64,
    /// What the bucket holds, in thousandths of a token.
    tokens: Mutex<u64>,
    /// Retries the budget did not allow.
    denied: AtomicU64,
}

/// `--retry-budget`'s value: a share of first attempts, or `None` (`off`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share(pub Option<f64>);

impl Budget {
    /// A full bucket refilled by `share` of a token per first attempt (`None`: no budget).
    pub fn new(share: Option<f64>) -> Budget {
        Budget {
            share,
            share_milli: share.map_or(0, |s| (s * MILLI as f64).round() as u64),
            tokens: Mutex::new(RESERVE * MILLI),
            denied: AtomicU64::new(0),
        }
    }

    /// A POST was sent for the first time.
    pub fn sent(&self) {
        if self.share.is_some() {
            let mut tokens = self.tokens.lock().expect("not poisoned");
            *tokens = (*tokens + self.share_milli).min(RESERVE * MILLI);
        }
    }

    /// Whether a refused POST may be sent again: takes a token when there is one.
    pub fn retry(&self) -> bool {
        let Some(_) = self.share else { return true };
        let mut tokens = self.tokens.lock().expect("not poisoned");
        if *tokens >= MILLI {
            *tokens -= MILLI;
            true
        } else {
            self.denied.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// The share it was built with (`None`: no budget).
    pub fn share(&self) -> Option<f64> {
        self.share
    }

    /// How many retries it did not allow.
    pub fn denied(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }
}

/// `--retry-budget`: a share of first attempts (a number ≥ 0, e.g. 0.2), or `off` for none.
pub fn parse_share(s: &str) -> Result<Share, String> {
    if s == "off" {
        return Ok(Share(None));
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Share(Some(v))),
        _ => Err(format!(
            "{s:?}: a number ≥ 0 (a share of first attempts) or \"off\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many retries the bucket grants, asked `asks` times.
    fn granted(budget: &Budget, asks: usize) -> usize {
        (0..asks).filter(|_| budget.retry()).count()
    }

    #[test]
    fn the_reserve_is_spent_then_each_first_attempt_earns_its_share() {
        let budget = Budget::new(Some(0.2));
        assert_eq!(
            granted(&budget, 1000),
            RESERVE as usize,
            "the reserve, then none"
        );
        for _ in 0..50 {
            budget.sent();
        }
        assert_eq!(granted(&budget, 1000), 10, "50 first attempts × 0.2");
    }

    #[test]
    fn the_bucket_never_holds_more_than_its_reserve() {
        let budget = Budget::new(Some(0.5));
        for _ in 0..10_000 {
            budget.sent();
        }
        assert_eq!(granted(&budget, 10_000), RESERVE as usize);
    }

    #[test]
    fn a_share_of_zero_allows_the_reserve_only_and_off_allows_everything() {
        let none = Budget::new(Some(0.0));
        for _ in 0..1000 {
            none.sent();
        }
        assert_eq!(granted(&none, 1000), RESERVE as usize);
        assert_eq!(granted(&none, 1000), 0);
        assert_eq!(none.denied(), 1900, "every retry refused is counted");
        let off = Budget::new(None);
        assert_eq!(granted(&off, 100_000), 100_000);
    }

    #[test]
    fn parses_a_share_or_off() {
        assert_eq!(parse_share("0.2"), Ok(Share(Some(0.2))));
        assert_eq!(parse_share("0"), Ok(Share(Some(0.0))));
        assert_eq!(parse_share("off"), Ok(Share(None)));
        for bad in ["-0.1", "NaN", "inf", "", "lots"] {
            assert!(parse_share(bad).is_err(), "{bad}");
        }
    }
}
