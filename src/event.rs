//! The event vocabulary (DESIGN.md) and the bus that carries it.
//!
//! Everything the console shows, the recorder writes and the tests assert is a fold over one stream of
//! these events. Names and fields are a contract: add, never rename.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize, Serializer};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast;

use crate::provider::{ErrorClass, Phase};

/// One event as it travels on the bus and is written to a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339, millisecond precision.
    #[serde(serialize_with = "ts_millis")]
    pub ts: DateTime<Utc>,
    pub seq: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

fn ts_millis<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ts.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    SessionStarted {
        format_version: u32,
        mode: Mode,
        providers: Vec<ProviderInfo>,
        /// The breakers' consecutive-failure threshold, for showing failures against it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        breaker_threshold: Option<u32>,
    },
    RequestStarted {
        request_id: String,
        source: Source,
        chain: Vec<String>,
        /// The prompt text, when the request came from a prompt and content is not redacted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<String>,
    },
    AttemptStarted {
        request_id: String,
        attempt: u32,
        provider: String,
        model: String,
    },
    AttemptFailed {
        request_id: String,
        attempt: u32,
        provider: String,
        phase: Phase,
        class: ErrorClass,
        retryable: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
        message: String,
        elapsed_ms: u64,
    },
    AttemptSkipped {
        request_id: String,
        provider: String,
        reason: String,
    },
    FirstEvent {
        request_id: String,
        attempt: u32,
        provider: String,
        latency_ms: u64,
    },
    TextDelta {
        request_id: String,
        provider: String,
        text: String,
    },
    Rewind {
        request_id: String,
        provider: String,
        discarded_chars: u64,
        reason: String,
    },
    Usage {
        request_id: String,
        provider: String,
        model: String,
        input_tokens: u64,
        output_tokens: u64,
        cache_read_tokens: u64,
        cache_write_tokens: u64,
        cost_usd: f64,
        /// The provider reported no usage before the stream broke: the tokens are estimated.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        estimated: bool,
    },
    RequestFinished {
        request_id: String,
        outcome: Outcome,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop_reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<ErrorClass>,
        /// The error message, on error.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        total_ms: u64,
        /// Every attempt's cost, failed ones included.
        cost_usd: f64,
        #[serde(default)]
        attempts: u32,
        /// The part of `cost_usd` spent on attempts that failed or were cancelled.
        #[serde(default)]
        failed_cost_usd: f64,
        /// What the answer would have cost at the primary target's prices (the failover cost delta
        /// is `cost_usd - primary_cost_usd`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        primary_cost_usd: Option<f64>,
    },
    BreakerChanged {
        provider: String,
        from: String,
        to: String,
        reason: String,
        /// How long it stays open, when `to` is `open`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recovery_ms: Option<u64>,
    },
    /// The engine noticed something wrong with a provider's setup (a rejected key, no access).
    ProviderFlagged {
        provider: String,
        flag: String,
        reason: String,
    },
    OperatorAction {
        action: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
        #[serde(default)]
        detail: String,
    },
}

impl EventKind {
    /// The `type` name as it appears in JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::SessionStarted { .. } => "session_started",
            EventKind::RequestStarted { .. } => "request_started",
            EventKind::AttemptStarted { .. } => "attempt_started",
            EventKind::AttemptFailed { .. } => "attempt_failed",
            EventKind::AttemptSkipped { .. } => "attempt_skipped",
            EventKind::FirstEvent { .. } => "first_event",
            EventKind::TextDelta { .. } => "text_delta",
            EventKind::Rewind { .. } => "rewind",
            EventKind::Usage { .. } => "usage",
            EventKind::RequestFinished { .. } => "request_finished",
            EventKind::BreakerChanged { .. } => "breaker_changed",
            EventKind::ProviderFlagged { .. } => "provider_flagged",
            EventKind::OperatorAction { .. } => "operator_action",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Live,
    Demo,
    Serve,
    Replay,
}

impl Mode {
    /// The name used in events and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Demo => "demo",
            Mode::Serve => "serve",
            Mode::Replay => "replay",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Prompt,
    Load,
    Ask,
    Gateway,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    pub name: String,
    pub protocol: String,
    pub model: String,
}

/// The version of the event vocabulary written into `session_started` and recordings.
pub const FORMAT_VERSION: u32 = 1;

/// A broadcast bus of events. Publishing never waits for a consumer: one that falls behind by more
/// than the capacity is told it lagged (tokio's `RecvError::Lagged`) and skips ahead.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Event>>,
    /// The last sequence number given. Held while an event is stamped and sent, so every
    /// subscriber (the recorder, `/events`, the console) receives events in `seq` order, with
    /// timestamps that never go back, however many tasks publish at once.
    seq: Arc<Mutex<u64>>,
}

impl Bus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Bus {
            tx,
            seq: Arc::new(Mutex::new(0)),
        }
    }

    /// Stamp the event with the time and the next sequence number and publish it.
    pub fn publish(&self, kind: EventKind) -> Arc<Event> {
        // Nothing panics while it is held; were it poisoned, the count is still right.
        let mut seq = self.seq.lock().unwrap_or_else(PoisonError::into_inner);
        *seq += 1;
        let event = Arc::new(Event {
            // Milliseconds, as events are written: an event in memory equals its recorded form,
            // so a replay folds exactly what the live console folded.
            ts: Utc::now().trunc_subsecs(3),
            seq: *seq,
            kind,
        });
        // No receivers is fine: nobody is watching yet.
        let _ = self.tx.send(Arc::clone(&event));
        drop(seq);
        event
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new(4096)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_type_ts_and_seq() {
        let bus = Bus::new(8);
        let ev = bus.publish(EventKind::AttemptSkipped {
            request_id: "r1".into(),
            provider: "anthropic".into(),
            reason: "breaker_open".into(),
        });
        let json = serde_json::to_value(&*ev).expect("serializes");
        assert_eq!(json["type"], "attempt_skipped");
        assert_eq!(json["seq"], 1);
        let ts = json["ts"].as_str().expect("ts is a string");
        // Millisecond precision, UTC: 2026-01-01T00:00:00.000Z
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z'));
        let back: Event = serde_json::from_value(json).expect("round-trips");
        assert_eq!(back.kind, ev.kind);
    }

    #[test]
    fn mode_names_match_their_json() {
        for mode in [Mode::Live, Mode::Demo, Mode::Serve, Mode::Replay] {
            assert_eq!(
                serde_json::to_string(&mode).unwrap(),
                format!("\"{}\"", mode.as_str())
            );
        }
    }

    #[test]
    fn seq_increases_and_lagging_consumer_is_told() {
        let bus = Bus::new(2);
        let mut rx = bus.subscribe();
        for i in 0..5 {
            bus.publish(EventKind::OperatorAction {
                action: "test".into(),
                provider: None,
                detail: i.to_string(),
            });
        }
        match rx.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(n)) => assert_eq!(n, 3),
            other => panic!("expected lag, got {other:?}"),
        }
        let next = rx.try_recv().expect("an event after the lag");
        assert_eq!(next.seq, 4);
    }
}
