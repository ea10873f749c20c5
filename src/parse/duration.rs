//! Durations as the files write them: a number and a unit (`500ms`, `2s`, `1.5s`, `3m`, `1h`), at
//! most [`MAX_DURATION`].

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// A duration written as `500ms`, `2s`, `1.5s`, `3m` or `1h`, at most [`MAX_DURATION`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = duration_text(d)?;
        parse_duration(&text)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// The longest duration a config, a scenario, a fault or a flag may give: a day. Every time limit
/// is added to the clock's present, and a day is far from where that could overflow; a longer wait
/// is a mistake, not a setting.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Parse `500ms`, `2s`, `1.5s`, `3m`, `1h` (a number and a unit; no unit is an error, to avoid
/// seconds-versus-milliseconds mistakes), up to [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!(
            "invalid duration `{text}`: expected a number and a unit, like `500ms`, `2s` or `1m`"
        )
    })?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "" => {
            return Err(format!(
                "invalid duration `{text}`: add a unit (`ms`, `s`, `m` or `h`), like `{num}s`"
            ));
        }
        other => {
            return Err(format!(
                "invalid duration `{text}`: unknown unit `{other}` (use `ms`, `s`, `m` or `h`)"
            ));
        }
    };
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| format!("invalid duration `{text}`: the longest allowed is 24h"))
}

/// The text of a duration. A bare number gets an error that says how to write one.
pub fn duration_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct Text;
    impl serde::de::Visitor<'_> for Text {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a duration with a unit, like \"500ms\", \"2s\" or \"1m\"")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Err(E::custom(format!(
                "invalid duration {v}: write it as a string with a unit, like \"{v}s\""
            )))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
            Err(E::custom(format!(
                "invalid duration {v}: write it as a string with a unit, like \"{v}s\""
            )))
        }
    }
    d.deserialize_any(Text)
}

/// A duration or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalDur(pub Option<Duration>);

impl<'de> Deserialize<'de> for OptionalDur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = duration_text(d)?;
        if text.trim() == "off" {
            return Ok(OptionalDur(None));
        }
        parse_duration(&text)
            .map(|d| OptionalDur(Some(d)))
            .map_err(|e| serde::de::Error::custom(format!("{e}, or `off`")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("5").unwrap_err().contains("add a unit"));
        assert!(
            parse_duration("5 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_duration("fast").is_err());
    }
}
