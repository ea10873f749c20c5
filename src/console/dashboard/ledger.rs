//! What the fold remembers between events and no panel reads: the session's breaker settings, the
//! half-open probes still out, and the usage cost reported for attempts whose outcome has not
//! arrived yet. Bounded like everything else.

use std::collections::{BTreeMap, VecDeque};

use super::providers::PROVIDERS_KEPT;
use crate::event::ErrorClass;
use crate::event::facts::Spend;

/// Probes awaiting their outcome.
pub(super) const PROBES_KEPT: usize = 1_024;
/// Requests with usage costs awaiting their outcome.
pub(super) const USAGE_KEPT: usize = 4_096;

/// Public only so that `Dashboard { .., ..Dashboard::new() }` still works outside this module; its
/// fields are private to the dashboard.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// The session's breaker threshold, for providers that appear after `session_started`.
    pub(super) threshold: Option<u32>,
    /// The classes the session's breakers count (`session_started.breaker_counts`; absent: the
    /// default policy's).
    pub(super) breaker_counts: Option<Vec<ErrorClass>>,
    /// Attempts started while their breaker was half-open and not yet ended, oldest first.
    pub(super) probes: VecDeque<Probe>,
    /// The latest usage cost per request and provider: the engine publishes an attempt's `usage`
    /// just before its `attempt_failed`, which charges it to the provider's failed cost. Ordered
    /// (not hashed) so that the dashboard's `Debug` is the same for the same events.
    pub(super) usage: BTreeMap<String, Vec<(String, Spend)>>,
}

/// An attempt let through a half-open breaker.
#[derive(Debug, Clone)]
pub(super) struct Probe {
    pub provider: String,
    /// The attempt's model: it names the breaker when the provider has one per model.
    pub model: String,
    pub request_id: String,
    pub attempt: u32,
}

impl Ledger {
    /// Note a probe; returns the oldest one, forgotten to make room, if any.
    pub(super) fn add_probe(&mut self, probe: Probe) -> Option<Probe> {
        self.probes.push_back(probe);
        if self.probes.len() > PROBES_KEPT {
            return self.probes.pop_front();
        }
        None
    }

    /// Forget the probes that `ended` says have ended, each exactly once; returns them.
    pub(super) fn release_probes(&mut self, ended: impl Fn(&Probe) -> bool) -> Vec<Probe> {
        let mut released = Vec::new();
        let mut kept = VecDeque::with_capacity(self.probes.len());
        for probe in self.probes.drain(..) {
            if ended(&probe) {
                released.push(probe);
            } else {
                kept.push_back(probe);
            }
        }
        self.probes = kept;
        released
    }

    /// The cost of the usage just reported for this request at this provider (the latest wins).
    pub(super) fn note_usage(&mut self, request_id: &str, provider: &str, spent: Spend) {
        if let Some(costs) = self.usage.get_mut(request_id) {
            if let Some((_, cost)) = costs.iter_mut().find(|(p, _)| p == provider) {
                *cost = spent;
            } else if costs.len() < PROVIDERS_KEPT {
                costs.push((provider.to_string(), spent));
            }
            return;
        }
        // Requests whose end was never seen must not pile up: drop one (any) to make room.
        if self.usage.len() >= USAGE_KEPT {
            self.usage.pop_first();
        }
        self.usage
            .insert(request_id.to_string(), vec![(provider.to_string(), spent)]);
    }

    /// The cost of the usage just reported for this request at this provider, if any (taken, so
    /// that it is charged once).
    pub(super) fn take_usage(&mut self, request_id: &str, provider: &str) -> Spend {
        let Some(costs) = self.usage.get_mut(request_id) else {
            return Spend::default();
        };
        let Some(i) = costs.iter().position(|(p, _)| p == provider) else {
            return Spend::default();
        };
        let (_, cost) = costs.swap_remove(i);
        if costs.is_empty() {
            self.usage.remove(request_id);
        }
        cost
    }

    /// The request has ended: nothing of it is charged any more.
    pub(super) fn forget_request(&mut self, request_id: &str) {
        self.usage.remove(request_id);
    }
}

#[cfg(test)]
mod tests {
    use crate::console::dashboard::script::*;
    use crate::event::{ErrorClass, Phase};

    #[test]
    fn a_failed_attempt_is_charged_once_and_only_to_its_provider() {
        let dash = Script::default()
            .at(0, request("r1", &["a", "b"]))
            .at(1, attempt("r1", 1, "a"))
            .at(2, usage("r1", "a", 0.5))
            .at(
                3,
                failed("r1", 1, "a", ErrorClass::StreamCut, Phase::MidStream),
            )
            // A retry on the same provider that fails before any usage costs nothing.
            .at(4, attempt("r1", 2, "a"))
            .at(5, failed("r1", 2, "a", ErrorClass::Connect, Phase::Connect))
            .at(6, attempt("r1", 3, "b"))
            .at(7, usage("r1", "b", 0.25))
            .at(8, ok("r1", "b", 0.75, 0.5, 0.6))
            .fold();
        assert!(close(dash.provider("a").unwrap().failed_cost_usd, 0.5));
        assert!(close(dash.provider("b").unwrap().failed_cost_usd, 0.0));
        assert!(close(dash.totals.failed_cost_usd, 0.5));
        assert!(dash.ledger.usage.is_empty(), "{:?}", dash.ledger.usage);
    }
}
