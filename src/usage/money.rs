//! Money without floats: prices read as the decimal text they were written in, the ISO 4217
//! currencies gantry knows with their minor units, and the one rounding rule of a report
//! (each line half-even to the currency's minor unit; totals add rounded lines).

use rust_decimal::{Decimal, RoundingStrategy};

/// A currency and the digits of its minor unit (cents: 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Currency {
    pub code: &'static str,
    pub minor: u32,
}

/// ISO 4217 codes with their minor units (the codes in common use for invoices).
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EGP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("MAD", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("NGN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PEN", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("QAR", 2),
    ("RON", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("UYU", 2),
    ("VND", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("ZAR", 2),
];

impl Currency {
    /// The currency of an ISO 4217 code gantry knows.
    #[must_use]
    pub fn of(code: &str) -> Option<Self> {
        CURRENCIES
            .iter()
            .find(|(known, _)| *known == code)
            .map(|&(code, minor)| Self { code, minor })
    }

    /// `amount` rounded to the minor unit, half to even (banker's rounding): the report's
    /// one rounding, applied once per line.
    #[must_use]
    pub fn round(self, amount: Decimal) -> Decimal {
        amount.round_dp_with_strategy(self.minor, RoundingStrategy::MidpointNearestEven)
    }

    /// `amount` with exactly the minor unit's digits: `12.30`, `1200` for yen.
    #[must_use]
    pub fn format(self, amount: Decimal) -> String {
        let mut rounded = self.round(amount);
        rounded.rescale(self.minor);
        rounded.to_string()
    }
}

/// Digits after the point a price may have (a tenth of a thousandth of a cent is plenty).
const MAX_DECIMALS: usize = 10;

/// A price as written: digits with an optional point and more digits (`0.10`, `50`,
/// `0.0008`). Not negative, no exponent, no separators.
pub fn parse_price(text: &str) -> Result<Decimal, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("`{text}` is negative: a price is zero or more"));
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || (text.contains('.') && fraction.is_empty())
    {
        return Err(format!(
            "`{text}` is not a price: write digits with a point, like `0.10`"
        ));
    }
    if fraction.len() > MAX_DECIMALS {
        return Err(format!(
            "`{text}` has {} digits after the point, more than {MAX_DECIMALS}",
            fraction.len()
        ));
    }
    if whole.trim_start_matches('0').len() > 15 {
        return Err(format!("`{text}` is too large a price"));
    }
    text.parse::<Decimal>()
        .map_err(|error| format!("`{text}` is not a price: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decimal(text: &str) -> Decimal {
        text.parse().expect("decimal")
    }

    #[test]
    fn prices_are_read_exactly_as_written() {
        assert_eq!(parse_price("0.10"), Ok(decimal("0.10")));
        assert_eq!(parse_price("50"), Ok(decimal("50")));
        assert_eq!(parse_price("0.0008"), Ok(decimal("0.0008")));
        for wrong in [
            "-0.10",
            "1e3",
            "0.",
            ".5",
            "1_000",
            "",
            "inf",
            "nan",
            "0.12345678901",
        ] {
            assert!(parse_price(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn lines_round_half_to_even_at_the_minor_unit() {
        let usd = Currency::of("USD").expect("usd");
        assert_eq!(usd.format(decimal("0.125")), "0.12");
        assert_eq!(usd.format(decimal("0.135")), "0.14");
        assert_eq!(usd.format(decimal("0.1251")), "0.13");
        assert_eq!(usd.format(decimal("3")), "3.00");
        let yen = Currency::of("JPY").expect("jpy");
        assert_eq!(yen.format(decimal("2.5")), "2");
        assert_eq!(yen.format(decimal("3.5")), "4");
        let dinar = Currency::of("KWD").expect("kwd");
        assert_eq!(dinar.format(decimal("1.0005")), "1.000");
        assert!(Currency::of("XYZ").is_none());
        assert!(Currency::of("usd").is_none());
    }
}
