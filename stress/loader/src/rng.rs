//! xorshift64*: a few cycles per number, reproducible from its seed, no dependency. The
//! loader draws its requests with it, and the synthetic histories of the checker's speed
//! report (examples/synthetic_history.rs) theirs.

/// The generator's state; seed it with an odd number.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
