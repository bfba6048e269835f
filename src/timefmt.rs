//! Timestamp rendering for reports: RFC 3339 in UTC, without a date-time dependency.

use wirelag_dissectors::Timestamp;

/// Days since 1970-01-01 to a civil (proleptic Gregorian) date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2015-06-05T20:30:41.428522Z`, microsecond precision (the precision of every `*_us` field).
pub fn rfc3339_us(ts: Timestamp) -> String {
    let secs = ts.secs();
    let micros = ts.subsec_nanos() / 1_000;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_us(Timestamp(0)), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339_us(Timestamp::from_secs_nanos(1_433_536_241, 428_522_000)),
            "2015-06-05T20:30:41.428522Z"
        );
        assert_eq!(
            rfc3339_us(Timestamp::from_secs_nanos(951_782_400, 0)),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(rfc3339_us(Timestamp(-1_000)), "1969-12-31T23:59:59.999999Z");
    }
}
