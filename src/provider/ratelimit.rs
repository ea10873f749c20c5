//! What a provider says is left of its rate limits, read from the headers of every response,
//! success or error: Anthropic's `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
//! {limit,remaining,reset}` (reset an RFC 3339 time) and OpenAI's `x-ratelimit-{limit,remaining,
//! reset}-{requests,tokens}` (reset a Go duration). A value that does not read (a negative
//! count, Azure's `-1`, a date that is not one) is left out, never an error.

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use std::time::Duration;

use super::http::MAX_RETRY_AFTER;
use crate::protocol::{LimitDimension, anthropic, chat};

/// One dimension of a provider's rate limit, as one response stated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub dimension: LimitDimension,
    /// The most the window allows.
    pub limit: Option<u64>,
    /// What is left of it.
    pub remaining: Option<u64>,
    /// How long from the response until it is back to its limit (at most a day).
    pub reset: Option<Duration>,
}

/// A response's rate-limit headers: one [`Allowance`] per dimension it stated, in
/// [`LimitDimension`] order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RateLimits {
    pub allowances: Vec<Allowance>,
}

impl RateLimits {
    /// The rate limits `headers` state (either protocol's names), `now` being when they came;
    /// `None` when they state none.
    pub fn from_headers(headers: &HeaderMap, now: DateTime<Utc>) -> Option<RateLimits> {
        let value = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let tables = anthropic::RATE_LIMIT_HEADERS
            .iter()
            .chain(chat::RATE_LIMIT_HEADERS.iter());
        let mut allowances: Vec<Allowance> = Vec::new();
        for (dimension, [limit, remaining, reset]) in tables {
            let allowance = Allowance {
                dimension: *dimension,
                limit: value(limit).and_then(count),
                remaining: value(remaining).and_then(count),
                reset: value(reset).and_then(|v| reset_in(v, now)),
            };
            let stated = allowance.limit.is_some() || allowance.remaining.is_some();
            // Anthropic's and OpenAI's names never meet on one response; if they did, the first wins.
            if stated && !allowances.iter().any(|a| a.dimension == *dimension) {
                allowances.push(allowance);
            }
        }
        allowances.sort_by_key(|a| a.dimension);
        (!allowances.is_empty()).then_some(RateLimits { allowances })
    }

    pub fn get(&self, dimension: LimitDimension) -> Option<&Allowance> {
        self.allowances.iter().find(|a| a.dimension == dimension)
    }
}

/// A count of requests or tokens: a whole number, not negative.
fn count(text: &str) -> Option<u64> {
    text.parse().ok()
}

/// A reset as either provider writes it: an RFC 3339 time (Anthropic), a Go duration (OpenAI), or
/// a number of seconds (some compatible servers). A time already past is a reset now.
fn reset_in(text: &str, now: DateTime<Utc>) -> Option<Duration> {
    let wait = if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    } else if let Some(d) = chat::parse_reset_duration(text) {
        d
    } else {
        let secs: f64 = text.parse().ok().filter(|s: &f64| s.is_finite())?;
        Duration::try_from_secs_f64(secs).ok()?
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn allowance(
        dimension: LimitDimension,
        limit: u64,
        remaining: u64,
        reset_ms: u64,
    ) -> Allowance {
        Allowance {
            dimension,
            limit: Some(limit),
            remaining: Some(remaining),
            reset: Some(Duration::from_millis(reset_ms)),
        }
    }

    /// The headers of a real Anthropic response (2025-08, `Date: Thu, 21 Aug 2025 12:41:00 GMT`):
    /// a reset a second in the past is a reset now.
    #[test]
    fn anthropic_headers_as_the_api_sends_them() {
        let h = headers(&[
            ("anthropic-ratelimit-input-tokens-limit", "80000"),
            ("anthropic-ratelimit-input-tokens-remaining", "80000"),
            (
                "anthropic-ratelimit-input-tokens-reset",
                "2025-08-21T12:40:59Z",
            ),
            ("anthropic-ratelimit-output-tokens-limit", "16000"),
            ("anthropic-ratelimit-output-tokens-remaining", "15000"),
            (
                "anthropic-ratelimit-output-tokens-reset",
                "2025-08-21T12:41:00Z",
            ),
            ("anthropic-ratelimit-requests-limit", "1000"),
            ("anthropic-ratelimit-requests-remaining", "999"),
            ("anthropic-ratelimit-requests-reset", "2025-08-21T12:41:12Z"),
            ("anthropic-ratelimit-tokens-limit", "96000"),
            ("anthropic-ratelimit-tokens-remaining", "95000"),
            (
                "anthropic-ratelimit-tokens-reset",
                "2025-08-21T12:41:00.500Z",
            ),
            ("request-id", "req_011CSLsW7mFqvHHnzrKdKjAE"),
        ]);
        let limits = RateLimits::from_headers(&h, at("2025-08-21T12:41:00Z")).unwrap();
        use LimitDimension::*;
        assert_eq!(
            limits.allowances,
            [
                allowance(Requests, 1000, 999, 12_000),
                allowance(Tokens, 96_000, 95_000, 500),
                allowance(InputTokens, 80_000, 80_000, 0),
                allowance(OutputTokens, 16_000, 15_000, 0),
            ]
        );
    }

    /// OpenAI's, as Chat Completions and the Responses API send them (resets as Go durations).
    #[test]
    fn openai_headers_as_the_api_sends_them() {
        let h = headers(&[
            ("x-ratelimit-limit-requests", "5000"),
            ("x-ratelimit-limit-tokens", "160000"),
            ("x-ratelimit-limit-tokens_usage_based", "160000"),
            ("x-ratelimit-remaining-requests", "4999"),
            ("x-ratelimit-remaining-tokens", "159976"),
            ("x-ratelimit-reset-requests", "12ms"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]);
        let limits = RateLimits::from_headers(&h, Utc::now()).unwrap();
        assert_eq!(
            limits.allowances,
            [
                allowance(LimitDimension::Requests, 5000, 4999, 12),
                allowance(LimitDimension::Tokens, 160_000, 159_976, 360_000),
            ]
        );
        let h = headers(&[
            ("x-ratelimit-remaining-requests", "2"),
            ("x-ratelimit-reset-requests", "1h2m3.5s"),
        ]);
        let requests = *RateLimits::from_headers(&h, Utc::now())
            .unwrap()
            .get(LimitDimension::Requests)
            .unwrap();
        assert_eq!(
            (requests.limit, requests.remaining, requests.reset),
            (None, Some(2), Some(Duration::from_millis(3_723_500)))
        );
    }

    #[test]
    fn garbled_values_are_left_out_never_an_error() {
        // Azure's "no limit known", a float, words, a reset that is no time at all.
        let h = headers(&[
            ("x-ratelimit-limit-tokens", "-1"),
            ("x-ratelimit-remaining-tokens", "-1"),
            ("x-ratelimit-reset-tokens", "0"),
            ("x-ratelimit-limit-requests", "50.5"),
            ("x-ratelimit-remaining-requests", "twelve"),
            ("x-ratelimit-reset-requests", "soon"),
        ]);
        assert_eq!(RateLimits::from_headers(&h, Utc::now()), None);
        let h = headers(&[
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "7"),
            ("anthropic-ratelimit-requests-reset", "Thursday"),
        ]);
        let limits = RateLimits::from_headers(&h, Utc::now()).unwrap();
        let requests = limits.get(LimitDimension::Requests).unwrap();
        assert_eq!(
            (requests.limit, requests.remaining, requests.reset),
            (Some(50), Some(7), None)
        );
        assert_eq!(
            RateLimits::from_headers(&HeaderMap::new(), Utc::now()),
            None
        );
    }

    #[test]
    fn a_reset_is_at_most_a_day_and_a_number_is_seconds() {
        let now = at("2026-01-01T00:00:00Z");
        assert_eq!(reset_in("9999-12-31T23:59:59Z", now), Some(MAX_RETRY_AFTER));
        assert_eq!(reset_in("900000h", now), Some(MAX_RETRY_AFTER));
        assert_eq!(reset_in("7", now), Some(Duration::from_secs(7)));
        assert_eq!(reset_in("1.5", now), Some(Duration::from_millis(1500)));
        assert_eq!(reset_in("-3", now), None);
        assert_eq!(reset_in("1e400", now), None);
        assert_eq!(
            reset_in("2026-01-01T01:00:00+01:00", now),
            Some(Duration::ZERO),
            "a time with an offset is the same instant"
        );
    }
}
