//! Bus events built in one line each, for the tests that feed a script of events to the console,
//! the metrics and the reports; and a timeline that stamps and numbers them.

use breakerbox::event::{Event, EventKind, FORMAT_VERSION, Mode, Outcome, ProviderInfo, Source};
use breakerbox::provider::ErrorClass;
use chrono::{DateTime, TimeDelta, Utc};

/// Events at millisecond offsets from a start, numbered in time order; events at the same
/// millisecond keep the order they were added in, as the engine publishes them.
pub struct Timeline {
    start: DateTime<Utc>,
    events: Vec<(i64, EventKind)>,
}

impl Timeline {
    pub fn new(start: DateTime<Utc>) -> Timeline {
        Timeline {
            start,
            events: Vec::new(),
        }
    }

    pub fn at(&mut self, ms: i64, kind: EventKind) {
        self.events.push((ms, kind));
    }

    pub fn events(mut self) -> Vec<Event> {
        self.events.sort_by_key(|(ms, _)| *ms);
        self.events
            .into_iter()
            .enumerate()
            .map(|(i, (ms, kind))| Event {
                ts: self.start + TimeDelta::milliseconds(ms),
                seq: i as u64 + 1,
                kind,
                gateway: None,
            })
            .collect()
    }
}

/// The model the hand-written scripts name for a demo provider (the defaults when they were
/// written; the recordings and snapshots built on them keep it).
pub fn demo_model(provider: &str) -> &'static str {
    if provider == "anthropic" {
        "claude-sonnet-4-5"
    } else {
        "gpt-5"
    }
}

/// The demo's two providers, `anthropic` and `openai`, as a session names them.
pub fn demo_providers() -> Vec<ProviderInfo> {
    ["anthropic", "openai"]
        .map(|name| ProviderInfo {
            name: name.into(),
            protocol: name.parse().expect("a protocol"),
            model: demo_model(name).into(),
            fault: None,
            base_url: None,
        })
        .into()
}

pub fn session_started(
    mode: Mode,
    providers: Vec<ProviderInfo>,
    breaker_threshold: Option<u32>,
) -> EventKind {
    EventKind::SessionStarted {
        format_version: FORMAT_VERSION,
        mode,
        providers,
        breaker_threshold,
        breaker_counts: None,
        settings: None,
        pools: Vec::new(),
    }
}

pub fn request_started(
    id: &str,
    source: Source,
    chain: &[&str],
    prompt: Option<&str>,
) -> EventKind {
    EventKind::RequestStarted {
        request_id: id.into(),
        source,
        chain: chain.iter().map(|s| s.to_string()).collect(),
        prompt: prompt.map(Into::into),
        prompt_chars: None,
        chain_name: None,
        failover: None,
        max_tokens: None,
        stream: None,
    }
}

pub fn attempt_started(id: &str, attempt: u32, provider: &str, model: &str) -> EventKind {
    EventKind::AttemptStarted {
        request_id: id.into(),
        attempt,
        provider: provider.into(),
        model: model.into(),
        pool: None,
    }
}

pub fn attempt_skipped(id: &str, provider: &str, reason: &str) -> EventKind {
    EventKind::AttemptSkipped {
        request_id: id.into(),
        provider: provider.into(),
        reason: reason.parse().expect("a skip reason"),
    }
}

pub fn first_event(id: &str, attempt: u32, provider: &str, latency_ms: u64) -> EventKind {
    EventKind::FirstEvent {
        request_id: id.into(),
        attempt,
        provider: provider.into(),
        latency_ms,
    }
}

pub fn text_delta(id: &str, provider: &str, text: &str) -> EventKind {
    EventKind::TextDelta {
        request_id: id.into(),
        provider: provider.into(),
        text: text.into(),
    }
}

/// `tokens`: input, output, cache read, cache write.
pub fn usage(id: &str, provider: &str, model: &str, tokens: [u64; 4], cost_usd: f64) -> EventKind {
    EventKind::Usage {
        request_id: id.into(),
        provider: provider.into(),
        model: model.into(),
        input_tokens: tokens[0],
        output_tokens: tokens[1],
        cache_read_tokens: tokens[2],
        cache_write_tokens: tokens[3],
        cost_usd,
        estimated: false,
        unpriced: false,
        response_id: None,
    }
}

/// A `usage` of a model without a price: no dollars, and the flag that says so.
pub fn unpriced_usage(id: &str, provider: &str, model: &str, tokens: [u64; 4]) -> EventKind {
    let mut kind = usage(id, provider, model, tokens, 0.0);
    if let EventKind::Usage { unpriced, .. } = &mut kind {
        *unpriced = true;
    }
    kind
}

pub fn rewind(id: &str, provider: &str, discarded_chars: u64, reason: &str) -> EventKind {
    EventKind::Rewind {
        request_id: id.into(),
        provider: provider.into(),
        discarded_chars,
        reason: reason.into(),
    }
}

pub fn breaker_changed(
    provider: &str,
    from: &str,
    to: &str,
    reason: &str,
    recovery_ms: Option<u64>,
) -> EventKind {
    EventKind::BreakerChanged {
        provider: provider.into(),
        model: None,
        from: from.parse().expect("a name in the vocabulary"),
        to: to.parse().expect("a name in the vocabulary"),
        reason: reason.into(),
        recovery_ms,
        instance: None,
    }
}

pub fn operator_action(action: &str, provider: Option<&str>, detail: &str) -> EventKind {
    EventKind::OperatorAction {
        action: action.parse().expect("a name in the vocabulary"),
        provider: provider.map(Into::into),
        detail: detail.into(),
        instance: None,
    }
}

/// How a request ended, for [`request_finished`]; the default is `ok` with nothing else known.
#[derive(Clone, Copy)]
pub struct Finished<'a> {
    pub outcome: Outcome,
    pub provider: Option<&'a str>,
    pub stop_reason: Option<&'a str>,
    pub class: Option<ErrorClass>,
    pub message: Option<&'a str>,
    pub total_ms: u64,
    pub cost_usd: f64,
    pub attempts: u32,
    pub failed_cost_usd: f64,
    pub primary_cost_usd: Option<f64>,
    pub unpriced: bool,
}

impl Default for Finished<'_> {
    fn default() -> Self {
        Finished {
            outcome: Outcome::Ok,
            provider: None,
            stop_reason: None,
            class: None,
            message: None,
            total_ms: 0,
            cost_usd: 0.0,
            attempts: 0,
            failed_cost_usd: 0.0,
            primary_cost_usd: None,
            unpriced: false,
        }
    }
}

pub fn request_finished(id: &str, end: Finished) -> EventKind {
    EventKind::RequestFinished {
        request_id: id.into(),
        outcome: end.outcome,
        provider: end.provider.map(Into::into),
        stop_reason: end.stop_reason.map(Into::into),
        class: end.class,
        message: end.message.map(Into::into),
        total_ms: end.total_ms,
        cost_usd: end.cost_usd,
        attempts: end.attempts,
        failed_cost_usd: end.failed_cost_usd,
        primary_cost_usd: end.primary_cost_usd,
        unpriced: end.unpriced,
    }
}
