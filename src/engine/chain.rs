//! What a chain is made of: its targets ([`Target`], some of them members of a [`Pool`]) and the
//! settings that say how the engine walks them ([`EngineSettings`]: the class policy, retries,
//! mid-stream policy, the all-open fallback and hedging).

use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::breaker::BreakerKey;
use crate::engine::classify::Policy;
pub use crate::engine::pool::Pool;
use crate::engine::retry::RetryConfig;
use crate::provider::{Provider, Request};

/// One link of a chain: a provider and how to use it.
#[derive(Clone)]
pub struct Target {
    pub provider: Arc<dyn Provider>,
    /// The model to ask for; the provider's default when `None`.
    pub model: Option<String>,
    /// The context window in tokens, when known (for `context_length` failover).
    pub context_window: Option<u64>,
    /// Accepts a partial assistant reply to continue from (Anthropic does; OpenAI does not).
    pub accepts_prefill: bool,
    /// The breaker guarding this target: the provider's, or its model's for per-model breakers.
    pub breaker_key: BreakerKey,
    /// The pool this target is a member of. A pool's members stand together in the chain; each
    /// request tries them in the order the pool picks ([`Pool::order`]).
    pub pool: Option<Arc<Pool>>,
    /// Its weight in its pool (1 outside one).
    pub weight: u32,
}

impl Target {
    /// The model this target asks for with `request`: its own, else the caller's when the request
    /// is "as requested" and the target speaks a protocol of the caller's provider, else the request's (empty:
    /// the provider's configured default).
    pub fn model_for(&self, request: &Request) -> String {
        if let Some(model) = &self.model {
            return model.clone();
        }
        match &request.as_requested {
            Some((protocol, model))
                if self
                    .provider
                    .protocol()
                    .is_some_and(|p| p.same_models(*protocol)) =>
            {
                model.clone()
            }
            _ => request.model.clone(),
        }
    }

    pub fn new(provider: Arc<dyn Provider>) -> Self {
        let breaker_key = BreakerKey::provider(provider.name());
        Target {
            provider,
            model: None,
            context_window: None,
            accepts_prefill: false,
            breaker_key,
            pool: None,
            weight: 1,
        }
    }

    pub(super) fn name(&self) -> &str {
        self.provider.name()
    }

    /// The name of the pool it is a member of.
    pub fn pool_name(&self) -> Option<&str> {
        self.pool.as_deref().map(|p| p.name.as_str())
    }

    /// Whether `other` is a member of the same pool.
    pub(super) fn same_pool(&self, other: &Target) -> bool {
        matches!((&self.pool, &other.pool), (Some(a), Some(b)) if Arc::ptr_eq(a, b))
    }
}

/// What to do when a committed stream fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MidStreamPolicy {
    /// Withdraw the partial reply (`rewind`) and re-issue the whole request: the answer is one
    /// provider's complete reply, never a splice.
    #[default]
    Restart,
    /// Send the partial reply as an assistant prefill to a target that accepts one and splice the
    /// continuation on; restart where that is not possible.
    Continue,
    /// For callers that can never withdraw what they have shown (the gateway's live mode): like
    /// `continue` until the caller has visible content (reply text or part of a tool call); from
    /// then on only a target that accepts a prefill may carry on, and only after text (a tool call
    /// cannot be spliced). Targets that cannot are skipped (`attempt_skipped`, reason
    /// `cannot_continue`); one that refuses the prefill (a 400) is passed over too, never asked
    /// again without it. When none can, the request ends with the mid-stream error (see
    /// `Tally::keep`). Never a `Rewind` once content is visible; before, a `Rewind` of zero
    /// characters may withdraw a bare `MessageStart`.
    ContinueOrFail,
    /// End the request with the error.
    Fail,
}

/// What to do when every target's breaker refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenAllOpen {
    /// Fail at once with a clear error.
    #[default]
    Fail,
    /// Try the target whose breaker opened first, once, despite its breaker.
    TryEarliest,
}

/// When to start the next target in parallel with a silent one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeTrigger {
    /// After a fixed time without a first event.
    After(Duration),
    /// After this percentile (0–100) of the target's recent first-event latencies; `fallback` until
    /// there are enough samples.
    Percentile { percentile: f64, fallback: Duration },
}

/// How a chain is walked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EngineSettings {
    pub policy: Policy,
    pub retry: RetryConfig,
    pub mid_stream: MidStreamPolicy,
    pub when_all_open: WhenAllOpen,
    /// Retry a target on the same route after it timed out without a byte (default: fail over).
    pub retry_silent_timeouts: bool,
    /// Hedging; off when `None`.
    pub hedge: Option<HedgeTrigger>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn continue_or_fail_has_its_config_name() {
        #[derive(Deserialize)]
        struct Chain {
            mid_stream: MidStreamPolicy,
        }
        let chain: Chain = toml::from_str("mid_stream = \"continue_or_fail\"").unwrap();
        assert_eq!(chain.mid_stream, MidStreamPolicy::ContinueOrFail);
    }
}
