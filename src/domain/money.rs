//! Money: CNY amounts are exact decimals with at most two places (fen). They travel as decimal strings in JSON
//! and are stored as whole fen (`BIGINT`), so sums in SQL stay exact on both backends.

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::error::FieldErrors;

/// The largest accepted amount: one trillion yuan.
pub const MAX_YUAN: i64 = 1_000_000_000_000;

/// Whether `s` is written as a plain decimal: an optional `-`, digits, and optionally a point followed by
/// digits (`"100"`, `"100.5"`); no spaces, no sign `+`, no exponent, a digit on each side of the point.
pub fn plain_decimal(s: &str) -> bool {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (unsigned, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && fraction.is_none_or(digits)
}

/// Parses a decimal string such as `"12345.67"` into fen; records `invalid_format`, `too_many_decimals`,
/// `negative` or `out_of_range` on `field`.
pub fn parse_fen(errs: &mut FieldErrors, field: &str, s: &str) -> i64 {
    let parsed = plain_decimal(s)
        .then(|| Decimal::from_str_exact(s).ok())
        .flatten();
    let Some(d) = parsed else {
        errs.add(
            field,
            "invalid_format",
            "a decimal string such as \"12345.67\"",
        );
        return 0;
    };
    let d = d.normalize();
    if d.scale() > 2 {
        errs.add(field, "too_many_decimals", "at most 2 decimal places (fen)");
        return 0;
    }
    if d.is_sign_negative() && !d.is_zero() {
        errs.add(field, "negative", "must not be negative");
        return 0;
    }
    if d > Decimal::from(MAX_YUAN) {
        errs.add(field, "out_of_range", "too large");
        return 0;
    }
    (d * Decimal::from(100))
        .trunc()
        .to_string()
        .parse()
        .unwrap_or(0)
}

/// Formats fen as a decimal string with exactly two places: `1234567` → `"12345.67"`.
pub fn format_fen(fen: i64) -> String {
    Decimal::new(fen, 2).to_string()
}

/// Parses an optional rate such as `"2.15"` (percent per year, up to 4 places, 0–100).
pub fn parse_rate(errs: &mut FieldErrors, field: &str, s: &str) -> String {
    match Decimal::from_str(s).ok().filter(|_| plain_decimal(s)) {
        Some(d) if d.normalize().scale() <= 4 && d >= Decimal::ZERO && d <= Decimal::from(100) => {
            d.normalize().to_string()
        }
        _ => {
            errs.add(
                field,
                "invalid_format",
                "a percentage between 0 and 100 with at most 4 decimals",
            );
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<i64, String> {
        let mut e = FieldErrors::default();
        let v = parse_fen(&mut e, "amount", s);
        e.0.first().map_or(Ok(v), |f| Err(f.code.clone()))
    }

    #[test]
    fn amounts_are_exact_to_the_fen() {
        assert_eq!(parse("12345.67"), Ok(1_234_567));
        assert_eq!(parse("0.1"), Ok(10));
        assert_eq!(
            parse("100.100"),
            Ok(10_010),
            "trailing zeros are not extra precision"
        );
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("12.345").unwrap_err(), "too_many_decimals");
        assert_eq!(parse("-1").unwrap_err(), "negative");
        assert_eq!(parse("abc").unwrap_err(), "invalid_format");
        assert_eq!(parse("1e3").unwrap_err(), "invalid_format");
        assert_eq!(parse("1000000000000.01").unwrap_err(), "out_of_range");
        for odd in [
            " 100.00", "100.00 ", ".5", "5.", "+5", "1,000", "", "-", "5..0", "0x10",
        ] {
            assert_eq!(parse(odd).unwrap_err(), "invalid_format", "{odd:?}");
        }
        assert_eq!(format_fen(1_234_567), "12345.67");
        assert_eq!(format_fen(10), "0.10");
        assert_eq!(format_fen(0), "0.00");
        // 0.1 + 0.2 is exactly 0.3 here.
        assert_eq!(
            format_fen(parse("0.1").unwrap() + parse("0.2").unwrap()),
            "0.30"
        );
    }

    #[test]
    fn rates() {
        let mut e = FieldErrors::default();
        assert_eq!(parse_rate(&mut e, "rate", "2.150"), "2.15");
        parse_rate(&mut e, "rate", "101");
        parse_rate(&mut e, "rate", "x");
        parse_rate(&mut e, "rate", ".5");
        parse_rate(&mut e, "rate", " 2.15");
        assert_eq!(e.0.len(), 4);
    }
}
