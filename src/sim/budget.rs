//! A simulated provider's rate limit (`rate_limit_budget`): requests and tokens per window, spent
//! by each request, stated in the protocol's rate-limit headers on every response, and a 429 once
//! spent until the window resets. Windows follow one another from when the fault was set (or
//! changed), on tokio's clock.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

use crate::protocol::{LimitDimension, Protocol, anthropic, chat};

/// A budget: so many requests and tokens (0: not limited) per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    pub requests: u32,
    pub tokens: u32,
    pub per: Duration,
}

/// What is left of a budget in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Left {
    pub budget: Budget,
    pub requests: u64,
    pub tokens: u64,
    /// Until the window ends and the budget is whole again.
    pub reset_in: Duration,
}

/// The window a budget is being spent in.
#[derive(Debug, Default)]
pub(crate) struct Window(Mutex<Option<Spent>>);

#[derive(Debug, Clone, Copy)]
struct Spent {
    budget: Budget,
    started: Instant,
    requests: u64,
    tokens: u64,
}

impl Window {
    /// Spend one request of `tokens` tokens from `budget`, now: what is left after it, or `Err`
    /// with what is left (nothing) when the window's budget was already spent.
    pub fn spend(&self, budget: Budget, tokens: u64) -> Result<Left, Left> {
        let now = Instant::now();
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let spent = guard.get_or_insert(Spent {
            budget,
            started: now,
            requests: 0,
            tokens: 0,
        });
        if spent.budget != budget {
            *spent = Spent {
                budget,
                started: now,
                requests: 0,
                tokens: 0,
            };
        }
        let per = budget.per.max(Duration::from_millis(1));
        let elapsed = now.saturating_duration_since(spent.started);
        if elapsed >= per {
            // Whole windows passed: the current one started at the last boundary.
            let windows = (elapsed.as_nanos() / per.as_nanos()) as u32;
            spent.started += per.saturating_mul(windows);
            spent.requests = 0;
            spent.tokens = 0;
        }
        let reset_in = (spent.started + per).saturating_duration_since(now);
        let token_limit = u64::from(budget.tokens);
        let out_of_tokens = budget.tokens > 0 && spent.tokens >= token_limit;
        if spent.requests >= u64::from(budget.requests) || out_of_tokens {
            return Err(left(spent, reset_in));
        }
        spent.requests += 1;
        spent.tokens = spent.tokens.saturating_add(tokens);
        Ok(left(spent, reset_in))
    }

    /// Forget the window (the fault changed): the next budget starts whole.
    pub fn clear(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

fn left(spent: &Spent, reset_in: Duration) -> Left {
    Left {
        budget: spent.budget,
        requests: u64::from(spent.budget.requests).saturating_sub(spent.requests),
        tokens: u64::from(spent.budget.tokens).saturating_sub(spent.tokens),
        reset_in,
    }
}

/// The rate-limit headers `protocol` states `left` in: Anthropic's four dimensions (tokens,
/// input and output tokens each against the one token limit) with RFC 3339 resets rounded up
/// to the second, OpenAI's two with Go-duration resets. Tokens are left out when not limited.
pub(crate) fn headers(protocol: Protocol, left: &Left) -> Vec<(&'static str, String)> {
    let amounts = |dimension: LimitDimension| match dimension {
        LimitDimension::Requests => Some((u64::from(left.budget.requests), left.requests)),
        _ if left.budget.tokens == 0 => None,
        _ => Some((u64::from(left.budget.tokens), left.tokens)),
    };
    // Bedrock states no rate limits in its headers.
    if protocol == Protocol::Bedrock {
        return Vec::new();
    }
    let reset = match protocol {
        Protocol::Anthropic => {
            let at = chrono::Utc::now()
                + chrono::Duration::milliseconds(
                    i64::try_from(left.reset_in.as_millis()).unwrap_or(i64::MAX / 2),
                );
            // Rounded up: a client never comes back before the window turns.
            let at = at + chrono::Duration::milliseconds(999);
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        }
        Protocol::Openai | Protocol::OpenaiResponses | Protocol::Bedrock | Protocol::Azure => {
            chat::reset_duration(left.reset_in)
        }
        // Google states no rate limits in headers: a spent budget is only its 429's RetryInfo.
        Protocol::Gemini => return Vec::new(),
    };
    let table: &[(LimitDimension, [&'static str; 3])] = match protocol {
        Protocol::Anthropic => &anthropic::RATE_LIMIT_HEADERS,
        Protocol::Openai | Protocol::OpenaiResponses | Protocol::Bedrock | Protocol::Azure => {
            &chat::RATE_LIMIT_HEADERS
        }
        Protocol::Gemini => &[],
    };
    let mut out = Vec::new();
    for (dimension, [limit, remaining, reset_name]) in table {
        if let Some((max, now)) = amounts(*dimension) {
            out.push((*limit, max.to_string()));
            out.push((*remaining, now.to_string()));
            out.push((*reset_name, reset.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BUDGET: Budget = Budget {
        requests: 3,
        tokens: 100,
        per: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn a_budget_counts_down_then_refuses_until_its_window_turns() {
        let w = Window::default();
        let left = w.spend(BUDGET, 10).unwrap();
        assert_eq!((left.requests, left.tokens), (2, 90));
        assert_eq!(left.reset_in, Duration::from_secs(60));
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(w.spend(BUDGET, 10).unwrap().requests, 1);
        let left = w.spend(BUDGET, 10).unwrap();
        assert_eq!(
            (left.requests, left.tokens, left.reset_in),
            (0, 70, Duration::from_secs(40))
        );
        let refused = w.spend(BUDGET, 10).unwrap_err();
        assert_eq!((refused.requests, refused.tokens), (0, 70));
        // The window turns at 60 s, and the next one at 120 s (not 60 s after the next request).
        tokio::time::advance(Duration::from_secs(45)).await;
        let left = w.spend(BUDGET, 10).unwrap();
        assert_eq!((left.requests, left.reset_in), (2, Duration::from_secs(55)));
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_run_out_too_and_a_new_budget_starts_whole() {
        let w = Window::default();
        assert_eq!(w.spend(BUDGET, 150).unwrap().tokens, 0);
        assert!(w.spend(BUDGET, 1).is_err(), "the tokens are spent");
        let unlimited = Budget {
            tokens: 0,
            ..BUDGET
        };
        assert_eq!(w.spend(unlimited, 1_000_000).unwrap().requests, 2);
        w.clear();
        assert_eq!(w.spend(unlimited, 1).unwrap().requests, 2);
    }

    #[test]
    fn headers_use_each_protocols_names_and_formats() {
        let left = Left {
            budget: BUDGET,
            requests: 2,
            tokens: 90,
            reset_in: Duration::from_millis(6_500),
        };
        let openai = headers(Protocol::Openai, &left);
        assert_eq!(
            openai,
            [
                ("x-ratelimit-limit-requests", "3".to_string()),
                ("x-ratelimit-remaining-requests", "2".to_string()),
                ("x-ratelimit-reset-requests", "6.5s".to_string()),
                ("x-ratelimit-limit-tokens", "100".to_string()),
                ("x-ratelimit-remaining-tokens", "90".to_string()),
                ("x-ratelimit-reset-tokens", "6.5s".to_string()),
            ]
        );
        let anthropic = headers(Protocol::Anthropic, &left);
        assert_eq!(anthropic.len(), 12);
        let reset = &anthropic[2].1;
        let at = chrono::DateTime::parse_from_rfc3339(reset).unwrap();
        let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
        assert!(
            (6..=8).contains(&wait.num_seconds()),
            "{reset} is {wait:?} away"
        );
        let untokened = Left {
            budget: Budget {
                tokens: 0,
                ..BUDGET
            },
            ..left
        };
        assert_eq!(headers(Protocol::Anthropic, &untokened).len(), 3);
    }
}
