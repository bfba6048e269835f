//! Helpers for tests of this crate and of its users: a deterministic random source, so property
//! and fuzz-style tests need no dependency and every failure is reproducible from its seed.

/// xorshift64: fast, deterministic, good enough to generate test inputs (not for anything else).
#[derive(Clone, Debug)]
pub struct XorShift(pub u64);

impl XorShift {
    // Not an Iterator: the generator never ends, and tests want the u64, not an Option.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}
