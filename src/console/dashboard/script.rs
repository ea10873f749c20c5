//! Scripted events for the dashboard's unit tests: events at fixed times with increasing `seq`,
//! and a maker for each kind of event.

use chrono::{DateTime, TimeDelta, Utc};

use super::Dashboard;
use crate::event::{ErrorClass, Event, EventKind, Mode, Outcome, Phase, ProviderInfo, Source};

/// Events at fixed times with increasing `seq`.
#[derive(Default)]
pub(super) struct Script(pub Vec<Event>);

impl Script {
    pub(super) fn at(&mut self, ms: i64, kind: EventKind) -> &mut Self {
        self.at_time(at(ms), kind)
    }

    pub(super) fn at_time(&mut self, ts: DateTime<Utc>, kind: EventKind) -> &mut Self {
        let seq = self.0.len() as u64 + 1;
        self.0.push(Event::new(ts, seq, kind));
        self
    }

    pub(super) fn apply_to(&self, dash: &mut Dashboard) {
        for e in &self.0 {
            dash.apply(e);
        }
    }

    pub(super) fn fold(&self) -> Dashboard {
        let mut dash = Dashboard::new();
        self.apply_to(&mut dash);
        dash
    }
}

pub(super) fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// `ms` milliseconds after `t0`.
pub(super) fn at(ms: i64) -> DateTime<Utc> {
    t0() + TimeDelta::milliseconds(ms)
}

pub(super) fn session(names: &[&str], threshold: Option<u32>) -> EventKind {
    EventKind::SessionStarted {
        format_version: crate::event::FORMAT_VERSION,
        mode: Mode::Demo,
        providers: names
            .iter()
            .map(|n| ProviderInfo {
                name: n.to_string(),
                protocol: crate::event::Protocol::Anthropic,
                model: format!("{n}-model"),
                fault: None,
                base_url: None,
            })
            .collect(),
        breaker_threshold: threshold,
        breaker_counts: None,
        settings: None,
        pools: Vec::new(),
    }
}

pub(super) fn request(id: &str, chain: &[&str]) -> EventKind {
    EventKind::RequestStarted {
        request_id: id.into(),
        source: Source::Prompt,
        chain: chain.iter().map(|s| s.to_string()).collect(),
        prompt: Some("hello?".into()),
        prompt_chars: None,
        chain_name: None,
        failover: None,
        max_tokens: None,
        stream: None,
    }
}

pub(super) fn attempt(id: &str, n: u32, provider: &str) -> EventKind {
    EventKind::AttemptStarted {
        request_id: id.into(),
        attempt: n,
        provider: provider.into(),
        model: format!("{provider}-model"),
        pool: None,
    }
}

pub(super) fn failed(
    id: &str,
    n: u32,
    provider: &str,
    class: ErrorClass,
    phase: Phase,
) -> EventKind {
    EventKind::AttemptFailed {
        request_id: id.into(),
        attempt: n,
        provider: provider.into(),
        phase,
        class,
        retryable: crate::engine::classify::retryable(class),
        status: None,
        retry_after_ms: None,
        message: format!("{class} at {provider}"),
        elapsed_ms: 10,
    }
}

pub(super) fn skipped(id: &str, provider: &str, reason: &str) -> EventKind {
    EventKind::AttemptSkipped {
        request_id: id.into(),
        provider: provider.into(),
        reason: reason.parse().expect("a name in the vocabulary"),
    }
}

pub(super) fn first(id: &str, n: u32, provider: &str, latency_ms: u64) -> EventKind {
    EventKind::FirstEvent {
        request_id: id.into(),
        attempt: n,
        provider: provider.into(),
        latency_ms,
    }
}

pub(super) fn delta(id: &str, provider: &str, text: &str) -> EventKind {
    EventKind::TextDelta {
        request_id: id.into(),
        provider: provider.into(),
        text: text.into(),
    }
}

pub(super) fn rewind(id: &str, provider: &str, discarded_chars: u64, reason: &str) -> EventKind {
    EventKind::Rewind {
        request_id: id.into(),
        provider: provider.into(),
        discarded_chars,
        reason: reason.into(),
    }
}

pub(super) fn usage(id: &str, provider: &str, cost_usd: f64) -> EventKind {
    EventKind::Usage {
        request_id: id.into(),
        provider: provider.into(),
        model: format!("{provider}-model"),
        input_tokens: 10,
        output_tokens: 20,
        cache_read_tokens: 1,
        cache_write_tokens: 2,
        cost_usd,
        estimated: false,
        unpriced: false,
        response_id: None,
    }
}

/// `kind` (a `usage` or a `request_finished`) as the engine sends it for a model without a price.
pub(super) fn unpriced(mut kind: EventKind) -> EventKind {
    match &mut kind {
        EventKind::Usage {
            cost_usd, unpriced, ..
        } => {
            *cost_usd = 0.0;
            *unpriced = true;
        }
        EventKind::RequestFinished { unpriced, .. } => *unpriced = true,
        _ => {}
    }
    kind
}

pub(super) fn ok(id: &str, provider: &str, cost: f64, failed_cost: f64, primary: f64) -> EventKind {
    EventKind::RequestFinished {
        request_id: id.into(),
        outcome: Outcome::Ok,
        provider: Some(provider.into()),
        stop_reason: Some("end_turn".into()),
        class: None,
        message: None,
        total_ms: 1234,
        cost_usd: cost,
        attempts: 2,
        failed_cost_usd: failed_cost,
        primary_cost_usd: Some(primary),
        unpriced: false,
    }
}

pub(super) fn error(id: &str, class: ErrorClass) -> EventKind {
    EventKind::RequestFinished {
        request_id: id.into(),
        outcome: Outcome::Error,
        provider: None,
        stop_reason: None,
        class: Some(class),
        message: Some(format!("it was {class}")),
        total_ms: 500,
        cost_usd: 0.0,
        attempts: 1,
        failed_cost_usd: 0.0,
        primary_cost_usd: None,
        unpriced: false,
    }
}

pub(super) fn breaker(
    provider: &str,
    from: &str,
    to: &str,
    reason: &str,
    recovery: Option<u64>,
) -> EventKind {
    EventKind::BreakerChanged {
        provider: provider.into(),
        model: None,
        from: from.parse().expect("a name in the vocabulary"),
        to: to.parse().expect("a name in the vocabulary"),
        reason: reason.into(),
        recovery_ms: recovery,
        instance: None,
    }
}

/// A per-model breaker's change (`breaker = "model"`): `to` from `from`, as `breaker` says.
pub(super) fn model_breaker(
    provider: &str,
    model: &str,
    (from, to): (&str, &str),
    reason: &str,
    recovery: Option<u64>,
) -> EventKind {
    let mut kind = breaker(provider, from, to, reason, recovery);
    if let EventKind::BreakerChanged { model: m, .. } = &mut kind {
        *m = Some(model.to_string());
    }
    kind
}

/// An attempt on a given model of a provider.
pub(super) fn attempt_on(id: &str, n: u32, provider: &str, model: &str) -> EventKind {
    EventKind::AttemptStarted {
        request_id: id.into(),
        attempt: n,
        provider: provider.into(),
        model: model.into(),
        pool: None,
    }
}

pub(super) fn operator(action: &str, provider: Option<&str>, detail: &str) -> EventKind {
    EventKind::OperatorAction {
        action: action.parse().expect("a name in the vocabulary"),
        provider: provider.map(str::to_string),
        detail: detail.into(),
        instance: None,
    }
}

pub(super) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// anthropic streams "Hello", is cut mid-stream, the reply is withdrawn and openai answers.
pub(super) fn failover_script() -> Script {
    let mut s = Script::default();
    s.at(0, session(&["anthropic", "openai"], Some(5)))
        .at(10, request("r1", &["anthropic", "openai"]))
        .at(20, attempt("r1", 1, "anthropic"))
        .at(220, first("r1", 1, "anthropic", 200))
        .at(230, delta("r1", "anthropic", "Hel"))
        .at(240, delta("r1", "anthropic", "lo"))
        .at(250, usage("r1", "anthropic", 0.001))
        .at(
            260,
            failed(
                "r1",
                1,
                "anthropic",
                ErrorClass::StreamCut,
                Phase::MidStream,
            ),
        )
        .at(270, rewind("r1", "anthropic", 5, "stream_cut"))
        .at(280, attempt("r1", 2, "openai"))
        .at(580, first("r1", 2, "openai", 300))
        .at(590, delta("r1", "openai", "Hi"))
        .at(600, delta("r1", "openai", " there"))
        .at(610, usage("r1", "openai", 0.002))
        .at(620, ok("r1", "openai", 0.003, 0.001, 0.0025));
    s
}
