//! Recent requests and their part of the fold: each request's chain, its attempts (waiting,
//! streaming, failed, skipped), its reply as the caller has it (rewinds applied, bounded), how it
//! ended; and the session's totals.

use chrono::{DateTime, Utc};

use super::providers::Tokens;
use super::ring::{bounded, push_capped, push_ring};
use super::{Dashboard, finite, message};
use crate::event::facts::Spend;
use crate::event::{BreakerState, ErrorClass, EventKind, Outcome, Phase, SkipReason, Source};

/// Recent requests kept for the reply panel and the request list.
pub const REQUESTS_KEPT: usize = 200;
/// Largest reply text kept per request (the rest is dropped and marked).
pub const REPLY_CHARS_KEPT: usize = 64 * 1024;
/// Attempts and rewinds kept per request (the engine's budgets keep real ones far below).
pub(super) const ATTEMPTS_KEPT: usize = 64;
/// Chain entries kept per request.
pub(super) const CHAIN_KEPT: usize = super::providers::PROVIDERS_KEPT;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub requests: u64,
    /// Finished ok.
    pub answered: u64,
    /// Finished ok from a provider other than the first of its chain.
    pub failed_over: u64,
    /// Finished with an error (a caller that went away is not one: see `cancelled`).
    pub failed: u64,
    /// Ended because the caller went away (class `cancelled`): not the providers' failure, so
    /// counted apart from `failed` (the errors panel does not count them either).
    pub cancelled: u64,
    pub in_flight: u64,
    pub cost_usd: f64,
    pub failed_cost_usd: f64,
    /// Sum over answered requests of `cost_usd - primary_cost_usd`: what failing over cost extra.
    pub failover_delta_usd: f64,
    /// Usages of a model without a price, left out of `cost_usd` (see [`Totals::cost`]).
    pub unpriced: u64,
    /// Of those, the ones of failed or cancelled attempts (left out of `failed_cost_usd`).
    pub failed_unpriced: u64,
    /// Answered requests left out of `failover_delta_usd` because their own cost is unknown.
    pub delta_unknown: u64,
}

impl Totals {
    /// What the session cost, unpriced usage said apart (never shown as $0).
    pub fn cost(&self) -> Spend {
        Spend {
            usd: self.cost_usd,
            unpriced: self.unpriced,
        }
    }

    /// What failed and cancelled attempts cost.
    pub fn failed_cost(&self) -> Spend {
        Spend {
            usd: self.failed_cost_usd,
            unpriced: self.failed_unpriced,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RequestView {
    pub id: String,
    pub source: Source,
    pub prompt: Option<String>,
    pub chain: Vec<String>,
    /// The chain the request asked for by name (`x-breakerbox-chain`), if it did.
    pub chain_name: Option<String>,
    /// The request turned failover off (`x-breakerbox-failover: off`).
    pub failover_off: bool,
    pub started_at: DateTime<Utc>,
    /// The reply as the caller has it now: rewinds applied.
    pub text: String,
    /// True when `text` hit `REPLY_CHARS_KEPT` and later text was dropped.
    pub text_truncated: bool,
    pub rewinds: Vec<RewindView>,
    pub attempts: Vec<AttemptView>,
    /// Who is streaming now / who answered.
    pub provider: Option<String>,
    pub outcome: Option<Outcome>,
    pub class: Option<ErrorClass>,
    pub message: Option<String>,
    pub stop_reason: Option<String>,
    pub total_ms: Option<u64>,
    pub cost_usd: f64,
    /// Some attempt used a model without a price: `cost_usd` is a lower bound.
    pub unpriced: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RewindView {
    pub provider: String,
    pub discarded_chars: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttemptView {
    pub number: u32,
    pub provider: String,
    pub model: String,
    pub state: AttemptState,
    /// What the attempt's detail view shows beyond its state.
    pub detail: AttemptDetail,
}

/// An attempt in full, for its request's detail view (kept only while the request is).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptDetail {
    pub started_at: Option<DateTime<Utc>>,
    /// The state of the breaker it went through when it started.
    pub breaker: Option<BreakerState>,
    pub first_event_ms: Option<u64>,
    /// On failure: the HTTP status, the provider's retry-after, how long it ran.
    pub status: Option<u16>,
    pub retry_after_ms: Option<u64>,
    pub elapsed_ms: Option<u64>,
    /// From its `usage` (the latest of its provider in the request).
    pub tokens: Option<Tokens>,
    pub cost_usd: f64,
    pub tokens_estimated: bool,
    /// Its model has no price: `cost_usd` is 0 and the cost unknown.
    pub unpriced: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttemptState {
    Waiting,
    Streaming {
        latency_ms: u64,
    },
    Failed {
        class: ErrorClass,
        phase: Phase,
        retryable: bool,
        message: String,
    },
    Skipped {
        reason: SkipReason,
    },
}

impl RequestView {
    fn new(ts: DateTime<Utc>, id: &str, source: Source, chain: Vec<String>) -> Self {
        RequestView {
            id: id.to_string(),
            source,
            prompt: None,
            chain,
            chain_name: None,
            failover_off: false,
            started_at: ts,
            text: String::new(),
            text_truncated: false,
            rewinds: Vec::new(),
            attempts: Vec::new(),
            provider: None,
            outcome: None,
            class: None,
            message: None,
            stop_reason: None,
            total_ms: None,
            cost_usd: 0.0,
            unpriced: false,
        }
    }

    /// What it cost, an unpriced attempt said apart (never shown as $0).
    pub fn cost(&self) -> Spend {
        Spend::of(self.cost_usd, self.unpriced)
    }

    /// Ended because the caller went away (not a failure of the providers).
    pub fn cancelled(&self) -> bool {
        self.outcome == Some(Outcome::Error) && self.class == Some(ErrorClass::Cancelled)
    }

    /// Whether a first event has come from the provider it is with now: streaming, rather than
    /// waiting for one.
    pub fn streaming(&self) -> bool {
        let current = self
            .attempts
            .iter()
            .rev()
            .find(|a| Some(&a.provider) == self.provider.as_ref());
        self.outcome.is_none()
            && current.is_some_and(|a| matches!(a.state, AttemptState::Streaming { .. }))
    }

    /// The attempt by number; attempt numbers are unique within a request, the provider guards
    /// against a confused stream.
    fn attempt_mut(&mut self, number: u32, provider: &str) -> Option<&mut AttemptView> {
        self.attempts
            .iter_mut()
            .rev()
            .find(|a| a.number == number && a.provider == provider)
    }

    /// Append streamed text, keeping at most `REPLY_CHARS_KEPT` characters.
    fn append(&mut self, delta: &str) {
        if self.text_truncated {
            return;
        }
        // Bytes bound characters from above, so the usual case needs no counting.
        if self.text.len() + delta.len() <= REPLY_CHARS_KEPT {
            self.text.push_str(delta);
            return;
        }
        let room = REPLY_CHARS_KEPT.saturating_sub(self.text.chars().count());
        match delta.char_indices().nth(room) {
            None => self.text.push_str(delta),
            Some((cut, _)) => {
                self.text.push_str(delta.get(..cut).unwrap_or_default());
                self.text_truncated = true;
            }
        }
    }
}

impl Dashboard {
    /// A kept request by id (the newest, should an id repeat).
    pub fn request(&self, id: &str) -> Option<&RequestView> {
        self.requests.iter().rev().find(|r| r.id == id)
    }

    /// The model an attempt of a kept request was made on.
    pub(super) fn attempt_model(&self, id: &str, number: u32, provider: &str) -> Option<String> {
        let request = self.request(id)?;
        let attempt = request
            .attempts
            .iter()
            .rev()
            .find(|a| a.number == number && a.provider == provider)?;
        Some(attempt.model.clone())
    }

    /// The model that answered a kept request at `provider`: its attempt there that streamed.
    pub(super) fn answering_model(&self, id: &str, provider: &str) -> Option<String> {
        let request = self.request(id)?;
        let attempt = request.attempts.iter().rev().find(|a| {
            a.provider == provider && matches!(a.state, AttemptState::Streaming { .. })
        })?;
        Some(attempt.model.clone())
    }

    /// A piece of reply, to its request (while it is kept).
    pub(super) fn append_text(&mut self, request_id: &str, text: &str) {
        if let Some(request) = self.request_mut(request_id) {
            request.append(text);
        }
    }

    fn request_mut(&mut self, id: &str) -> Option<&mut RequestView> {
        // Events are about recent requests: the newest end finds them first.
        self.requests.iter_mut().rev().find(|r| r.id == id)
    }

    /// The requests' part of an event, and the totals'.
    pub(super) fn fold_requests(&mut self, ts: DateTime<Utc>, kind: &EventKind) {
        match kind {
            EventKind::RequestStarted {
                request_id,
                source,
                chain,
                prompt,
                chain_name,
                failover,
                ..
            } => {
                self.on_request_started(ts, request_id, *source, chain, prompt.as_deref());
                if let Some(request) = self.request_mut(request_id) {
                    request.chain_name = chain_name.as_deref().map(|n| bounded(n, 64));
                    request.failover_off = *failover == Some(false);
                }
            }
            EventKind::AttemptStarted {
                request_id,
                attempt,
                provider,
                model,
                ..
            } => self.on_attempt_started(ts, request_id, *attempt, provider, model),
            EventKind::AttemptFailed { .. } => self.on_attempt_failed(kind),
            EventKind::AttemptSkipped {
                request_id,
                provider,
                reason,
            } => self.on_attempt_skipped(request_id, provider, *reason),
            EventKind::FirstEvent {
                request_id,
                attempt,
                provider,
                latency_ms,
            } => self.on_first_event(request_id, *attempt, provider, *latency_ms),
            EventKind::TextDelta {
                request_id, text, ..
            } => self.append_text(request_id, text),
            EventKind::Rewind { .. } => self.on_rewind(kind),
            EventKind::Usage {
                request_id,
                provider,
                cost_usd,
                unpriced,
                ..
            } => {
                self.on_usage(
                    request_id,
                    provider,
                    Spend::of(finite(*cost_usd), *unpriced),
                );
                self.attempt_usage(kind);
            }
            EventKind::RequestFinished { .. } => self.on_request_finished(kind),
            EventKind::SessionStarted { .. }
            | EventKind::BreakerChanged { .. }
            | EventKind::ProviderFlagged { .. }
            | EventKind::FaultChanged { .. }
            | EventKind::ProbeStarted { .. }
            | EventKind::ProbeFinished { .. }
            | EventKind::RateLimits { .. }
            | EventKind::ThrottleChanged { .. }
            | EventKind::ClusterChanged { .. }
            | EventKind::RequestRejected { .. }
            | EventKind::OperatorAction { .. } => {}
        }
    }

    fn on_request_started(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        source: Source,
        chain: &[String],
        prompt: Option<&str>,
    ) {
        self.totals.requests += 1;
        self.totals.in_flight += 1;
        let chain: Vec<String> = chain.iter().take(CHAIN_KEPT).cloned().collect();
        let mut request = RequestView::new(ts, request_id, source, chain);
        request.prompt = prompt.map(|p| bounded(p, REPLY_CHARS_KEPT));
        push_ring(&mut self.requests, request, REQUESTS_KEPT);
    }

    fn on_attempt_started(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        attempt: u32,
        provider: &str,
        model: &str,
    ) {
        let breaker = self.provider(provider).map(|p| p.breaker_of(model));
        if let Some(request) = self.request_mut(request_id) {
            let attempt = AttemptView {
                number: attempt,
                provider: provider.to_string(),
                model: model.to_string(),
                state: AttemptState::Waiting,
                detail: AttemptDetail {
                    started_at: Some(ts),
                    breaker,
                    ..AttemptDetail::default()
                },
            };
            push_capped(&mut request.attempts, attempt, ATTEMPTS_KEPT);
            request.provider = Some(provider.to_string());
        }
    }

    fn on_first_event(&mut self, request_id: &str, attempt: u32, provider: &str, latency_ms: u64) {
        if let Some(request) = self.request_mut(request_id) {
            if let Some(a) = request.attempt_mut(attempt, provider) {
                a.state = AttemptState::Streaming { latency_ms };
                a.detail.first_event_ms = Some(latency_ms);
            }
            // The engine has committed to this provider.
            if request.provider.as_deref() != Some(provider) {
                request.provider = Some(provider.to_string());
            }
        }
    }

    fn on_attempt_failed(&mut self, kind: &EventKind) {
        let EventKind::AttemptFailed {
            request_id,
            attempt,
            provider,
            phase,
            class,
            retryable,
            message: text,
            status,
            retry_after_ms,
            elapsed_ms,
        } = kind
        else {
            return;
        };
        if let Some(request) = self.request_mut(request_id)
            && let Some(a) = request.attempt_mut(*attempt, provider)
        {
            a.detail.status = *status;
            a.detail.retry_after_ms = *retry_after_ms;
            a.detail.elapsed_ms = Some(*elapsed_ms);
            a.state = AttemptState::Failed {
                class: *class,
                phase: *phase,
                retryable: *retryable,
                message: message(text),
            };
        }
    }

    fn on_attempt_skipped(&mut self, request_id: &str, provider: &str, reason: SkipReason) {
        if let Some(request) = self.request_mut(request_id) {
            let skipped = AttemptView {
                number: 0,
                provider: provider.to_string(),
                model: String::new(),
                state: AttemptState::Skipped { reason },
                detail: AttemptDetail::default(),
            };
            push_capped(&mut request.attempts, skipped, ATTEMPTS_KEPT);
        }
    }

    /// The reply shown so far is withdrawn: the request restarts elsewhere.
    fn on_rewind(&mut self, kind: &EventKind) {
        let EventKind::Rewind {
            request_id,
            provider,
            discarded_chars,
            reason,
        } = kind
        else {
            return;
        };
        if let Some(request) = self.request_mut(request_id) {
            request.text.clear();
            request.text_truncated = false;
            let rewind = RewindView {
                provider: provider.clone(),
                discarded_chars: *discarded_chars,
                reason: message(reason),
            };
            push_capped(&mut request.rewinds, rewind, ATTEMPTS_KEPT);
        }
    }

    /// What a `usage` costs the request and the session; kept in the ledger until the attempt's
    /// outcome says whether it was a failure's cost.
    fn on_usage(&mut self, request_id: &str, provider: &str, spent: Spend) {
        self.totals.cost_usd += spent.usd;
        self.totals.unpriced += spent.unpriced;
        if let Some(request) = self.request_mut(request_id) {
            request.cost_usd += spent.usd;
            request.unpriced |= !spent.known();
        }
        self.ledger.note_usage(request_id, provider, spent);
    }

    /// A `usage` to the attempt it reports on: its provider's latest in the request (the event
    /// names no attempt; the engine reports it at the attempt's end).
    fn attempt_usage(&mut self, kind: &EventKind) {
        let EventKind::Usage {
            request_id,
            provider,
            cost_usd,
            estimated,
            unpriced,
            ..
        } = kind
        else {
            return;
        };
        let Some(request) = self.request_mut(request_id) else {
            return;
        };
        let attempt =
            request.attempts.iter_mut().rev().find(|a| {
                a.provider == *provider && !matches!(a.state, AttemptState::Skipped { .. })
            });
        if let Some(a) = attempt {
            a.detail.tokens = Some(Tokens::of(kind));
            a.detail.cost_usd = finite(*cost_usd);
            a.detail.tokens_estimated = *estimated;
            a.detail.unpriced = *unpriced;
        }
    }

    fn on_request_finished(&mut self, kind: &EventKind) {
        let EventKind::RequestFinished {
            request_id,
            outcome,
            provider,
            stop_reason,
            class,
            message: text,
            total_ms,
            cost_usd,
            failed_cost_usd,
            primary_cost_usd,
            unpriced,
            ..
        } = kind
        else {
            return;
        };
        // An answer whose own cost is unknown says nothing of what failing over cost.
        let primary_cost_usd = primary_cost_usd.map(finite).filter(|_| !unpriced);
        if *unpriced && *outcome == Outcome::Ok {
            self.totals.delta_unknown += 1;
        }
        let outcome_kind = match (outcome, class) {
            (Outcome::Error, Some(ErrorClass::Cancelled)) => Ended::Cancelled,
            (Outcome::Error, _) => Ended::Failed,
            (Outcome::Ok, _) => Ended::Answered,
        };
        self.count_finished(
            outcome_kind,
            finite(*cost_usd),
            finite(*failed_cost_usd),
            primary_cost_usd,
        );
        if let Some(request) = self.request_mut(request_id) {
            let failed_over = *outcome == Outcome::Ok
                && provider.is_some()
                && request
                    .chain
                    .first()
                    .is_some_and(|primary| Some(primary) != provider.as_ref());
            request.outcome = Some(*outcome);
            request.class = *class;
            request.message = text.as_deref().map(message);
            request.stop_reason = stop_reason.as_deref().map(message);
            request.total_ms = Some(*total_ms);
            request.unpriced |= *unpriced;
            request.provider.clone_from(provider);
            if failed_over {
                self.totals.failed_over += 1;
            }
        }
        self.ledger.forget_request(request_id);
    }

    /// A finished request in the totals.
    fn count_finished(&mut self, ended: Ended, cost: f64, failed_cost: f64, primary: Option<f64>) {
        let totals = &mut self.totals;
        totals.in_flight = totals.in_flight.saturating_sub(1);
        totals.failed_cost_usd += failed_cost;
        match ended {
            Ended::Answered => {
                totals.answered += 1;
                if let Some(primary) = primary {
                    totals.failover_delta_usd += cost - primary;
                }
            }
            Ended::Failed => totals.failed += 1,
            Ended::Cancelled => totals.cancelled += 1,
        }
    }
}

/// How a request ended, as the totals count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Answered,
    Failed,
    /// The caller went away.
    Cancelled,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::dashboard::script::*;

    #[test]
    fn reply_text_is_cut_at_the_limit_on_a_character_boundary() {
        let mut s = Script::default();
        s.at(0, request("r1", &["a"]));
        // Multi-byte characters: bytes run well past the limit before characters do.
        let chunk = "é€😀x".repeat(100);
        for _ in 0..(10 * REPLY_CHARS_KEPT / 400) {
            s.at(1, delta("r1", "a", &chunk));
        }
        let dash = s.fold();
        let r = dash.request("r1").unwrap();
        assert_eq!(r.text.chars().count(), REPLY_CHARS_KEPT);
        assert!(r.text_truncated);
        assert!(r.text.starts_with("é€😀x"));

        // A rewind withdraws the text and with it the mark.
        let mut dash = dash;
        Script::default()
            .at(2, rewind("r1", "a", 0, "restart"))
            .at(3, delta("r1", "b", "fresh"))
            .apply_to(&mut dash);
        let r = dash.request("r1").unwrap();
        assert_eq!((r.text.as_str(), r.text_truncated), ("fresh", false));

        // ASCII exactly at the limit is not truncated.
        let mut s = Script::default();
        s.at(0, request("r2", &["a"]))
            .at(1, delta("r2", "a", &"x".repeat(REPLY_CHARS_KEPT - 1)))
            .at(2, delta("r2", "a", "y"))
            .at(3, delta("r2", "a", ""));
        let dash = s.fold();
        let r = dash.request("r2").unwrap();
        assert_eq!((r.text.len(), r.text_truncated), (REPLY_CHARS_KEPT, false));
    }

    /// A model without a price never reads $0: the request, its attempt, its provider and the
    /// totals say "unknown", and a total with priced usage too is a lower bound.
    #[test]
    fn unpriced_usage_is_unknown_never_zero() {
        let dollars = |usd: f64| format!("${usd:.4}");
        let dash = Script::default()
            .at(0, request("r1", &["a", "local"]))
            .at(1, attempt("r1", 1, "a"))
            .at(2, usage("r1", "a", 0.0012))
            .at(
                3,
                failed("r1", 1, "a", ErrorClass::StreamCut, Phase::MidStream),
            )
            .at(4, attempt("r1", 2, "local"))
            .at(5, unpriced(usage("r1", "local", 0.0)))
            .at(6, unpriced(ok("r1", "local", 0.0012, 0.0012, 0.0030)))
            // r2 fails at the unpriced provider after using tokens.
            .at(7, request("r2", &["local"]))
            .at(8, attempt("r2", 1, "local"))
            .at(9, unpriced(usage("r2", "local", 0.0)))
            .at(
                10,
                failed("r2", 1, "local", ErrorClass::StreamCut, Phase::MidStream),
            )
            .at(11, unpriced(error("r2", ErrorClass::StreamCut)))
            .fold();
        let r1 = dash.request("r1").unwrap();
        assert_eq!(r1.cost().describe(dollars), "≥ $0.0012 (+ unpriced)");
        assert!(!r1.attempts[0].detail.unpriced && r1.attempts[1].detail.unpriced);
        let r2 = dash.request("r2").unwrap();
        assert_eq!(r2.cost().describe(dollars), "cost unknown");
        assert_eq!(r2.cost().cell(dollars), "unknown");

        let local = dash.provider("local").unwrap();
        assert_eq!(local.cost().cell(dollars), "unknown");
        assert_eq!(local.failed_cost().describe(dollars), "cost unknown");
        let a = dash.provider("a").unwrap();
        assert_eq!(a.cost().describe(dollars), "$0.0012");

        let t = &dash.totals;
        assert_eq!(t.cost().describe(dollars), "≥ $0.0012 (+ unpriced)");
        assert_eq!(t.failed_cost().describe(dollars), "≥ $0.0012 (+ unpriced)");
        // r1's answer has no known cost: it is left out of the failover delta, and counted.
        assert_eq!((t.failover_delta_usd, t.delta_unknown), (0.0, 1));
    }
}
