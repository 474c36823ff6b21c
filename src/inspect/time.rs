//! Commit times as people read them: the tool and the HTTP server print the same form.

/// Microseconds since the Unix epoch as an RFC 3339 UTC time, `2026-11-26T19:57:31.123456Z`.
pub fn utc_time(us: u64) -> String {
    let (secs, micros) = (us / 1_000_000, us % 1_000_000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{micros:06}Z")
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_utc() {
        assert_eq!(utc_time(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            utc_time(1_795_722_416_630_798),
            "2026-11-26T19:46:56.630798Z"
        );
        assert_eq!(
            utc_time(1_795_000_000_123_456),
            "2026-11-18T11:06:40.123456Z"
        );
        // 2024-02-29 (a leap day) and the last microsecond of 1999.
        assert_eq!(
            utc_time(1_709_164_800_000_000),
            "2024-02-29T00:00:00.000000Z"
        );
        assert_eq!(utc_time(946_684_799_999_999), "1999-12-31T23:59:59.999999Z");
    }
}
