//! Durations as pipeline files write them: `500ms`, `10s`, `5m`, `1h30m`.

use std::time::Duration;

/// The longest duration a pipeline may write: a year. Longer ones are typing mistakes, and
/// adding one to the clock overflowed (`timeout = "18446744073709551615h"` panicked).
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses a sequence of `<integer><unit>` parts, unit one of `ms`, `s`, `m`, `h`, `d`; at most
/// [`MAX`].
/// `12s`, or `250ms` under a second.
#[must_use]
pub fn humanize(duration: Duration) -> String {
    if duration.as_secs() >= 1 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("a duration must not be empty (write e.g. `30s`, `10m`, `1h`)".to_owned());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "`{text}` is not a duration (write e.g. `30s`, `10m`, `1h`)"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}`: number too large"))?;
        rest = &rest[digits..];
        let unit_length = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_length];
        rest = &rest[unit_length..];
        let too_long =
            || format!("`{text}` is longer than a year, the longest duration gantry takes");
        let part = match unit {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.checked_mul(60).ok_or_else(too_long)?),
            "h" => Duration::from_secs(number.checked_mul(3600).ok_or_else(too_long)?),
            "d" => Duration::from_secs(number.checked_mul(86_400).ok_or_else(too_long)?),
            "" => return Err(format!("`{text}` needs a unit: `ms`, `s`, `m`, `h` or `d`")),
            other => {
                return Err(format!(
                    "unknown duration unit `{other}` in `{text}` (use `ms`, `s`, `m`, `h`, `d`)"
                ));
            }
        };
        total = total.saturating_add(part);
        if total > MAX {
            return Err(too_long());
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn durations_past_a_year_are_refused_not_saturated() {
        assert!(parse("18446744073709551615h").is_err());
        assert!(parse("366d").is_err());
        assert!(parse("8761h").is_err());
        assert_eq!(parse("8760h"), Ok(MAX));
    }

    #[test]
    fn rejects_nonsense() {
        assert!(parse("").is_err());
        assert!(parse("10").is_err());
        assert!(parse("m").is_err());
        assert!(parse("3 weeks").is_err());
        assert!(parse("99999999999999999999s").is_err());
    }
}
