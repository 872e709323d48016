//! Calendar arithmetic for timestamps gantry writes (run ids, RFC 3339 times), without a
//! time-zone database: everything is UTC.

/// (year, month, day, hour, minute, second) of a Unix time, UTC.
#[must_use]
pub fn civil(unix_seconds: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix_seconds.div_euclid(86_400);
    let seconds_of_day = unix_seconds.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = u32::try_from(day_of_year - (153 * month_index + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    })
    .unwrap_or(1);
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let part = |value: i64| u32::try_from(value).unwrap_or(0);
    (
        year,
        month,
        day,
        part(seconds_of_day / 3600),
        part(seconds_of_day % 3600 / 60),
        part(seconds_of_day % 60),
    )
}

/// RFC 3339 UTC timestamp, second precision: `2026-11-23T12:00:00Z`.
#[must_use]
pub fn rfc3339(unix_seconds: i64) -> String {
    let (year, month, day, hour, minute, second) = civil(unix_seconds);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_767_313_136), "2026-01-02T00:18:56Z");
    }
}
