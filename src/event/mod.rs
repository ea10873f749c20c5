//! The event vocabulary (docs/events.md), the bus that carries it and the folds that read it.
//!
//! Everything the console shows, the recorder writes, the metrics count and the tests assert is a
//! fold over one stream of these events ([`Fold`], [`follow`]). Names and fields are a contract:
//! add, never rename. Every field with a closed set of values is typed ([`vocab`]); the JSON is the
//! same as when they were strings.
//!
//! - [`vocab`]: breaker states, skip reasons, operator actions (and the provider's error classes
//!   and phases, re-exported).
//! - [`bus`]: the broadcast bus.
//! - [`fold`]: one receive loop for every consumer.
//! - [`describe`]: one line for people about an event (the console's log, a headless gateway's
//!   stderr).

mod bus;
pub mod describe;
pub mod facts;
mod fold;
pub mod vocab;

pub use bus::Bus;
pub use fold::{Fold, Received, follow, next, try_next};
pub use vocab::{
    BreakerState, ErrorClass, LimitDimension, OperatorAction, Phase, PoolStrategy, Protocol,
    ProviderFlag, RejectReason, SkipReason,
};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;

use crate::text::floor_boundary;

/// One event as it travels on the bus and is written to a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339, millisecond precision.
    #[serde(serialize_with = "ts_millis")]
    pub ts: DateTime<Utc>,
    pub seq: u64,
    #[serde(flatten)]
    pub kind: EventKind,
    /// The gateway this event came from, in a console over several (`breakerbox attach URL URL
    /// …`), which stamps it on the events it merges, in memory. Never set on the bus, so never in
    /// a recording or on `/events`. (Not `instance`: some kinds name the cluster instance an
    /// action or a change came from.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

impl Event {
    /// An event of no particular gateway (`gateway` unset).
    pub fn new(ts: DateTime<Utc>, seq: u64, kind: EventKind) -> Self {
        Event {
            ts,
            seq,
            kind,
            gateway: None,
        }
    }
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
        /// The error classes whose failures the breakers count, when the config's `[policy.X]
        /// breaker` settings make them differ from the default ones (absent otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        breaker_counts: Option<Vec<ErrorClass>>,
        /// The settings that govern every provider (breaker, retry, timeouts), for people: each
        /// a dotted name as the config writes it (`breaker.recovery`) and its value (`30s`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        settings: Option<BTreeMap<String, String>>,
        /// The pools of equivalent providers (`[[pools]]`): each with its strategy and its
        /// members, in the order declared. Absent when there are none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pools: Vec<PoolInfo>,
    },
    RequestStarted {
        request_id: String,
        source: Source,
        chain: Vec<String>,
        /// The prompt text, when the request came from a prompt and content is not redacted: at
        /// most [`PROMPT_EXCERPT_BYTES`] of it (see [`prompt_excerpt`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<String>,
        /// The whole prompt's length in characters, when `prompt` is an excerpt of it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt_chars: Option<u64>,
        /// The chain the request asked for by name (the gateway's `x-breakerbox-chain` header),
        /// when it did; otherwise its route's (or the command's) chain was used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chain_name: Option<String>,
        /// `false` when the request turned failover off (`x-breakerbox-failover: off`): `chain` is
        /// then its first target alone. Absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failover: Option<bool>,
        /// The most tokens the reply may have, as the caller asked (absent in older recordings).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_tokens: Option<u32>,
        /// Whether the caller asked for a streamed reply (a gateway client's `stream`); absent
        /// where the caller is breakerbox itself (the console, `ask`), which always streams.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream: Option<bool>,
    },
    AttemptStarted {
        request_id: String,
        attempt: u32,
        provider: String,
        model: String,
        /// The pool the provider was chosen from, when the chain's target was a pool.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pool: Option<String>,
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
        reason: SkipReason,
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
        /// USD at the price table's prices; 0 when the model has none (then `unpriced`).
        cost_usd: f64,
        /// The provider reported no usage before the stream broke: the tokens are estimated.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        estimated: bool,
        /// The model has no price (not in `assets/pricing.toml` nor the config's `[pricing]`):
        /// `cost_usd` is 0 but the cost is unknown, not zero. Absent when priced.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unpriced: bool,
        /// The provider's id of the reply (`msg_…`, `chatcmpl-…`), when it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_id: Option<String>,
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
        /// is `cost_usd - primary_cost_usd`, unless `unpriced`); absent when the primary's
        /// model has no price.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        primary_cost_usd: Option<f64>,
        /// Some attempt used a model without a price: `cost_usd` (and `failed_cost_usd`) count
        /// only the priced ones, a lower bound. Absent when every attempt was priced.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unpriced: bool,
    },
    BreakerChanged {
        /// The provider the breaker guards (as attempts name it).
        provider: String,
        /// The model, for a per-model breaker (`breaker = "model"`); absent for a provider's one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        from: BreakerState,
        to: BreakerState,
        reason: String,
        /// How long it stays open, when `to` is `open`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recovery_ms: Option<u64>,
        /// The gateway of the fleet (`[cluster]`) whose breaker changed first, when it was another
        /// one: this instance followed it. Absent for a change of this instance's own.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance: Option<String>,
    },
    /// The engine noticed something wrong with a provider's setup (a rejected key, no access).
    ProviderFlagged {
        provider: String,
        flag: ProviderFlag,
        reason: String,
    },
    /// A background recovery probe went to a provider whose breaker is open: one output token on
    /// the target's model, never a user request.
    ProbeStarted {
        provider: String,
        /// The breaker's model, for a per-model breaker; absent for a provider's one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// The model the probe asks for.
        target_model: String,
        /// Its number in this outage (1 for the first since the breaker opened).
        probe: u32,
    },
    /// How a recovery probe ended. An answer turns the breaker half-open (a `breaker_changed`
    /// follows), where real traffic confirms it.
    ProbeFinished {
        provider: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        probe: u32,
        ok: bool,
        latency_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<ErrorClass>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default)]
        input_tokens: u64,
        #[serde(default)]
        output_tokens: u64,
        /// What the probe cost, like any attempt's; 0 when its model has no price (then `unpriced`).
        #[serde(default)]
        cost_usd: f64,
        /// The probe's model has no price: `cost_usd` is 0 but the cost unknown. Absent when priced.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unpriced: bool,
        /// After a failed probe: about how long until the next one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_probe_ms: Option<u64>,
    },
    /// A simulated provider's fault changed other than by an operator (who is an
    /// `operator_action`): a scenario's step.
    FaultChanged {
        provider: String,
        /// The fault now in force, in `KIND[:PARAMS]` form; `none` when healthy.
        fault: String,
        /// What changed it, e.g. `scenario "incident" at 0:30`.
        reason: String,
    },
    OperatorAction {
        action: OperatorAction,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider: Option<String>,
        #[serde(default)]
        detail: String,
        /// The gateway of the fleet the operator acted on, when it was another one (the action
        /// applies fleet-wide). Absent for an action taken here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance: Option<String>,
    },
    /// This gateway's link to its fleet (`[cluster] redis`) changed: connected (breakers shared),
    /// or lost (each instance carries on with its own breakers until it is back).
    ClusterChanged {
        /// This instance's name in the fleet.
        instance: String,
        connected: bool,
        /// The Redis server, as `host:port` (never its password).
        redis: String,
        /// For people: `connected; 3 breakers synchronized`, `lost: connection refused`.
        reason: String,
    },
    /// The gateway refused a request itself, before the engine saw it (no `request_started`
    /// precedes it): an unknown model, a missing token, a body it cannot read or take.
    RequestRejected {
        reason: RejectReason,
        /// The HTTP status the client got.
        status: u16,
        /// The protocol the client spoke.
        protocol: Protocol,
        /// What the client was told (the gateway's own words: never a key or the token).
        message: String,
    },
    /// What a provider's response headers say is left of its rate limits: published when a
    /// response states other values than the last one did (not for every response).
    RateLimits {
        provider: String,
        /// The model, for a per-model breaker (`breaker = "model"`): limits are tracked per breaker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// One per dimension the response stated.
        limits: Vec<RateLimit>,
    },
    /// A provider became throttled (what is left of a rate limit fell to the `[rate_limits]`
    /// threshold: new requests go to the next target first) or stopped being (its limit reset, or
    /// a fresher response says otherwise). Not a breaker state: breakers never count it.
    ThrottleChanged {
        provider: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        throttled: bool,
        /// The dimension that throttles (or did).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dimension: Option<LimitDimension>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remaining: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
        /// While throttled: how long until the dimension resets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reset_ms: Option<u64>,
        /// For people: `requests 2/50 left, resets in 12s`, `requests reset`.
        reason: String,
    },
}

/// One dimension of a provider's rate limit in `rate_limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub dimension: LimitDimension,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// How long from the event until it is back to its limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_ms: Option<u64>,
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
            EventKind::FaultChanged { .. } => "fault_changed",
            EventKind::ProbeStarted { .. } => "probe_started",
            EventKind::ProbeFinished { .. } => "probe_finished",
            EventKind::OperatorAction { .. } => "operator_action",
            EventKind::RateLimits { .. } => "rate_limits",
            EventKind::ThrottleChanged { .. } => "throttle_changed",
            EventKind::ClusterChanged { .. } => "cluster_changed",
            EventKind::RequestRejected { .. } => "request_rejected",
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
    pub protocol: Protocol,
    pub model: String,
    /// The fault a simulated provider starts with (`--fault`, the config), in `KIND[:PARAMS]`
    /// form; absent when it starts healthy and for real providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Where the provider is reached (`https://api.anthropic.com`), without user info, query or
    /// fragment (where credentials hide); absent in older recordings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// A pool of equivalent providers as `session_started` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolInfo {
    pub name: String,
    pub strategy: PoolStrategy,
    pub members: Vec<PoolMemberInfo>,
}

/// One member of a pool: a provider and its weight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolMemberInfo {
    pub provider: String,
    pub weight: u32,
}

/// The most of a prompt an event carries. Events are held in memory (the bus's ring, the gateway's
/// `/events` history) and written to recordings one per line: a 30 MB prompt must not be held
/// 75,000 times or make a line no reader takes. A prompt typed in the console is far shorter.
pub const PROMPT_EXCERPT_BYTES: usize = 4096;

/// The most text one `text_delta` carries; a longer piece of reply is published as several.
pub const MAX_DELTA_BYTES: usize = 64 * 1024;

/// A prompt as `request_started` carries it: the text, cut to at most [`PROMPT_EXCERPT_BYTES`] on
/// a character boundary, and the whole length in characters when it was cut.
pub fn prompt_excerpt(prompt: Option<String>) -> (Option<String>, Option<u64>) {
    match prompt {
        Some(mut text) if text.len() > PROMPT_EXCERPT_BYTES => {
            let chars = text.chars().count() as u64;
            text.truncate(floor_boundary(&text, PROMPT_EXCERPT_BYTES));
            text.shrink_to_fit();
            (Some(text), Some(chars))
        }
        other => (other, None),
    }
}

/// `text` in pieces of at most `max` bytes, cut on character boundaries (one piece if it fits).
pub fn pieces(text: &str, max: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        // A character is at most 4 bytes: the cut always moves forward.
        let cut = floor_boundary(rest, max.max(4));
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

/// The version of the event vocabulary written into `session_started` and recordings.
pub const FORMAT_VERSION: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::broadcast;

    #[test]
    fn events_serialize_with_type_ts_and_seq() {
        let bus = Bus::new(8);
        let ev = bus.publish(EventKind::AttemptSkipped {
            request_id: "r1".into(),
            provider: "anthropic".into(),
            reason: SkipReason::BreakerOpen,
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
    fn a_long_prompt_is_an_excerpt_with_its_length() {
        let short = Some("héllo".to_string());
        assert_eq!(prompt_excerpt(short.clone()), (short, None));
        let long = "é".repeat(PROMPT_EXCERPT_BYTES);
        let (text, chars) = prompt_excerpt(Some(long));
        let text = text.unwrap_or_default();
        assert!(text.len() <= PROMPT_EXCERPT_BYTES && !text.is_empty());
        assert!(
            text.chars().all(|c| c == 'é'),
            "cut on a character boundary"
        );
        assert_eq!(chars, Some(PROMPT_EXCERPT_BYTES as u64));
        assert_eq!(prompt_excerpt(None), (None, None));
    }

    #[test]
    fn long_text_is_published_in_pieces_that_join_to_it() {
        let bus = Bus::new(64);
        let mut rx = bus.subscribe();
        let text = format!(
            "{}€{}",
            "a".repeat(MAX_DELTA_BYTES - 1),
            "b".repeat(MAX_DELTA_BYTES)
        );
        bus.publish_text("r1", "p", &text);
        bus.publish_text("r1", "p", "");
        let mut joined = String::new();
        let mut n = 0;
        while let Ok(event) = rx.try_recv() {
            let EventKind::TextDelta { text, .. } = &event.kind else {
                panic!("{event:?}")
            };
            assert!(text.len() <= MAX_DELTA_BYTES && !text.is_empty());
            joined.push_str(text);
            n += 1;
        }
        assert_eq!(joined, text);
        assert_eq!(n, 3);
        assert_eq!(
            pieces("abc", 1).collect::<Vec<_>>(),
            ["abc"],
            "at least a character"
        );
    }

    #[test]
    fn seq_increases_and_lagging_consumer_is_told() {
        let bus = Bus::new(2);
        let mut rx = bus.subscribe();
        for i in 0..5 {
            bus.publish(EventKind::OperatorAction {
                action: OperatorAction::Load,
                provider: None,
                detail: i.to_string(),
                instance: None,
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
