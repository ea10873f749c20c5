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

/// The price table. Model ids match the longest key they start with.
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
            .filter(|(key, _)| model.starts_with(key.as_str()))
            .max_by_key(|(key, _)| key.len())
            .map(|(_, price)| price)
    }

    /// USD for a usage, or `None` when the model has no price.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.price(model).map(|p| p.cost(usage))
    }
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
    fn built_in_table_parses_and_has_every_protocols_md_model() {
        let table: BTreeMap<String, ModelPrice> = toml::from_str(BUILT_IN).unwrap();
        for model in [
            "claude-sonnet-4-5",
            "claude-opus-4-5",
            "claude-opus-4-1",
            "claude-haiku-4-5",
            "gpt-5",
            "gpt-5-mini",
            "gpt-5-nano",
            "gpt-4.1",
            "gpt-4o",
            "gpt-4o-mini",
            "gemini-2.5-pro",
            "gemini-2.5-flash",
        ] {
            assert!(table.contains_key(model), "{model}");
        }
    }

    #[test]
    fn dated_ids_match_the_longest_prefix() {
        let p = Pricing::built_in();
        assert_eq!(p.price("claude-sonnet-4-5-20250929").unwrap().input, 3.0);
        assert_eq!(p.price("gpt-5-mini-2025-08-07").unwrap().input, 0.25);
        assert_eq!(p.price("gpt-5-2025-08-07").unwrap().input, 1.25);
        assert_eq!(p.price("gpt-4o-mini").unwrap().output, 0.60);
        assert!(p.price("llama-3").is_none());
    }

    #[test]
    fn costs_follow_the_table() {
        let p = Pricing::built_in();
        // 100k input + 100k output on Sonnet 4.5 = $0.30 + $1.50.
        let c = p
            .cost("claude-sonnet-4-5", &usage(100_000, 100_000, 0, 0))
            .unwrap();
        assert!((c - 1.8).abs() < 1e-9, "{c}");
        // Cache reads and writes at their own prices.
        let c = p
            .cost("claude-sonnet-4-5", &usage(0, 0, 100_000, 100_000))
            .unwrap();
        assert!((c - (0.030 + 0.375)).abs() < 1e-9, "{c}");
        // OpenAI has no cache-write price: such tokens cost as input.
        let c = p.cost("gpt-5", &usage(0, 0, 1_000_000, 1_000_000)).unwrap();
        assert!((c - (0.125 + 1.25)).abs() < 1e-9, "{c}");
        // Above 200k input tokens, Sonnet 4.5's long-context prices apply to the whole request.
        let c = p
            .cost("claude-sonnet-4-5", &usage(250_000, 1_000, 0, 0))
            .unwrap();
        assert!((c - (0.25 * 6.0 + 0.001 * 22.5)).abs() < 1e-9, "{c}");
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
        o.insert(
            "llama-3".to_string(),
            ModelPrice {
                input: 0.1,
                output: 0.1,
                cache_write: None,
                cache_read: None,
                long_context: None,
            },
        );
        let p = Pricing::with_overrides(&o);
        assert_eq!(p.price("gpt-5-2025-08-07").unwrap().input, 1.0);
        assert!(p.price("llama-3-70b").is_some());
        assert_eq!(p.price("gpt-5-mini").unwrap().input, 0.25);
    }
}
