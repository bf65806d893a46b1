//! Order inference for the black-box mode: a search for one serial order of a client's
//! operations, consistent with real time, that explains every answer.
//!
//! This is the search of Wing & Gong as Lowe improved it (a cache of the states already
//! found to lead nowhere), the way Porcupine (anishathalye/porcupine) checks a history:
//! depth first, each step linearizing one operation that real time allows next, a dead end
//! backtracking. Porcupine's partitioning is the per-client split of [`crate::blackbox`].
//! What is specific to this API:
//!
//! - the state is the balance and the ten newest transactions (what a statement shows);
//!   the cache key is that state and the set of operations placed, hashed (Zobrist keys);
//! - a statement or a refusal (422) changes nothing, so when one fits where the search
//!   stands it is placed there and then, without branching: any order that places it later
//!   can place it here;
//! - an unknown outcome (no answer, 502, 504) may be applied at any point after it was
//!   invoked, any number of them in a row, or never. Those no statement lists and of one
//!   amount are interchangeable: the search applies the earliest invoked first, so k of
//!   them cost k + 1 states, not k!;
//! - it runs twice at most. First with an unknown outcome applied only where it brings the
//!   balance to what an operation real time allows next wants, in one hop or two (or where a
//!   statement lists it), on a short budget: a history of a correct server is explained so,
//!   and a wrong turn is undone at once instead of trying every subset of the unknowns where
//!   it got stuck. When that finds no order, the whole search (any number of hops) decides,
//!   trying the one- and two-hop bridges first. The first pass also leaves out the unknowns
//!   given up on more than five seconds before: each one kept is one more bridge by
//!   coincidence, and a long history accumulates hundreds;
//! - the search counts its steps and gives up past a budget: the verdict is then
//!   "undecided", never a pass and never a violation.

use crate::history::Op;
use std::collections::{HashMap, HashSet};

/// How old an unknown outcome may be for the first pass to apply it: 5 s.
const RECENT_NS: u64 = 5_000_000_000;

/// An entry of the ten newest that no statement lists: which one it is cannot matter.
pub(crate) const UNLISTED: u32 = u32::MAX;
/// A statement's entry that no transaction of the client is: it never matches.
pub(crate) const NOMATCH: u32 = u32::MAX - 1;

/// An operation every order must place.
pub(crate) enum Kind {
    /// A POST answered 200: the balance before it, its effect, its entry id.
    Post { before: i64, delta: i64, entry: u32 },
    /// A statement: its total and its entries' ids, newest first.
    Statement { total: i64, list: Vec<u32> },
    /// A debit refused as over the limit (422).
    Refusal { valor: i64 },
}

pub(crate) struct Definite<'a> {
    pub op: &'a Op,
    pub kind: Kind,
}

/// A POST whose outcome is unknown: applied once, or never.
pub(crate) struct Maybe<'a> {
    pub op: &'a Op,
    pub delta: i64,
    /// Its entry id, [`UNLISTED`] when no statement lists it.
    pub entry: u32,
}

/// One client's problem.
pub(crate) struct Problem<'a> {
    pub limite: i64,
    pub balance: i64,
    /// The newest entries at the start, newest first (at most ten).
    pub tail: Vec<u32>,
    pub definite: Vec<Definite<'a>>,
    pub maybe: Vec<Maybe<'a>>,
    /// A 422 is explained when the debit would end strictly below `-limite` (strict), or at
    /// `-limite` too (relaxed: the boundary's contract finding, reported by the rules).
    pub strict: bool,
}

/// What the search concluded.
pub(crate) enum Outcome<'a> {
    /// The POSTs applied, in order.
    Order(Vec<&'a Op>),
    /// No order: where the deepest attempt stood.
    NoOrder(Deepest),
    /// The budget ran out after this many steps.
    GaveUp(usize),
}

/// The deepest partial order the search reached.
pub(crate) struct Deepest {
    pub placed: usize,
    pub balance: i64,
    /// The definite operation real time asked for next (the first unplaced by completion).
    pub wanted: Option<usize>,
    /// The last definite operation placed.
    pub last: Option<usize>,
}

#[derive(Clone, Copy)]
enum Move {
    Definite(u32),
    /// An unknown a statement lists.
    Listed(u32),
    /// The next of an amount's interchangeable unknowns.
    Class(u32),
}

struct Undo {
    mv: Move,
    balance: i64,
    tail: [u32; 10],
    len: u8,
    zobrist: u128,
    inv_front: usize,
    comp_front: usize,
}

#[derive(PartialEq, Eq, Hash)]
struct Key {
    zobrist: u128,
    balance: i64,
    tail: [u32; 10],
    len: u8,
}

/// splitmix64: the Zobrist keys, deterministic.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn key128(a: u64, b: u64) -> u128 {
    let x = mix(a.wrapping_mul(0x1000_0000_01B3) ^ mix(b));
    ((x as u128) << 64) | mix(x ^ b.rotate_left(17)) as u128
}

struct Frame {
    moves: Vec<Move>,
    next: usize,
    /// The unknowns were added to `moves` (they are tried after the definite moves).
    widened: bool,
    undo: Option<Undo>,
}

struct Search<'p, 'a> {
    p: &'p Problem<'a>,
    invoke: Vec<u64>,
    complete: Vec<u64>,
    by_invoke: Vec<u32>,
    by_complete: Vec<u32>,
    rank_complete: Vec<usize>,
    /// Unknowns some statement lists (indices into `maybe`).
    listed: Vec<u32>,
    /// Unknowns no statement lists, by amount, earliest invoked first.
    classes: Vec<(i64, Vec<u32>)>,
    // The state.
    balance: i64,
    tail: [u32; 10],
    len: u8,
    zobrist: u128,
    placed: Vec<bool>,
    nplaced: usize,
    applied: Vec<bool>,
    class_next: Vec<u32>,
    inv_front: usize,
    comp_front: usize,
    /// The first pass: unknowns only as one-hop bridges (or listed).
    bridges_only: bool,
}

/// Searches for an order; `budget` bounds the steps (each step and each candidate
/// examined counts one).
pub(crate) fn search<'a>(p: &Problem<'a>, budget: usize) -> Outcome<'a> {
    let n = p.definite.len();
    let invoke: Vec<u64> = p.definite.iter().map(|d| d.op.invoke_ns).collect();
    let complete: Vec<u64> = p.definite.iter().map(|d| d.op.complete_ns).collect();
    let mut by_invoke: Vec<u32> = (0..n as u32).collect();
    by_invoke.sort_by_key(|&i| (invoke[i as usize], complete[i as usize]));
    let mut by_complete: Vec<u32> = (0..n as u32).collect();
    by_complete.sort_by_key(|&i| (complete[i as usize], invoke[i as usize]));
    let mut rank_complete = vec![0; n];
    for (r, &i) in by_complete.iter().enumerate() {
        rank_complete[i as usize] = r;
    }
    let mut listed = Vec::new();
    let mut class_of: HashMap<i64, usize> = HashMap::new();
    let mut classes: Vec<(i64, Vec<u32>)> = Vec::new();
    let mut order: Vec<u32> = (0..p.maybe.len() as u32).collect();
    order.sort_by_key(|&i| p.maybe[i as usize].op.invoke_ns);
    for i in order {
        let m = &p.maybe[i as usize];
        if m.entry != UNLISTED {
            listed.push(i);
        } else {
            let c = *class_of.entry(m.delta).or_insert_with(|| {
                classes.push((m.delta, Vec::new()));
                classes.len() - 1
            });
            classes[c].1.push(i);
        }
    }
    let mut tail = [UNLISTED; 10];
    for (slot, e) in tail.iter_mut().zip(&p.tail) {
        *slot = *e;
    }
    let mut s = Search {
        p,
        invoke,
        complete,
        by_invoke,
        by_complete,
        rank_complete,
        listed,
        class_next: vec![0; classes.len()],
        classes,
        balance: p.balance,
        tail,
        len: p.tail.len().min(10) as u8,
        zobrist: 0,
        placed: vec![false; n],
        nplaced: 0,
        applied: vec![false; p.maybe.len()],
        inv_front: 0,
        comp_front: 0,
        bridges_only: true,
    };
    // The first pass is cut short: a correct history takes a few steps per operation there.
    let first = s.run(budget.min(1_000_000 + 50 * (n + p.maybe.len())));
    if let Outcome::Order(_) = first {
        return first;
    }
    s.bridges_only = false;
    s.run(budget)
}

impl<'a> Search<'_, 'a> {
    fn key(&self) -> Key {
        Key {
            zobrist: self.zobrist,
            balance: self.balance,
            tail: self.tail,
            len: self.len,
        }
    }

    /// The earliest completion among the definite operations not placed: nothing invoked
    /// after it may come next.
    fn horizon(&self) -> u64 {
        self.by_complete
            .get(self.comp_front)
            .map_or(u64::MAX, |&i| self.complete[i as usize])
    }

    fn push_entry(&mut self, entry: u32) {
        self.tail.copy_within(0..9, 1);
        self.tail[0] = entry;
        self.len = (self.len + 1).min(10);
    }

    fn apply(&mut self, mv: Move) -> Undo {
        let undo = Undo {
            mv,
            balance: self.balance,
            tail: self.tail,
            len: self.len,
            zobrist: self.zobrist,
            inv_front: self.inv_front,
            comp_front: self.comp_front,
        };
        match mv {
            Move::Definite(i) => {
                let i = i as usize;
                if let Kind::Post { delta, entry, .. } = self.p.definite[i].kind {
                    self.balance += delta;
                    self.push_entry(entry);
                }
                self.placed[i] = true;
                self.nplaced += 1;
                self.zobrist ^= key128(1, i as u64);
                while self
                    .by_invoke
                    .get(self.inv_front)
                    .is_some_and(|&j| self.placed[j as usize])
                {
                    self.inv_front += 1;
                }
                while self
                    .by_complete
                    .get(self.comp_front)
                    .is_some_and(|&j| self.placed[j as usize])
                {
                    self.comp_front += 1;
                }
            }
            Move::Listed(j) => {
                let m = &self.p.maybe[j as usize];
                self.balance += m.delta;
                self.push_entry(m.entry);
                self.applied[j as usize] = true;
                self.zobrist ^= key128(2, j as u64);
            }
            Move::Class(c) => {
                let k = self.class_next[c as usize];
                self.balance += self.classes[c as usize].0;
                self.push_entry(UNLISTED);
                self.class_next[c as usize] = k + 1;
                self.zobrist ^= key128(3 + c as u64, k as u64);
            }
        }
        undo
    }

    fn undo(&mut self, u: Undo) {
        match u.mv {
            Move::Definite(i) => {
                self.placed[i as usize] = false;
                self.nplaced -= 1;
            }
            Move::Listed(j) => self.applied[j as usize] = false,
            Move::Class(c) => self.class_next[c as usize] -= 1,
        }
        self.balance = u.balance;
        self.tail = u.tail;
        self.len = u.len;
        self.zobrist = u.zobrist;
        self.inv_front = u.inv_front;
        self.comp_front = u.comp_front;
    }

    fn fits(&self, kind: &Kind) -> bool {
        match kind {
            Kind::Post { before, .. } => *before == self.balance,
            Kind::Statement { total, list } => {
                *total == self.balance
                    && list.len() == self.len as usize
                    && list.iter().zip(&self.tail).all(|(a, b)| a == b)
            }
            Kind::Refusal { valor } => {
                let after = self.balance - valor;
                if self.p.strict {
                    after < -self.p.limite
                } else {
                    after <= -self.p.limite
                }
            }
        }
    }

    /// The definite moves from here: a statement or refusal that fits alone (placing it now
    /// loses nothing), else every acknowledged POST that fits, earliest answered first.
    fn definite_moves(&self, work: &mut usize) -> Vec<Move> {
        let horizon = self.horizon();
        let mut posts = Vec::new();
        for &i in &self.by_invoke[self.inv_front..] {
            *work += 1;
            let i = i as usize;
            if self.invoke[i] > horizon {
                break;
            }
            if self.placed[i] {
                continue;
            }
            let kind = &self.p.definite[i].kind;
            if self.fits(kind) {
                match kind {
                    Kind::Post { .. } => posts.push(i as u32),
                    _ => return vec![Move::Definite(i as u32)],
                }
            }
        }
        posts.sort_by_key(|&i| self.rank_complete[i as usize]);
        posts.into_iter().map(Move::Definite).collect()
    }

    /// The unknowns that may be applied here; those that bring the balance to what an
    /// operation real time allows next wants first.
    fn maybe_moves(&self, work: &mut usize) -> Vec<Move> {
        let horizon = self.horizon();
        let mut wanted = HashSet::new();
        // A refusal wants the balance below its debit's threshold.
        let mut below = i64::MIN;
        for &i in &self.by_invoke[self.inv_front..] {
            *work += 1;
            let i = i as usize;
            if self.invoke[i] > horizon {
                break;
            }
            match &self.p.definite[i].kind {
                Kind::Post { before, .. } if !self.placed[i] => {
                    wanted.insert(*before);
                }
                Kind::Statement { total, .. } if !self.placed[i] => {
                    wanted.insert(*total);
                }
                Kind::Refusal { valor } if !self.placed[i] => {
                    below = below.max(valor - self.p.limite);
                }
                _ => {}
            }
        }
        let floor = -self.p.limite;
        // The unknowns that may be applied here, and how many of each amount (two is enough
        // to know).
        let mut candidates: Vec<(Move, i64)> = Vec::new();
        let mut amounts: HashMap<i64, usize> = HashMap::new();
        // The first pass considers the unknowns answered (given up on) in the last few
        // seconds only: a server applies what it was asked soon or never, and every older
        // one kept as a candidate makes bridges by coincidence more likely the longer the
        // history.
        let recent =
            |op: &Op| !self.bridges_only || op.complete_ns.saturating_add(RECENT_NS) >= horizon;
        for &j in &self.listed {
            *work += 1;
            let m = &self.p.maybe[j as usize];
            if m.op.invoke_ns > horizon {
                break;
            }
            if !self.applied[j as usize] && recent(m.op) {
                candidates.push((Move::Listed(j), m.delta));
                *amounts.entry(m.delta).or_default() += 1;
            }
        }
        for (c, (delta, ops)) in self.classes.iter().enumerate() {
            *work += 1;
            let k = self.class_next[c] as usize;
            let eligible = |k: usize| {
                ops.get(k)
                    .is_some_and(|&j| self.p.maybe[j as usize].op.invoke_ns <= horizon)
            };
            // The newest of the class that real time allows.
            let newest = ops.partition_point(|&j| self.p.maybe[j as usize].op.invoke_ns <= horizon);
            if eligible(k) && recent(self.p.maybe[ops[newest - 1] as usize].op) {
                candidates.push((Move::Class(c as u32), *delta));
                *amounts.entry(*delta).or_default() += 1 + usize::from(eligible(k + 1));
            }
        }
        // The most recent first.
        candidates.sort_by_key(|&(mv, _)| {
            std::cmp::Reverse(match mv {
                Move::Listed(j) => self.p.maybe[j as usize].op.invoke_ns,
                Move::Class(c) => {
                    let k = self.class_next[c as usize] as usize;
                    self.p.maybe[self.classes[c as usize].1[k] as usize]
                        .op
                        .invoke_ns
                }
                Move::Definite(_) => 0,
            })
        });
        // One hop to what is wanted, then two, then the rest (not in the first pass but
        // for the unknowns a statement lists).
        let (mut one, mut two, mut rest) = (Vec::new(), Vec::new(), Vec::new());
        for (mv, delta) in candidates {
            *work += 1;
            let after = self.balance + delta;
            if after < floor {
                continue;
            }
            if wanted.contains(&after) || after < below {
                one.push(mv);
            } else if wanted.iter().any(|w| {
                let need = w - after;
                amounts
                    .get(&need)
                    .is_some_and(|&k| k > usize::from(need == delta))
            }) {
                two.push(mv);
            } else if !self.bridges_only || matches!(mv, Move::Listed(_)) {
                rest.push(mv);
            }
        }
        one.extend(two);
        one.extend(rest);
        one
    }

    fn run(&mut self, budget: usize) -> Outcome<'a> {
        let n = self.p.definite.len();
        let mut visited: HashSet<Key> = HashSet::new();
        let mut frames: Vec<Frame> = Vec::new();
        let mut work = 0usize;
        let mut deepest = Deepest {
            placed: 0,
            balance: self.balance,
            wanted: self.by_complete.first().map(|&i| i as usize),
            last: None,
        };
        'arrive: loop {
            work += 1;
            if work > budget {
                self.unwind(frames);
                return Outcome::GaveUp(work);
            }
            if self.nplaced == n {
                return Outcome::Order(self.applied_posts(&frames));
            }
            if self.nplaced > deepest.placed {
                deepest = Deepest {
                    placed: self.nplaced,
                    balance: self.balance,
                    wanted: self.by_complete.get(self.comp_front).map(|&i| i as usize),
                    last: frames.iter().rev().find_map(|f| match f.undo.as_ref()?.mv {
                        Move::Definite(i) => Some(i as usize),
                        _ => None,
                    }),
                };
            }
            let fresh = visited.insert(self.key());
            let moves = if fresh {
                self.definite_moves(&mut work)
            } else {
                Vec::new()
            };
            // A read that fits was placed alone: nothing else need be tried here.
            let widened = !fresh
                || moves
                    .first()
                    .is_some_and(|&m| matches!(m, Move::Definite(i) if !matches!(self.p.definite[i as usize].kind, Kind::Post { .. })));
            frames.push(Frame {
                moves,
                next: 0,
                widened,
                undo: None,
            });
            loop {
                let Some(f) = frames.last_mut() else {
                    return Outcome::NoOrder(deepest);
                };
                if let Some(u) = f.undo.take() {
                    self.undo(u);
                }
                let f = frames.last_mut().expect("a frame");
                if f.next == f.moves.len() && !f.widened {
                    f.widened = true;
                    let more = self.maybe_moves(&mut work);
                    frames.last_mut().expect("a frame").moves.extend(more);
                }
                let f = frames.last_mut().expect("a frame");
                if f.next < f.moves.len() {
                    let mv = f.moves[f.next];
                    f.next += 1;
                    let u = self.apply(mv);
                    frames.last_mut().expect("a frame").undo = Some(u);
                    continue 'arrive;
                }
                frames.pop();
                work += 1;
                if work > budget {
                    self.unwind(frames);
                    return Outcome::GaveUp(work);
                }
            }
        }
    }

    /// Back to the state the search started from.
    fn unwind(&mut self, mut frames: Vec<Frame>) {
        while let Some(f) = frames.pop() {
            if let Some(u) = f.undo {
                self.undo(u);
            }
        }
    }

    /// The POSTs the frames applied, in order.
    fn applied_posts(&self, frames: &[Frame]) -> Vec<&'a Op> {
        let mut taken = vec![0usize; self.classes.len()];
        frames
            .iter()
            .filter_map(|f| f.undo.as_ref().map(|u| u.mv))
            .filter_map(|mv| match mv {
                Move::Definite(i) => match self.p.definite[i as usize].kind {
                    Kind::Post { .. } => Some(self.p.definite[i as usize].op),
                    _ => None,
                },
                Move::Listed(j) => Some(self.p.maybe[j as usize].op),
                Move::Class(c) => {
                    let k = taken[c as usize];
                    taken[c as usize] += 1;
                    Some(self.p.maybe[self.classes[c as usize].1[k] as usize].op)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::fixtures::post;

    #[test]
    fn a_thousand_interchangeable_unknowns_cost_a_thousand_states() {
        // A thousand unknown credits of 1, then an acknowledged debit that needs 700 of them.
        let ops: Vec<Op> = (0..1000)
            .map(|i| post("c", 1, &format!("u{i}"), 0, 10, 504, None))
            .chain([post("d", 1, "z", 20, 21, 200, Some(699))])
            .collect();
        let p = Problem {
            limite: 0,
            balance: 0,
            tail: Vec::new(),
            definite: vec![Definite {
                op: &ops[1000],
                kind: Kind::Post {
                    before: 700,
                    delta: -1,
                    entry: UNLISTED,
                },
            }],
            maybe: ops[..1000]
                .iter()
                .map(|op| Maybe {
                    op,
                    delta: 1,
                    entry: UNLISTED,
                })
                .collect(),
            strict: true,
        };
        match search(&p, 100_000) {
            Outcome::Order(o) => assert_eq!(o.len(), 701),
            _ => panic!("no order found"),
        }
    }
}
