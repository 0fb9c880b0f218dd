//! Decimal amounts as platforms write them (`"199.00"`) to minor units, exactly: no
//! floating point.

use stockline_domain::Price;

/// Digits after the decimal point of an ISO 4217 currency (2 unless listed).
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// `"199.5"` in a currency of `digits` minor digits, in minor units (`19950`).
/// `None` for anything but a non-negative decimal, or more precision than the
/// currency has (other than trailing zeros).
pub fn parse_minor(amount: &str, digits: u32) -> Option<i64> {
    let amount = amount.trim();
    let (whole, fraction) = match amount.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (amount, ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let digits = usize::try_from(digits).ok()?;
    let (kept, rest) = fraction.split_at(fraction.len().min(digits));
    if rest.bytes().any(|b| b != b'0') {
        return None;
    }
    let mut text = String::with_capacity(whole.len() + digits);
    text.push_str(if whole.is_empty() { "0" } else { whole });
    text.push_str(kept);
    for _ in kept.len()..digits {
        text.push('0');
    }
    text.parse::<i64>().ok()
}

/// A unit price from a decimal amount and an ISO 4217 currency code; `None` when
/// either is unusable (prices are optional: stock never depends on them).
pub fn price(amount: &str, currency: &str) -> Option<Price> {
    let currency = currency.trim().to_ascii_uppercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let unit_minor = parse_minor(amount, minor_digits(&currency))?;
    Some(Price {
        unit_minor,
        currency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_amounts_become_minor_units_exactly() {
        assert_eq!(parse_minor("199.00", 2), Some(19_900));
        assert_eq!(parse_minor("0.1", 2), Some(10));
        assert_eq!(parse_minor("5", 2), Some(500));
        assert_eq!(parse_minor(".5", 2), Some(50));
        assert_eq!(parse_minor("1990.00", 0), Some(1_990));
        assert_eq!(parse_minor("1.234", 3), Some(1_234));
        assert_eq!(parse_minor("1.005", 2), None);
        assert_eq!(parse_minor("-1.00", 2), None);
        assert_eq!(parse_minor("1e3", 2), None);
        assert_eq!(parse_minor("", 2), None);
        assert_eq!(parse_minor(".", 2), None);
        assert_eq!(
            price("19.99", "eur"),
            Some(Price {
                unit_minor: 1_999,
                currency: "EUR".into()
            })
        );
        assert_eq!(price("19.99", "euro"), None);
    }
}
