//! NUMERIC as BigQuery defines it: an exact decimal with 38 digits of precision and 9 of scale, held as an
//! `i128` count of 1e-9 units. Stored NUMERIC cells are text; the engine parses them here and writes them back in
//! canonical form (no trailing zeros, no `+`).

/// 10^9: one in NUMERIC's units.
pub(crate) const ONE: i128 = 1_000_000_000;
/// The largest NUMERIC, 99999999999999999999999999999.999999999, in units.
const MAX: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

/// Parses `-12.5`, `+3`, `.25`, `1e3`; `None` for anything else or more than 9 decimals of scale.
pub(crate) fn parse(text: &str) -> Option<i128> {
    let text = text.trim();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (negative, unsigned) = match mantissa.as_bytes().first() {
        Some(b'-') => (true, &mantissa[1..]),
        Some(b'+') => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if (whole.is_empty() && fraction.is_empty()) || !(whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let digits: String = format!("{whole}{fraction}");
    let scale = i32::try_from(fraction.len()).ok()?.checked_sub(exponent)?;
    let mut value: i128 = 0;
    for digit in digits.bytes() {
        value = value.checked_mul(10)?.checked_add(i128::from(digit - b'0'))?;
    }
    if value == 0 {
        return Some(0);
    }
    // value * 10^(9 - scale); beyond 38 digits either way it cannot be a NUMERIC.
    let shift = 9i32.checked_sub(scale)?;
    if !(-40..=40).contains(&shift) {
        return None;
    }
    if shift >= 0 {
        for _ in 0..shift {
            value = value.checked_mul(10)?;
        }
    } else {
        for _ in 0..(-shift) {
            if value % 10 != 0 {
                return None;
            }
            value /= 10;
        }
    }
    let value = if negative { -value } else { value };
    in_range(value)
}

/// `Some(units)` when within NUMERIC's range.
pub(crate) fn in_range(units: i128) -> Option<i128> {
    (-MAX..=MAX).contains(&units).then_some(units)
}

/// Canonical text: `12.5`, `-3`, `0.000000001`.
pub(crate) fn format(units: i128) -> String {
    let negative = units < 0;
    let magnitude = units.unsigned_abs();
    let whole = magnitude / ONE.unsigned_abs();
    let fraction = magnitude % ONE.unsigned_abs();
    let sign = if negative { "-" } else { "" };
    if fraction == 0 {
        return format!("{sign}{whole}");
    }
    let digits = format!("{fraction:09}");
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

pub(crate) fn to_f64(units: i128) -> f64 {
    units as f64 / ONE as f64
}

pub(crate) fn from_i64(number: i64) -> i128 {
    i128::from(number) * ONE
}

/// Rounds half away from zero to `ONE`-scaled units, as BigQuery rounds NUMERIC results.
pub(crate) fn divide(numerator: i128, denominator: i128) -> Option<i128> {
    if denominator == 0 {
        return None;
    }
    // numerator * ONE / denominator with rounding; both fit: |numerator| < 1e38 but * 1e9 may not, so split.
    let scaled = numerator.checked_mul(ONE).map(|n| round_div(n, denominator)).or_else(|| {
        let whole = numerator / denominator;
        let rest = numerator % denominator;
        whole.checked_mul(ONE)?.checked_add(round_div(rest.checked_mul(ONE)?, denominator))
    })?;
    in_range(scaled)
}

pub(crate) fn multiply(left: i128, right: i128) -> Option<i128> {
    let product = left.checked_mul(right).map(|p| round_div(p, ONE)).or_else(|| {
        // Split the right operand into whole and fraction to stay in range.
        let whole = right / ONE;
        let fraction = right % ONE;
        left.checked_mul(whole)?.checked_add(round_div(left.checked_mul(fraction)?, ONE))
    })?;
    in_range(product)
}

fn round_div(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    if remainder.unsigned_abs() * 2 >= denominator.unsigned_abs() {
        if (numerator < 0) != (denominator < 0) { quotient - 1 } else { quotient + 1 }
    } else {
        quotient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_canonically() {
        assert_eq!(parse("12.50").map(format).as_deref(), Some("12.5"));
        assert_eq!(parse("+3").map(format).as_deref(), Some("3"));
        assert_eq!(parse("-.25").map(format).as_deref(), Some("-0.25"));
        assert_eq!(parse("1e3").map(format).as_deref(), Some("1000"));
        assert_eq!(parse("0.000000001").map(format).as_deref(), Some("0.000000001"));
        assert_eq!(parse("0.0000000001"), None, "more than 9 decimals");
        assert_eq!(parse("1x"), None);
        assert_eq!(parse("0e999999999"), Some(0), "a zero with a huge exponent is still zero, and quick");
        assert_eq!(parse("1e999999999"), None);
        assert_eq!(parse("1e-999999999"), None);
        assert_eq!(parse("1e-2147483648"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn arithmetic_is_exact_and_rounds_half_away_from_zero() {
        let third = divide(from_i64(1), from_i64(3)).map(format);
        assert_eq!(third.as_deref(), Some("0.333333333"));
        assert_eq!(divide(from_i64(2), from_i64(3)).map(format).as_deref(), Some("0.666666667"));
        assert_eq!(divide(from_i64(-2), from_i64(3)).map(format).as_deref(), Some("-0.666666667"));
        assert_eq!(
            multiply(parse("1.5").unwrap_or_default(), parse("0.1").unwrap_or_default()).map(format).as_deref(),
            Some("0.15")
        );
        assert_eq!(divide(ONE, 0), None);
    }
}
