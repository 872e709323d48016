//! `limits = { processes = 4096, memory = "8GiB", tmp = "2GiB", output = "16GiB" }`, in
//! `[defaults]` or a step: what one step may use (docs/security.md, property 7). Each key
//! left out keeps the default's (or gantry's) value; mistakes are shown at their line.

use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::pipeline::model::Limits;
use crate::pipeline::wire::LimitsWire;

/// The wire table over `base`, every problem reported.
pub fn convert(
    wire: Option<&Spanned<LimitsWire>>,
    base: Limits,
    errors: &mut Vec<Diagnostic>,
) -> Limits {
    let Some(wire) = wire else {
        return base;
    };
    let wire = wire.get_ref();
    let mut limits = base;
    if let Some(processes) = &wire.processes {
        match u64::try_from(*processes.get_ref()) {
            Ok(count @ 1..=4_194_304) => limits.processes = count,
            _ => errors.push(Diagnostic::at(
                "`processes` must be between 1 and 4194304",
                processes.span(),
            )),
        }
    }
    for (wire, slot, name) in [
        (&wire.memory, &mut limits.memory, "memory"),
        (&wire.tmp, &mut limits.tmp, "tmp"),
        (&wire.output, &mut limits.output, "output"),
    ] {
        let Some(text) = wire else { continue };
        match parse_size(text.get_ref()) {
            Ok(bytes) if bytes >= 1 << 20 => *slot = bytes,
            Ok(_) => errors.push(Diagnostic::at(
                format!("`{name}` must be at least 1MiB"),
                text.span(),
            )),
            Err(message) => errors.push(
                Diagnostic::at(format!("invalid `{name}`: {message}"), text.span())
                    .hint("write a size such as `512MiB`, `8GiB` or `1TiB`"),
            ),
        }
    }
    limits
}

/// `<integer><unit>`, unit one of `B`, `KiB`, `MiB`, `GiB`, `TiB` (or `KB`, `MB`, `GB`, `TB`
/// for powers of ten).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return Err(format!("`{text}` is not a size"));
    }
    let number: u64 = text[..digits]
        .parse()
        .map_err(|_| format!("`{text}`: number too large"))?;
    let unit: u64 = match text[digits..].trim() {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "" => return Err(format!("`{text}` needs a unit, such as `MiB` or `GiB`")),
        other => return Err(format!("unknown size unit `{other}` in `{text}`")),
    };
    number
        .checked_mul(unit)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// `bytes` as people read it: `8GiB`, `512MiB`, `1500B`.
#[must_use]
pub fn show_size(bytes: u64) -> String {
    for (unit, name) in [
        (1u64 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{}{name}", bytes / unit);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_show() {
        assert_eq!(parse_size("8GiB"), Ok(8 << 30));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert!(parse_size("8").is_err());
        assert!(parse_size("8gb").is_err());
        assert!(parse_size("99999999999TiB").is_err());
        assert_eq!(show_size(8 << 30), "8GiB");
        assert_eq!(show_size(1536 << 20), "1536MiB");
        assert_eq!(show_size(1500), "1500B");
    }
}
