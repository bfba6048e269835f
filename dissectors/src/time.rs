//! Capture timestamps.

use std::fmt;

/// A capture timestamp: nanoseconds since the Unix epoch (signed, so odd captures with dates
/// before 1970 still order correctly). Nanoseconds cover pcap's µs and ns formats and pcapng's
/// per-interface resolutions up to 1e-9 without loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    pub fn from_secs_nanos(secs: i64, nanos: u32) -> Self {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(i64::from(nanos)),
        )
    }

    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    pub fn subsec_nanos(self) -> u32 {
        // rem_euclid of a positive modulus is in 0..1e9, which fits u32.
        u32::try_from(self.0.rem_euclid(1_000_000_000)).unwrap_or(0)
    }

    /// Microseconds since the epoch, rounded toward negative infinity.
    pub fn epoch_us(self) -> i64 {
        self.0.div_euclid(1_000)
    }

    /// Signed difference `self - earlier`.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

/// A signed span between two capture timestamps, in nanoseconds. Signed because capture clocks
/// step back (loopback timestamps can go back a few µs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub i64);

impl Duration {
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole microseconds, rounded to nearest (the unit of every `*_us` field in reports).
    pub fn as_micros(self) -> i64 {
        let q = self.0.div_euclid(1_000);
        if self.0.rem_euclid(1_000) >= 500 {
            q + 1
        } else {
            q
        }
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl fmt::Display for Duration {
    /// Seconds with nine decimals, like tshark's `frame.time_relative`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(
            f,
            "{sign}{}.{:09}",
            abs / 1_000_000_000,
            abs % 1_000_000_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_timestamps_split_correctly() {
        let t = Timestamp(-1);
        assert_eq!(t.secs(), -1);
        assert_eq!(t.subsec_nanos(), 999_999_999);
    }

    #[test]
    fn micros_round_to_nearest() {
        assert_eq!(Duration(1_499).as_micros(), 1);
        assert_eq!(Duration(1_500).as_micros(), 2);
        assert_eq!(Duration(-1_500).as_micros(), -1);
        assert_eq!(Duration(1_234_567_891).to_string(), "1.234567891");
        assert_eq!(Duration(-5).to_string(), "-0.000000005");
    }
}
