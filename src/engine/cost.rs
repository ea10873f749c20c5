//! What tokens cost: the price table (`assets/pricing.toml`, overridable by config) and the cost of one
//! attempt's usage.

use serde::Deserialize;
use std::collections::BTreeMap;

use crate::provider::Usage;

const BUILT_IN: &str = include_str!("../../assets/pricing.toml");

/// Prices of one model, USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub input: f64,
    pub output: f64,
    /// Absent where cache writes are not charged separately: priced as input.
    #[serde(default)]
    pub cache_write: Option<f64>,
    #[serde(default)]
    pub cache_read: Option<f64>,
    #[serde(default)]
    pub long_context: Option<LongContextPrice>,
}

/// Higher prices that apply to a whole request once its input passes a size.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongContextPrice {
    pub above_input_tokens: u64,
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cache_write: Option<f64>,
    #[serde(default)]
    pub cache_read: Option<f64>,
}

/// The date of the built-in table's prices (its header says "prices as of YYYY-MM-DD, from …").
pub fn built_in_as_of() -> Option<&'static str> {
    let (_, rest) = BUILT_IN.split_once("prices as of ")?;
    let date = rest.get(..10)?;
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .map(|_| date)
}

/// The price table. Model ids match the longest key they start with, unless what follows the key
/// names a later version of it ([`names_a_later_version`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Pricing {
    models: BTreeMap<String, ModelPrice>,
}

impl Pricing {
    /// The built-in table with `overrides` (from the config) laid over it.
    pub fn with_overrides(overrides: &BTreeMap<String, ModelPrice>) -> Pricing {
        let mut models: BTreeMap<String, ModelPrice> = match toml::from_str(BUILT_IN) {
            Ok(models) => models,
            // The file is compiled in and a test parses it, so this cannot happen in a release.
            Err(e) => {
                tracing::error!("built-in pricing table is invalid: {e}");
                BTreeMap::new()
            }
        };
        models.extend(overrides.iter().map(|(k, v)| (k.clone(), *v)));
        Pricing { models }
    }

    pub fn built_in() -> Pricing {
        Pricing::with_overrides(&BTreeMap::new())
    }

    /// The prices for a model id, if the table knows it.
    pub fn price(&self, model: &str) -> Option<&ModelPrice> {
        self.models
            .iter()
            .filter(|(key, _)| {
                model
                    .strip_prefix(key.as_str())
                    .is_some_and(|rest| !names_a_later_version(rest))
            })
            .max_by_key(|(key, _)| key.len())
            .map(|(_, price)| price)
            // A Bedrock inference profile (`us.anthropic.…`) is priced as its model unless the
            // table names the profile itself.
            .or_else(|| {
                crate::protocol::bedrock::without_profile_prefix(model).and_then(|m| self.price(m))
            })
    }

    /// USD for a usage, or `None` when the model has no price.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.price(model).map(|p| p.cost(usage))
    }
}

/// What follows a price key in a model id continues its version number (`-6` after
/// `claude-sonnet-5`, `.4` after `gpt-5`): it is another model, which must read "cost unknown"
/// rather than borrow an older one's price. A snapshot date (`-20250929`, `-2025-08-07`), a size
/// (`-70b`) or a variant (`-mini`) does not.
fn names_a_later_version(rest: &str) -> bool {
    let mut chars = rest.chars();
    if !matches!(chars.next(), Some('-' | '.')) {
        return false;
    }
    let digits = chars.clone().take_while(char::is_ascii_digit).count();
    let after = chars.nth(digits);
    (1..=2).contains(&digits) && matches!(after, None | Some('-' | '.'))
}

impl ModelPrice {
    pub fn cost(&self, usage: &Usage) -> f64 {
        let (input, output, cache_write, cache_read) = match self.long_context {
            Some(lc) if usage.total_input() > lc.above_input_tokens => (
                lc.input,
                lc.output,
                lc.cache_write.or(self.cache_write),
                lc.cache_read.or(self.cache_read),
            ),
            _ => (self.input, self.output, self.cache_write, self.cache_read),
        };
        let per_token = |tokens: u64, price: f64| tokens as f64 * price / 1_000_000.0;
        per_token(usage.input_tokens, input)
            + per_token(usage.output_tokens, output)
            + per_token(usage.cache_write_tokens, cache_write.unwrap_or(input))
            + per_token(usage.cache_read_tokens, cache_read.unwrap_or(input))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn usage(input: u64, output: u64, cache_read: u64, cache_write: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            cache_read_tokens: cache_read,
            cache_write_tokens: cache_write,
            reasoning_tokens: 0,
        }
    }

    #[test]
    fn built_in_table_parses_is_dated_and_names_its_sources() {
        let table: BTreeMap<String, ModelPrice> = toml::from_str(BUILT_IN).unwrap();
        for model in [
            "claude-sonnet-5-5",
            "claude-opus-5-5",
            "claude-haiku-5-5",
            "claude-haiku-4-5",
            "gpt-6.2-sol",
            "gpt-6.2-astra",
            "gpt-6-luna",
            "gpt-4o-mini",
        ] {
            assert!(table.contains_key(model), "{model}");
        }
        // Retired before the table's date: priced no more.
        for model in ["claude-sonnet-4-5", "claude-opus-4-1", "gemini-2.5-pro"] {
            assert!(!table.contains_key(model), "{model}");
        }
        let date = built_in_as_of().expect("a header saying `prices as of YYYY-MM-DD, from …`");
        assert!(date >= "2026-12-04", "{date}");
        let header: Vec<&str> = BUILT_IN
            .lines()
            .take_while(|l| l.starts_with("# ") && l.len() > 2)
            .map(|l| &l[2..])
            .collect();
        let header = header.join(" ");
        assert!(
            header.contains(&format!("prices as of {date}, from https://")),
            "{header}"
        );
        // Every row says where its numbers come from, in the nearest comment above it.
        let lines: Vec<&str> = BUILT_IN.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.starts_with('[') {
                continue;
            }
            let comment = lines[..i]
                .iter()
                .rev()
                .skip_while(|l| !l.starts_with('#'))
                .take_while(|l| l.starts_with('#'))
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase();
            assert!(
                ["official", "third-party", "not checked again"]
                    .iter()
                    .any(|w| comment.contains(w)),
                "{line}: no source in `{comment}`"
            );
        }
    }

    #[test]
    fn dated_ids_match_the_longest_prefix() {
        let p = Pricing::built_in();
        assert_eq!(p.price("claude-sonnet-5-5-20261001").unwrap().input, 2.0);
        assert_eq!(p.price("claude-haiku-4-5-20251001").unwrap().input, 1.0);
        assert_eq!(p.price("gpt-5-mini-2025-08-07").unwrap().input, 0.25);
        assert_eq!(p.price("gpt-5-2025-08-07").unwrap().input, 1.25);
        assert_eq!(p.price("gpt-4o-mini").unwrap().output, 0.60);
        assert!(p.price("llama-3").is_none());
    }

    #[test]
    fn a_later_version_never_borrows_an_older_ones_price() {
        let p = Pricing::built_in();
        // Longest key first: Sonnet 5.5 is not priced as Sonnet 5.
        assert_eq!(p.price("claude-sonnet-5-5").unwrap().cache_read, Some(0.10));
        assert_eq!(p.price("claude-sonnet-5").unwrap().cache_read, Some(0.20));
        // Models the table does not know yet read "cost unknown", not their predecessor's price.
        for model in [
            "claude-sonnet-5-6",
            "claude-sonnet-5-6-20270101",
            "claude-opus-5-7",
            "gpt-5.4",
            "gpt-5.5-2026-04-23",
            "gpt-6.3-sol",
        ] {
            assert!(p.price(model).is_none(), "{model}");
        }
        // A variant, a size or a snapshot of a priced key still matches it.
        let mut o = BTreeMap::new();
        o.insert("llama-3".to_string(), flat(0.1));
        let p = Pricing::with_overrides(&o);
        assert!(p.price("llama-3-70b").is_some());
        assert!(p.price("llama-3.1-8b").is_none());
        assert!(p.price("gpt-5-codex").is_some());
    }

    fn flat(usd: f64) -> ModelPrice {
        ModelPrice {
            input: usd,
            output: usd,
            cache_write: None,
            cache_read: None,
            long_context: None,
        }
    }

    #[test]
    fn costs_follow_the_table() {
        let p = Pricing::built_in();
        // 100k input + 100k output on Sonnet 5.5 = $0.20 + $1.00.
        let c = p
            .cost("claude-sonnet-5-5", &usage(100_000, 100_000, 0, 0))
            .unwrap();
        assert!((c - 1.2).abs() < 1e-9, "{c}");
        // Cache reads and writes at their own prices.
        let c = p
            .cost("claude-sonnet-5-5", &usage(0, 0, 100_000, 100_000))
            .unwrap();
        assert!((c - (0.010 + 0.250)).abs() < 1e-9, "{c}");
        // No cache-write price known: such tokens cost as input.
        let c = p.cost("gpt-5", &usage(0, 0, 1_000_000, 1_000_000)).unwrap();
        assert!((c - (0.125 + 1.25)).abs() < 1e-9, "{c}");
        // Above 272K input tokens, GPT-6.2 Sol's long-context prices apply to the whole request.
        let c = p
            .cost("gpt-6.2-sol", &usage(250_000, 1_000, 30_000, 0))
            .unwrap();
        assert!(
            (c - (0.25 * 4.0 + 0.001 * 15.0 + 0.03 * 0.20)).abs() < 1e-9,
            "{c}"
        );
        // Haiku 5.5's tiers count cached input too: 60k + 50k read passes 100k.
        let c = p
            .cost("claude-haiku-5-5", &usage(60_000, 0, 50_000, 0))
            .unwrap();
        assert!((c - (0.06 * 0.50 + 0.05 * 0.05)).abs() < 1e-9, "{c}");
    }

    #[test]
    fn overrides_replace_built_in_prices() {
        let mut o = BTreeMap::new();
        o.insert(
            "gpt-5".to_string(),
            ModelPrice {
                input: 1.0,
                output: 2.0,
                cache_write: None,
                cache_read: None,
                long_context: None,
            },
        );
        o.insert("llama-3".to_string(), flat(0.1));
        let p = Pricing::with_overrides(&o);
        assert_eq!(p.price("gpt-5-2025-08-07").unwrap().input, 1.0);
        assert!(p.price("llama-3-70b").is_some());
        assert_eq!(p.price("gpt-5-mini").unwrap().input, 0.25);
    }
}
