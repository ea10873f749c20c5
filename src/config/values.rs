//! The range checks fields read their values through (`deserialize_with`): a duration, a count,
//! a fraction, a factor… Each error says what range to use, and toml reports it at the value's
//! line and column.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

use crate::parse::{Dur, OptionalDur, duration_text, parse_duration};

pub(super) const HOUR_MS: u64 = 60 * 60 * 1000;
pub(super) const DAY_MS: u64 = 24 * HOUR_MS;

/// A duration from `MIN` to `MAX` milliseconds.
pub(super) fn duration<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<Dur, D::Error> {
    let text = duration_text(d)?;
    in_range::<MIN, MAX>(&text, "")
        .map(Dur)
        .map_err(serde::de::Error::custom)
}

/// `off`, or a duration from `MIN` to `MAX` milliseconds.
pub(super) fn optional_duration<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<OptionalDur, D::Error> {
    let text = duration_text(d)?;
    if text.trim() == "off" {
        return Ok(OptionalDur(None));
    }
    in_range::<MIN, MAX>(&text, ", or `off`")
        .map(|value| OptionalDur(Some(value)))
        .map_err(serde::de::Error::custom)
}

/// `text` read as a duration from `MIN` to `MAX` milliseconds; an error ends with `or`.
fn in_range<const MIN: u64, const MAX: u64>(text: &str, or: &str) -> Result<Duration, String> {
    let value = parse_duration(text).map_err(|e| format!("{e}{or}"))?;
    let (min, max) = (Duration::from_millis(MIN), Duration::from_millis(MAX));
    if value < min || value > max {
        return Err(format!(
            "`{text}` is out of range: use a duration from {} to {}{or}",
            limit(min),
            limit(max)
        ));
    }
    Ok(value)
}

/// A limit as people write it: `0s`, `1ms`, `1h`, `24h`.
fn limit(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".to_string(),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

/// A whole number; anything else gets an error that says so.
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct Whole;
    impl serde::de::Visitor<'_> for Whole {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            Ok(i64::try_from(v).unwrap_or(i64::MAX))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
            Err(E::custom(format!("{v} is not a whole number")))
        }
    }
    d.deserialize_any(Whole)
}

/// A whole number from `MIN` to `MAX`.
pub(super) fn count<'de, D: Deserializer<'de>, const MIN: u32, const MAX: u32>(
    d: D,
) -> Result<u32, D::Error> {
    let n = whole_number(d)?;
    u32::try_from(n)
        .ok()
        .filter(|n| (MIN..=MAX).contains(n))
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{n} is out of range: use a whole number from {MIN} to {MAX}"
            ))
        })
}

/// A number from `min` to `max` (so never NaN or infinite); `what` says what it is.
fn number<'de, D: Deserializer<'de>>(
    d: D,
    min: f64,
    max: f64,
    what: &str,
) -> Result<f64, D::Error> {
    let n = f64::deserialize(d)?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(serde::de::Error::custom(format!(
            "{n} is out of range: use {what} from {min} to {max}"
        )))
    }
}

/// A share of something: from 0 to 1.
pub(super) fn fraction<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    number(d, 0.0, 1.0, "a fraction")
}

/// A fraction from 0 to 1, or `"off"` (`None`).
pub(super) fn fraction_or_off<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Number(f64),
        Text(String),
    }
    match Written::deserialize(d)? {
        Written::Number(n) if (0.0..=1.0).contains(&n) => Ok(Some(n)),
        Written::Number(n) => Err(serde::de::Error::custom(format!(
            "{n} is out of range: use a fraction from 0 to 1, or \"off\""
        ))),
        Written::Text(t) if t.trim() == "off" => Ok(None),
        Written::Text(t) => Err(serde::de::Error::custom(format!(
            "`{t}` is not a fraction: use one from 0 to 1 (like 0.05), or \"off\""
        ))),
    }
}

pub(super) fn optional_fraction<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    fraction(d).map(Some)
}

/// A growth factor: from 1 (fixed) to 100.
pub(super) fn factor<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    number(d, 1.0, 100.0, "a factor (1 = no growth)")
}

pub(super) fn factor_f32<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    // Within 1 to 100, so the conversion is exact enough and cannot overflow.
    factor(d).map(|f| f as f32)
}

/// A budget's size or rate: from 0 to a million.
pub(super) fn amount<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    number(d, 0.0, 1_000_000.0, "a number")
}

pub(super) fn context_window<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n = whole_number(d)?;
    u64::try_from(n)
        .ok()
        .filter(|n| *n >= 1)
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{n} is out of range: use the model's context window in tokens (1 or more)"
            ))
        })
}

/// A list that must hold something: leaving the key out gives the defaults.
pub(super) fn non_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    let list = Vec::<T>::deserialize(d)?;
    if list.is_empty() {
        return Err(serde::de::Error::custom(
            "the list is empty: declare at least one entry, or leave the key out for the defaults",
        ));
    }
    Ok(list)
}
