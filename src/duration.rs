//! Durations as pipeline files write them: `500ms`, `10s`, `5m`, `1h30m`.

use std::time::Duration;

/// Parses a sequence of `<integer><unit>` parts, unit one of `ms`, `s`, `m`, `h`.
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
        let part = match unit {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            "" => return Err(format!("`{text}` needs a unit: `ms`, `s`, `m` or `h`")),
            other => {
                return Err(format!(
                    "unknown duration unit `{other}` in `{text}` (use `ms`, `s`, `m`, `h`)"
                ));
            }
        };
        total = total.saturating_add(part);
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
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
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
