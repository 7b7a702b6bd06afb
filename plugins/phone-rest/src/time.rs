//! Formatting a Unix time in milliseconds as the API's timestamp,
//! `yyyy-MM-dd'T'HH:mm:ss.SSSZ` in UTC (Swiftarr's ISO 8601 with
//! fractional seconds). Written by hand: plugins may not import WASI clocks,
//! and no date crate is needed for one format.

const MS_PER_DAY: u64 = 86_400_000;

/// `ms` since 1970-01-01T00:00:00Z as e.g. `2026-11-22T15:28:42.123Z`.
pub fn iso8601_utc(ms: u64) -> String {
    let days = ms / MS_PER_DAY;
    let ms_of_day = ms % MS_PER_DAY;
    let (year, month, day) = civil_from_days(days);
    let seconds = ms_of_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        ms_of_day % 1000
    )
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01.
///
/// Howard Hinnant's `civil_from_days`, for non-negative day counts: count
/// in 400-year eras (146,097 days each) starting on 0000-03-01, so that the
/// leap day falls at the end of each shifted year.
pub fn civil_from_days(days: u64) -> (u64, u32, u32) {
    // Days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March (0) to February (11).
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Days since 1970-01-01 of a date, counted naively, to check against.
    fn days_from_civil_naive(year: u64, month: u32, day: u32) -> u64 {
        let leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let mut days = 0;
        for y in 1970..year {
            days += if leap(y) { 366 } else { 365 };
        }
        let lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        for m in 1..month {
            days += lengths[m as usize - 1];
            if m == 2 && leap(year) {
                days += 1;
            }
        }
        days + u64::from(day) - 1
    }

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_utc(1_732_280_004_000), "2024-11-22T12:53:24.000Z");
        assert_eq!(iso8601_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601_utc(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(iso8601_utc(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(iso8601_utc(1_795_361_322_123), "2026-11-22T15:28:42.123Z");
    }

    #[test]
    fn milliseconds_are_zero_padded() {
        assert_eq!(iso8601_utc(7), "1970-01-01T00:00:00.007Z");
        assert_eq!(iso8601_utc(61_050), "1970-01-01T00:01:01.050Z");
    }

    #[test]
    fn civil_from_days_matches_a_naive_count() {
        // Every day from 1970 to 2100 (past a century that is not leap).
        let mut days = 0;
        for year in 1970u64..2101 {
            for month in 1..=12 {
                let lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
                let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100))
                    || year.is_multiple_of(400);
                let length = lengths[month as usize - 1] + u32::from(month == 2 && leap);
                for day in 1..=length {
                    assert_eq!(days_from_civil_naive(year, month, day), days);
                    assert_eq!(civil_from_days(days), (year, month, day));
                    days += 1;
                }
            }
        }
    }
}
