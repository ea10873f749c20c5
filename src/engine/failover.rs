//! The failover engine: a request goes down an ordered chain of targets and comes back complete from
//! whichever could answer.
//!
//! ```text
//!  request ─► target 1 ─ breaker admits? ─► attempt ─► first healthy event? ─► commit, stream ─► done
//!               │            │ no: skip                  │ no: classify                 │ mid-stream failure:
//!               │            ▼                           ▼                              ▼ restart / continue / fail
//!               └──────► target 2 … ◄── retry here (backoff, retry-after, budgets) or fail over
//! ```
//!
//! Every step is an event on the bus. The engine is itself a [`Provider`], so engines compose.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::engine::attempt::{self, AttemptContext, AttemptReport};
use crate::engine::breaker::{BreakerKey, Breakers, CallOutcome, Permit, Rejection};
use crate::engine::classify::{Failover, Policy};
use crate::engine::cost::Pricing;
use crate::engine::retry::{self, Backoff, RetryBudget, RetryConfig, RetryDecision};
use crate::event::{Bus, EventKind, Outcome, SkipReason, Source};
use crate::provider::{
    ErrorClass, Message, Phase, Provider, ProviderError, ProviderStream, Request, StopReason,
    StreamEvent,
};

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
        }
    }

    fn name(&self) -> &str {
        self.provider.name()
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

/// What all engines of one process share: the bus, the breakers, the retry budget, prices, recent
/// first-event latencies and the running totals per provider.
#[derive(Clone)]
pub struct Shared {
    pub bus: Bus,
    pub breakers: Breakers,
    pub budget: RetryBudget,
    pub pricing: Pricing,
    latencies: Arc<Mutex<HashMap<String, VecDeque<u64>>>>,
    totals: Arc<Mutex<BTreeMap<String, ProviderTotals>>>,
    next_request: Arc<AtomicU64>,
}

/// Everything spent at one provider so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProviderTotals {
    pub attempts: u64,
    pub failures: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub cost_usd: f64,
    /// The part of `cost_usd` spent on attempts that failed or were cancelled.
    pub failed_cost_usd: f64,
}

/// Recent first-event latencies kept per provider, for percentile hedging.
const LATENCY_SAMPLES: usize = 200;
/// Samples needed before a percentile is trusted.
const MIN_LATENCY_SAMPLES: usize = 20;

impl Shared {
    pub fn new(bus: Bus, breakers: Breakers, budget: RetryBudget, pricing: Pricing) -> Self {
        Shared {
            bus,
            breakers,
            budget,
            pricing,
            latencies: Arc::default(),
            totals: Arc::default(),
            next_request: Arc::new(AtomicU64::new(0)),
        }
    }

    fn next_request_id(&self) -> String {
        format!("r{}", self.next_request.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Running totals per provider, attempts of every engine of this process included.
    pub fn totals(&self) -> BTreeMap<String, ProviderTotals> {
        self.totals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn note_attempt(&self, report: &AttemptReport) {
        let mut map = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        let t = map.entry(report.provider.clone()).or_default();
        t.attempts += 1;
        t.input_tokens += report.usage.input_tokens;
        t.output_tokens += report.usage.output_tokens;
        t.cache_read_tokens += report.usage.cache_read_tokens;
        t.cache_write_tokens += report.usage.cache_write_tokens;
        t.cost_usd += report.cost_usd;
        if report.result.is_err() {
            t.failures += 1;
            t.failed_cost_usd += report.cost_usd;
        }
    }

    fn note_latency(&self, provider: &str, ms: u64) {
        let mut map = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
        let ring = map.entry(provider.to_string()).or_default();
        if ring.len() == LATENCY_SAMPLES {
            ring.pop_front();
        }
        ring.push_back(ms);
    }

    fn latency_percentile(&self, provider: &str, percentile: f64) -> Option<Duration> {
        let map = self.latencies.lock().unwrap_or_else(|e| e.into_inner());
        let ring = map.get(provider)?;
        if ring.len() < MIN_LATENCY_SAMPLES {
            return None;
        }
        let mut sorted: Vec<u64> = ring.iter().copied().collect();
        sorted.sort_unstable();
        let rank = ((percentile / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted
            .get(rank.min(sorted.len() - 1))
            .map(|&ms| Duration::from_millis(ms))
    }
}

/// How a request entered the engine.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub source: Source,
    /// A request id to use; the engine numbers requests itself when `None`.
    pub request_id: Option<String>,
    /// The prompt text for `request_started`, when content may be recorded.
    pub prompt: Option<String>,
}

impl RequestMeta {
    pub fn new(source: Source) -> Self {
        RequestMeta {
            source,
            request_id: None,
            prompt: None,
        }
    }
}

/// An ordered chain of targets with its settings. Cheap to clone.
#[derive(Clone)]
pub struct FailoverEngine {
    name: String,
    targets: Arc<Vec<Target>>,
    settings: Arc<EngineSettings>,
    shared: Shared,
    /// The source reported for requests that come through the `Provider` interface.
    source: Source,
}

/// The `attempt_skipped` reason for a target that cannot continue a reply under `continue_or_fail`.
const CANNOT_CONTINUE: SkipReason = SkipReason::CannotContinue;

/// Items the engine sends its caller; capacity bounds how far the engine runs ahead of a slow one.
const OUT_CAPACITY: usize = 64;

impl FailoverEngine {
    pub fn new(
        name: impl Into<String>,
        targets: Vec<Target>,
        settings: EngineSettings,
        shared: Shared,
    ) -> Self {
        for target in &targets {
            shared.breakers.register(&target.breaker_key);
        }
        FailoverEngine {
            name: name.into(),
            targets: Arc::new(targets),
            settings: Arc::new(settings),
            shared,
            source: Source::Ask,
        }
    }

    /// The source `request_started` names for requests sent through [`Provider::stream`].
    pub fn with_source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The same engine (settings, breakers, bus) over other targets.
    pub fn with_targets(&self, targets: Vec<Target>) -> Self {
        FailoverEngine {
            targets: Arc::new(targets),
            ..self.clone()
        }
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Send a request down the chain. Returns its id and the stream of the answer: events of the
    /// committed target, `StreamEvent::Rewind` when a partial reply is withdrawn, and a final `Done`
    /// or `Err`. Dropping the stream cancels the request.
    pub fn send(&self, request: Request, meta: RequestMeta) -> (String, ProviderStream) {
        let request_id = meta
            .request_id
            .clone()
            .unwrap_or_else(|| self.shared.next_request_id());
        let (tx, rx) = mpsc::channel(OUT_CAPACITY);
        let run = Run {
            engine: self.clone(),
            request_id: request_id.clone(),
            out: tx,
        };
        tokio::spawn(run.drive(request, meta));
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (request_id, Box::pin(stream))
    }
}

impl Provider for FailoverEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn default_model(&self) -> &str {
        self.targets.first().map_or("", |t| {
            t.model.as_deref().unwrap_or(t.provider.default_model())
        })
    }

    fn stream(&self, request: Request) -> ProviderStream {
        self.send(request, RequestMeta::new(self.source)).1
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Try the same target again after this delay.
    Retry(Duration),
    /// Move on to the next target.
    NextTarget,
    /// End the request with this error.
    Fail,
}

/// The failover decision for one failed attempt, as a pure function of the facts.
pub struct Facts<'a> {
    pub error: &'a ProviderError,
    /// The attempt had committed (its first event was healthy) before it failed.
    pub committed: bool,
    pub has_next_target: bool,
    /// Retries already made on this target.
    pub retries: u32,
}

pub fn next_step(
    settings: &EngineSettings,
    facts: &Facts<'_>,
    backoff: &mut Backoff,
    budget: &RetryBudget,
) -> (Step, &'static str) {
    let class = facts.error.class;
    let policy = settings.policy.get(class);
    let may_fail_over = policy.failover != Failover::No && facts.has_next_target;
    // A target that said nothing at all is not worth another wait on the same route.
    let silent = matches!(class, ErrorClass::Timeout | ErrorClass::Stalled)
        && matches!(facts.error.phase, Phase::Headers | Phase::FirstEvent);
    if silent && !settings.retry_silent_timeouts {
        return if may_fail_over {
            (Step::NextTarget, "timed out in silence")
        } else {
            (Step::Fail, "timed out in silence and no target is left")
        };
    }
    // A mid-stream failure restarts on the next target when there is one.
    if facts.committed && may_fail_over {
        return (Step::NextTarget, "failed mid-stream");
    }
    if policy.retry {
        match retry::decide(
            &settings.retry,
            backoff,
            facts.error.retry_after,
            facts.retries,
            budget,
        ) {
            RetryDecision::RetryAfter(delay) => return (Step::Retry(delay), "retryable"),
            RetryDecision::GiveUp(why) if may_fail_over => return (Step::NextTarget, why),
            RetryDecision::GiveUp(why) => return (Step::Fail, why),
        }
    }
    if may_fail_over {
        (Step::NextTarget, "not retryable on this target")
    } else if policy.failover == Failover::No {
        (Step::Fail, "the next provider would fail the same way")
    } else {
        (Step::Fail, "no target is left")
    }
}

/// One request's journey down the chain.
struct Run {
    engine: FailoverEngine,
    request_id: String,
    out: mpsc::Sender<Result<StreamEvent, ProviderError>>,
}

/// Running totals of one request.
#[derive(Default)]
struct Tally {
    attempts: u32,
    cost: f64,
    failed_cost: f64,
    /// The error the caller will get if nothing answers: the most informative one seen (see
    /// [`Tally::keep`]), not merely the last.
    error: Option<ProviderError>,
    /// Reply text the caller has received and that has not been withdrawn.
    delivered: String,
    /// The output tokens that text cost (see [`output_tokens`]): what a continuation may no longer
    /// ask for.
    delivered_tokens: u64,
    /// What the attempts whose text the caller kept were billed (a spliced reply's usage is
    /// theirs and the last attempt's together).
    delivered_usage: crate::provider::Usage,
    /// The caller has received a `MessageStart`.
    started: bool,
    /// The caller has part of a tool call.
    tool_call: bool,
    /// Who failed after the caller got part of a reply, and why: the reason of the next rewind.
    interrupted: Option<(String, String)>,
}

impl Tally {
    /// Offer a failure as the request's error: it replaces the one held only if it tells the
    /// caller more ([`informativeness`]); on a tie the one held — the earliest — stays. The request
    /// ends with the kept error whenever it runs out of targets, retries or attempts; only a
    /// cancellation and the `fail` mid-stream policy end it with the failure at hand.
    ///
    /// Every real failure of the request is offered, a mid-stream one included, and a failed
    /// continuation or restart competes with it by the same rule: a stream cut followed by a 503
    /// on the restart reports the 503 (the provider said something), a stream cut followed by a
    /// connect failure reports the cut (the earlier of two transport failures). What is never
    /// offered: a target's refusal of a prefill (the engine's own doing, not the caller's fault).
    fn keep(&mut self, err: ProviderError) {
        if self
            .error
            .as_ref()
            .is_none_or(|held| informativeness(&err) > informativeness(held))
        {
            self.error = Some(err);
        }
    }

    /// The error to end the request with when nothing is left to try: the one kept, else `err`.
    fn kept_or(&self, err: ProviderError) -> ProviderError {
        self.error.clone().unwrap_or(err)
    }

    /// Of the caller's `max_tokens`, what a continuation may still ask for.
    fn tokens_left(&self, request: &Request) -> u32 {
        let left = u64::from(request.max_tokens).saturating_sub(self.delivered_tokens);
        u32::try_from(left).unwrap_or(u32::MAX)
    }

    /// The caller has seen part of the reply it could not un-see: text, or part of a tool call.
    /// (A bare `MessageStart` or `Usage` is not content.)
    fn visible(&self) -> bool {
        !self.delivered.is_empty() || self.tool_call
    }
}

/// The output tokens an attempt spent of the caller's `max_tokens`. A cut stream reports too few
/// or none (Anthropic's `message_start` says 1; OpenAI reports usage last), so never fewer than
/// the pieces it streamed (each at least a token) nor than its text at about four characters a
/// token: a continuation must not be asked for more than is left.
fn output_tokens(report: &AttemptReport) -> u64 {
    let by_text = (report.text.chars().count() as u64).div_ceil(4);
    report
        .usage
        .output_tokens
        .max(report.output_pieces)
        .max(by_text)
}

/// How much an error tells the caller, for [`Tally::keep`]: higher is more. The rank, then a
/// `retry-after` as a tie-break within rank 2.
///
/// - 3: the request itself is at fault and the caller can fix it (`bad_request`, `context_length`,
///   `content_filter`, `too_large`, `not_found`);
/// - 2: a provider answered: an HTTP error status, or an error it named in the stream
///   (`rate_limited`, `overloaded`, `server_error`, `auth`, `quota`, …); one with a `retry-after`
///   (a 429 that says when) beats one without (a plain 500);
/// - 1: the transport failed without a word from the provider (`connect`, `timeout`, `stalled`,
///   `stream_cut`, `malformed`);
/// - 0: the engine's own verdicts (`unavailable`, `cancelled`).
fn informativeness(err: &ProviderError) -> (u8, bool) {
    use ErrorClass::*;
    match err.class {
        BadRequest | ContextLength | ContentFilter | TooLarge | NotFound => (3, false),
        Unavailable | Cancelled => (0, false),
        Connect | Timeout | Stalled | StreamCut | Malformed
            if err.status.is_none() && err.error_type.is_none() =>
        {
            (1, false)
        }
        _ => (2, err.retry_after.is_some()),
    }
}

impl Run {
    async fn drive(self, request: Request, meta: RequestMeta) {
        let started = Instant::now();
        let engine = &self.engine;
        let bus = &engine.shared.bus;
        let (prompt, prompt_chars) = crate::event::prompt_excerpt(meta.prompt);
        bus.publish(EventKind::RequestStarted {
            request_id: self.request_id.clone(),
            source: meta.source,
            chain: engine
                .targets
                .iter()
                .map(|t| t.name().to_string())
                .collect(),
            prompt,
            prompt_chars,
        });
        let mut tally = Tally::default();
        let result = self.walk(&request, &mut tally).await;
        self.finish(result, tally, started).await;
    }

    /// Walk the chain; `Ok` carries the answering attempt.
    async fn walk(
        &self,
        request: &Request,
        tally: &mut Tally,
    ) -> Result<AttemptReport, ProviderError> {
        let engine = &self.engine;
        let settings = &*engine.settings;
        let targets = &*engine.targets;
        let mut skipped: Vec<(usize, Rejection)> = Vec::new();
        let mut min_context: Option<u64> = None;
        let mut index = 0;
        while index < targets.len() {
            let target = &targets[index];
            if let Some(min) = min_context
                && target.context_window.is_none_or(|c| c <= min)
            {
                self.skip(target, SkipReason::ContextTooSmall);
                index += 1;
                continue;
            }
            if let Some(original) = request.original.as_deref()
                && original.bound
                && target.provider.protocol() != Some(original.protocol)
            {
                self.skip(target, SkipReason::OtherProtocol);
                index += 1;
                continue;
            }
            match self
                .on_target(target, request, tally, &targets[index + 1..], None)
                .await
            {
                TargetEnd::Answered(report) => return Ok(*report),
                TargetEnd::Rejected(rejection) => {
                    skipped.push((index, rejection));
                    index += 1;
                }
                TargetEnd::NextTarget(class) => {
                    if settings.policy.get(class).failover == Failover::LargerContext {
                        min_context = Some(target.context_window.unwrap_or(0));
                    }
                    index += 1;
                }
                TargetEnd::Stop(err) => return Err(err),
            }
        }
        // Nothing answered. If every target refused at its breaker, the operator may prefer one try
        // at the provider that has been down longest over no answer at all.
        if tally.attempts == 0 && !skipped.is_empty() {
            if settings.when_all_open == WhenAllOpen::TryEarliest
                && let Some(&(i, _)) = skipped
                    .iter()
                    .filter(|(_, r)| r.reason != SkipReason::ForcedOpen)
                    .min_by_key(|(i, _)| engine.shared.breakers.opened_at(&targets[*i].breaker_key))
            {
                let bypass = Some(i);
                if let TargetEnd::Answered(report) = self
                    .on_target(&targets[i], request, tally, &[], bypass)
                    .await
                {
                    return Ok(*report);
                }
            }
            if tally.attempts == 0 {
                return Err(self.all_unavailable(&skipped));
            }
        }
        Err(tally.error.clone().unwrap_or_else(|| {
            ProviderError::new(
                &engine.name,
                ErrorClass::Unavailable,
                Phase::Connect,
                "no target could be tried",
            )
        }))
    }

    /// Attempts on one target until it answers, gives way to the next, or ends the request.
    /// `later`: the targets after this one. `bypass` skips the breaker (the all-open fallback).
    async fn on_target(
        &self,
        target: &Target,
        request: &Request,
        tally: &mut Tally,
        later: &[Target],
        bypass: Option<usize>,
    ) -> TargetEnd {
        let engine = &self.engine;
        let settings = &*engine.settings;
        let next = later.first();
        let mut backoff = Backoff::new(&settings.retry);
        let mut retries = 0;
        let mut tries = 0;
        loop {
            if let Some(done) = self.out_of_tokens(request, tally) {
                return TargetEnd::Answered(Box::new(done));
            }
            if self.cannot_continue(target, tally) {
                return self.pass_over(target);
            }
            let permit = if bypass.is_some() {
                None
            } else {
                match engine.shared.breakers.admit(&target.breaker_key) {
                    Ok(permit) => Some(permit),
                    Err(rejection) => {
                        self.skip(target, rejection.reason);
                        return TargetEnd::Rejected(rejection);
                    }
                }
            };
            if tally.attempts >= settings.retry.max_attempts {
                return TargetEnd::Stop(tally.error.clone().unwrap_or_else(|| {
                    ProviderError::new(
                        target.name(),
                        ErrorClass::Unavailable,
                        Phase::Connect,
                        "the request's attempt budget is spent",
                    )
                }));
            }
            tally.attempts += 1;

            // Carry on from the text the caller already has, or withdraw it first.
            let prefill = self.prepare_prefill(target, tally).await;
            let mut attempt_request = request.clone();
            attempt_request.model = target.model_for(request);
            if let Some(text) = &prefill {
                // The one copy of the conversation (the other attempts share it).
                Arc::make_mut(&mut attempt_request.messages).push(Message::assistant(text.clone()));
                attempt_request.prefill = Some(text.clone());
                // The caller asked for `max_tokens` in all: the continuation gets what is left.
                attempt_request.max_tokens = tally.tokens_left(request);
                // The caller learns that what follows is spliced on (normalized events only).
                let _ = self.out.send(Ok(StreamEvent::Spliced)).await;
            }
            // Hedge only a fresh first try: a retry or a continuation has its reasons to wait.
            let hedge = match (settings.hedge, next) {
                (Some(trigger), Some(next))
                    if tries == 0 && prefill.is_none() && bypass.is_none() =>
                {
                    Some((trigger, next))
                }
                _ => None,
            };
            tries += 1;
            let report = match hedge {
                None => {
                    let mut ctx = AttemptContext::new(
                        &engine.shared.bus,
                        &engine.shared.pricing,
                        &self.request_id,
                        tally.attempts,
                    );
                    ctx.out = Some(&self.out);
                    ctx.continuing = prefill.is_some() && tally.started;
                    if prefill.is_some() {
                        ctx.usage_before = tally.delivered_usage;
                    }
                    ctx.policy = Some(&settings.policy);
                    attempt::run(target.provider.as_ref(), attempt_request, ctx).await
                }
                Some((trigger, next)) => {
                    match self
                        .race(target, next, trigger, attempt_request, request, tally)
                        .await
                    {
                        Race::Primary(report) => *report,
                        Race::Secondary {
                            report,
                            permit: next_permit,
                        } => {
                            // The primary only lost a race: that says nothing about its health.
                            record(permit, CallOutcome::Neutral);
                            return match self.account(next, next_permit, &report, tally, true) {
                                None => TargetEnd::Answered(report),
                                Some(err) => self.after_failure(next, &report, err, tally),
                            };
                        }
                    }
                }
            };
            let Some(err) = self.account(target, permit, &report, tally, true) else {
                return TargetEnd::Answered(Box::new(report));
            };
            if err.class == ErrorClass::Cancelled {
                return TargetEnd::Stop(err);
            }

            // A target that refuses the prefill gets the request again from the start; its
            // refusal must not hide the failure that made us continue.
            if prefill.is_some() && !report.committed() && err.class == ErrorClass::BadRequest {
                // The caller's text cannot be withdrawn: this target just cannot continue it, and
                // the request's error stays the one that interrupted the reply.
                if settings.mid_stream == MidStreamPolicy::ContinueOrFail {
                    return TargetEnd::Rejected(Rejection {
                        reason: CANNOT_CONTINUE,
                        retry_in: None,
                    });
                }
                tally.interrupted =
                    Some((target.name().to_string(), "prefill rejected".to_string()));
                self.rewind(tally).await;
                continue;
            }
            tally.keep(err.clone());
            if (report.committed() || prefill.is_some())
                && !self.note_interruption(target, &report, &err, tally)
            {
                return TargetEnd::Stop(err);
            }

            // Under `continue_or_fail` with content out, only a target that can carry it on counts
            // as a next one; when none can, this one (if it can) is retried with the prefill.
            let has_next_target = later.iter().any(|t| !self.cannot_continue(t, tally));
            let facts = Facts {
                error: &err,
                committed: report.committed(),
                has_next_target,
                retries,
            };
            let (step, _why) = next_step(settings, &facts, &mut backoff, &engine.shared.budget);
            match step {
                Step::Retry(delay) => {
                    // No point waiting for a target that could not take the reply on anyway:
                    // it was tried, not skipped; the later ones say for themselves why not.
                    if self.cannot_continue(target, tally) {
                        return TargetEnd::NextTarget(err.class);
                    }
                    retries += 1;
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.out.closed() => {
                            return TargetEnd::Stop(ProviderError::new(target.name(), ErrorClass::Cancelled, Phase::Connect, "the caller went away"));
                        }
                    }
                }
                Step::NextTarget => return TargetEnd::NextTarget(err.class),
                // Nothing left to try: the request ends with the most telling failure of all.
                Step::Fail => return TargetEnd::Stop(tally.kept_or(err)),
            }
        }
    }

    /// Book an attempt's cost, text and outcome (breaker, latency, flags). `None` if it answered.
    /// `delivered`: the attempt's events reached the caller (not a hedge that lost).
    fn account(
        &self,
        target: &Target,
        permit: Option<Permit>,
        report: &AttemptReport,
        tally: &mut Tally,
        delivered: bool,
    ) -> Option<ProviderError> {
        let shared = &self.engine.shared;
        shared.note_attempt(report);
        tally.cost += report.cost_usd;
        if delivered {
            tally.started |= report.committed();
            tally.delivered.push_str(&report.text);
            tally.delivered_tokens += output_tokens(report);
            if report.result.is_err() {
                tally.delivered_usage = tally.delivered_usage.plus(&report.usage);
            }
        }
        let err = match &report.result {
            Ok(_) => {
                record(permit, CallOutcome::Success);
                if let Some(ms) = report.first_event_ms {
                    shared.note_latency(target.name(), ms);
                }
                return None;
            }
            Err(err) => err.clone(),
        };
        tally.failed_cost += report.cost_usd;
        let counts = err.class != ErrorClass::Cancelled
            && self.engine.settings.policy.get(err.class).breaker;
        let outcome = if counts {
            CallOutcome::Failure {
                retry_after: err.retry_after,
            }
        } else {
            CallOutcome::Neutral
        };
        record(permit, outcome);
        if matches!(
            err.class,
            ErrorClass::Auth | ErrorClass::Permission | ErrorClass::Redirect
        ) {
            shared.bus.publish(EventKind::ProviderFlagged {
                provider: target.name().to_string(),
                flag: "misconfigured".to_string(),
                reason: format!("{}: {}", err.class, err.message),
            });
        }
        Some(err)
    }

    /// The caller holds part of a reply that just broke. False when the policy is to fail; otherwise
    /// the partial reply is withdrawn or continued at the next attempt, if one comes.
    fn note_interruption(
        &self,
        target: &Target,
        report: &AttemptReport,
        err: &ProviderError,
        tally: &mut Tally,
    ) -> bool {
        if self.engine.settings.mid_stream == MidStreamPolicy::Fail {
            return false;
        }
        tally.interrupted = Some((target.name().to_string(), err.class.as_str().to_string()));
        tally.tool_call |= report.tool_call;
        true
    }

    /// A reply that would be continued has used up the caller's `max_tokens`: it is complete as it
    /// stands, and ends with `max_tokens` as it would have had it not broken — no call is made.
    fn out_of_tokens(&self, request: &Request, tally: &Tally) -> Option<AttemptReport> {
        let continues = matches!(
            self.engine.settings.mid_stream,
            MidStreamPolicy::Continue | MidStreamPolicy::ContinueOrFail
        ) && !tally.delivered.is_empty()
            && !tally.tool_call;
        if !continues || tally.tokens_left(request) > 0 {
            return None;
        }
        let provider = tally
            .interrupted
            .as_ref()
            .map_or(self.engine.name.as_str(), |(provider, _)| provider.as_str());
        Some(AttemptReport::without_call(
            provider,
            attempt::Completion {
                stop_reason: StopReason::MaxTokens,
                raw_stop_reason: None,
            },
        ))
    }

    /// Under `continue_or_fail`, the caller has visible content and `target` cannot carry it on: it
    /// takes no prefill, or the content includes a tool call (which cannot be spliced).
    fn cannot_continue(&self, target: &Target, tally: &Tally) -> bool {
        self.engine.settings.mid_stream == MidStreamPolicy::ContinueOrFail
            && tally.visible()
            && (!target.accepts_prefill || tally.tool_call)
    }

    /// Skip a target that cannot continue the reply.
    fn pass_over(&self, target: &Target) -> TargetEnd {
        self.skip(target, CANNOT_CONTINUE);
        TargetEnd::Rejected(Rejection {
            reason: CANNOT_CONTINUE,
            retry_in: None,
        })
    }

    /// A hedge that won and then failed: settle it and move down the chain.
    fn after_failure(
        &self,
        target: &Target,
        report: &AttemptReport,
        err: ProviderError,
        tally: &mut Tally,
    ) -> TargetEnd {
        tally.keep(err.clone());
        if err.class == ErrorClass::Cancelled
            || (report.committed() && !self.note_interruption(target, report, &err, tally))
        {
            return TargetEnd::Stop(err);
        }
        if self.engine.settings.policy.get(err.class).failover == Failover::No {
            return TargetEnd::Stop(tally.kept_or(err));
        }
        TargetEnd::NextTarget(err.class)
    }

    /// Run `primary`; if it has no first event within the hedge delay, start `next` too. The first
    /// healthy first event wins and reaches the caller; the other attempt is cancelled and paid for.
    async fn race(
        &self,
        primary: &Target,
        next: &Target,
        trigger: HedgeTrigger,
        primary_request: Request,
        original: &Request,
        tally: &mut Tally,
    ) -> Race {
        let shared = &self.engine.shared;
        let delay = match trigger {
            HedgeTrigger::After(delay) => delay,
            HedgeTrigger::Percentile {
                percentile,
                fallback,
            } => shared
                .latency_percentile(primary.name(), percentile)
                .unwrap_or(fallback),
        };
        let mut a = self.spawn_attempt(primary, primary_request, tally.attempts);
        tokio::select! {
            first = a.rx.recv() => return Race::Primary(Box::new(self.pump(first, a).await)),
            () = tokio::time::sleep(delay) => {}
        }
        let next_permit = match shared.breakers.admit(&next.breaker_key) {
            Ok(permit) => permit,
            Err(rejection) => {
                self.skip(next, rejection.reason);
                let first = a.rx.recv().await;
                return Race::Primary(Box::new(self.pump(first, a).await));
            }
        };
        tally.attempts += 1;
        let mut next_request = original.clone();
        next_request.model = next.model_for(original);
        let mut b = self.spawn_attempt(next, next_request, tally.attempts);
        let (mut a_open, mut b_open) = (true, true);
        while a_open || b_open {
            tokio::select! {
                item = a.rx.recv(), if a_open => match item {
                    Some(first) => {
                        let lost = join(b.cancel(), next.name()).await;
                        self.account(next, Some(next_permit), &lost, tally, false);
                        return Race::Primary(Box::new(self.pump(Some(first), a).await));
                    }
                    None => a_open = false,
                },
                item = b.rx.recv(), if b_open => match item {
                    Some(first) => {
                        // The primary's permit is released by the caller; its cost is booked here.
                        let lost = join(a.cancel(), primary.name()).await;
                        self.account(primary, None, &lost, tally, false);
                        let report = self.pump(Some(first), b).await;
                        return Race::Secondary { report: Box::new(report), permit: Some(next_permit) };
                    }
                    None => b_open = false,
                },
            }
        }
        // Neither had a healthy first event: book the hedge's failure, hand back the primary's.
        let failed = join(b.task, next.name()).await;
        if let Some(err) = self.account(next, Some(next_permit), &failed, tally, false) {
            tally.keep(err);
        }
        Race::Primary(Box::new(join(a.task, primary.name()).await))
    }

    /// An attempt running on its own, its events held back in a channel until it wins.
    fn spawn_attempt(&self, target: &Target, request: Request, number: u32) -> Held {
        let (tx, rx) = mpsc::channel(OUT_CAPACITY);
        let engine = self.engine.clone();
        let request_id = self.request_id.clone();
        let provider = Arc::clone(&target.provider);
        let task = tokio::spawn(async move {
            let mut ctx = AttemptContext::new(
                &engine.shared.bus,
                &engine.shared.pricing,
                &request_id,
                number,
            );
            ctx.out = Some(&tx);
            ctx.policy = Some(&engine.settings.policy);
            ctx.held = true;
            attempt::run(provider.as_ref(), request, ctx).await
        });
        Held {
            rx,
            task,
            started: Instant::now(),
            provider: target.name().to_string(),
            number,
        }
    }

    /// Forward a held attempt's events to the caller — announcing its first event and its text,
    /// which it held back while it might lose — then wait for its report.
    async fn pump(
        &self,
        first: Option<Result<StreamEvent, ProviderError>>,
        held: Held,
    ) -> AttemptReport {
        let Held {
            mut rx,
            task,
            started,
            provider,
            number,
        } = held;
        let bus = &self.engine.shared.bus;
        let mut item = first;
        let mut announced = false;
        while let Some(event) = item {
            if !announced {
                announced = true;
                bus.publish(EventKind::FirstEvent {
                    request_id: self.request_id.clone(),
                    attempt: number,
                    provider: provider.clone(),
                    latency_ms: attempt::millis(started.elapsed()),
                });
            }
            if let Ok(StreamEvent::TextDelta { text }) = &event {
                bus.publish_text(&self.request_id, &provider, text);
            }
            if self.out.send(event).await.is_err() {
                break;
            }
            item = tokio::select! {
                next = rx.recv() => next,
                () = self.out.closed() => None,
            };
        }
        // Dropping the receiver cancels the attempt if the caller went away.
        drop(rx);
        join(task, &provider).await
    }

    /// Under `continue` (and `continue_or_fail`), the text to send as a prefill to this target;
    /// otherwise withdraw it. Under `continue_or_fail`, `on_target` has already passed over a
    /// target that cannot continue visible content, so what is withdrawn here is at most a bare
    /// `MessageStart`.
    async fn prepare_prefill(&self, target: &Target, tally: &mut Tally) -> Option<String> {
        if !tally.started && tally.delivered.is_empty() {
            return None;
        }
        // Tool calls cannot be spliced: their arguments would be two providers' halves.
        if matches!(
            self.engine.settings.mid_stream,
            MidStreamPolicy::Continue | MidStreamPolicy::ContinueOrFail
        ) && target.accepts_prefill
            && !tally.tool_call
            && !tally.delivered.is_empty()
        {
            return Some(tally.delivered.clone());
        }
        self.rewind(tally).await;
        None
    }

    /// Withdraw everything the caller has received for this request.
    async fn rewind(&self, tally: &mut Tally) {
        debug_assert!(
            !(self.engine.settings.mid_stream == MidStreamPolicy::ContinueOrFail
                && tally.visible()),
            "continue_or_fail never withdraws visible content"
        );
        let (provider, reason) = tally
            .interrupted
            .take()
            .unwrap_or_else(|| (self.engine.name.clone(), "restart".to_string()));
        let reason = if tally.tool_call {
            format!("{reason}; a tool call cannot be continued")
        } else {
            reason
        };
        let discarded_chars = tally.delivered.chars().count() as u64;
        self.engine.shared.bus.publish(EventKind::Rewind {
            request_id: self.request_id.clone(),
            provider,
            discarded_chars,
            reason,
        });
        let _ = self
            .out
            .send(Ok(StreamEvent::Rewind { discarded_chars }))
            .await;
        tally.delivered.clear();
        tally.delivered_tokens = 0;
        tally.delivered_usage = crate::provider::Usage::default();
        tally.started = false;
        tally.tool_call = false;
    }

    fn skip(&self, target: &Target, reason: SkipReason) {
        self.engine.shared.bus.publish(EventKind::AttemptSkipped {
            request_id: self.request_id.clone(),
            provider: target.name().to_string(),
            reason,
        });
    }

    fn all_unavailable(&self, skipped: &[(usize, Rejection)]) -> ProviderError {
        let parts: Vec<String> = skipped
            .iter()
            .map(|(i, r)| {
                let name = self.engine.targets[*i].name();
                match r.retry_in {
                    Some(d) => format!(
                        "{name} {} (retry in {:.0} s)",
                        r.reason,
                        d.as_secs_f64().ceil()
                    ),
                    None => format!("{name} {}", r.reason),
                }
            })
            .collect();
        let mut err = ProviderError::new(
            &self.engine.name,
            ErrorClass::Unavailable,
            Phase::Connect,
            format!("every provider is unavailable: {}", parts.join(", ")),
        );
        // When the first breaker lets a probe through: what a caller's retry should wait for.
        // A breaker forced open by the operator has no such time.
        err.retry_after = skipped.iter().filter_map(|(_, r)| r.retry_in).min();
        err
    }

    async fn finish(
        self,
        result: Result<AttemptReport, ProviderError>,
        tally: Tally,
        started: Instant,
    ) {
        let engine = &self.engine;
        let total_ms = attempt::millis(started.elapsed());
        let (event, last) = match result {
            Ok(report) => {
                let done = report.result.as_ref().ok().cloned();
                // What this answer would have cost at the primary's prices.
                let primary_cost_usd = engine.targets.first().and_then(|t| {
                    let model = t.model.as_deref().unwrap_or(t.provider.default_model());
                    engine.shared.pricing.cost(model, &report.usage)
                });
                let stop = done.as_ref().map(|d| d.stop_reason.as_str().to_string());
                (
                    EventKind::RequestFinished {
                        request_id: self.request_id.clone(),
                        outcome: Outcome::Ok,
                        provider: Some(report.provider.clone()),
                        stop_reason: stop,
                        class: None,
                        message: None,
                        total_ms,
                        cost_usd: tally.cost,
                        attempts: tally.attempts,
                        failed_cost_usd: tally.failed_cost,
                        primary_cost_usd,
                    },
                    done.map(|d| {
                        Ok(StreamEvent::Done {
                            stop_reason: d.stop_reason,
                            raw_stop_reason: d.raw_stop_reason,
                        })
                    }),
                )
            }
            Err(err) => (
                EventKind::RequestFinished {
                    request_id: self.request_id.clone(),
                    outcome: Outcome::Error,
                    provider: None,
                    stop_reason: None,
                    class: Some(err.class),
                    message: Some(err.message.clone()),
                    total_ms,
                    cost_usd: tally.cost,
                    attempts: tally.attempts,
                    failed_cost_usd: tally.failed_cost,
                    primary_cost_usd: None,
                },
                Some(Err(err)),
            ),
        };
        engine.shared.bus.publish(event);
        if let Some(item) = last {
            // The caller may be gone; the request is settled either way.
            let _ = self.out.send(item).await;
        }
    }
}

/// How a hedged attempt ended.
enum Race {
    /// The primary answered first (or alone); its permit is still the caller's.
    Primary(Box<AttemptReport>),
    /// The hedge won; the primary was cancelled.
    Secondary {
        report: Box<AttemptReport>,
        permit: Option<Permit>,
    },
}

/// A hedged attempt in flight: its held-back events and its task.
struct Held {
    rx: mpsc::Receiver<Result<StreamEvent, ProviderError>>,
    task: tokio::task::JoinHandle<AttemptReport>,
    started: Instant,
    provider: String,
    number: u32,
}

impl Held {
    /// It lost: dropping its receiver cancels it; its task is joined for its cost.
    fn cancel(self) -> tokio::task::JoinHandle<AttemptReport> {
        self.task
    }
}

async fn join(task: tokio::task::JoinHandle<AttemptReport>, provider: &str) -> AttemptReport {
    task.await.unwrap_or_else(|e| {
        AttemptReport::lost(provider, &format!("the attempt task ended abnormally: {e}"))
    })
}

enum TargetEnd {
    Answered(Box<AttemptReport>),
    Rejected(Rejection),
    NextTarget(ErrorClass),
    Stop(ProviderError),
}

fn record(permit: Option<Permit>, outcome: CallOutcome) {
    if let Some(permit) = permit {
        permit.record(outcome);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::engine::breaker::BreakerConfig;
    use crate::engine::retry::BudgetConfig;
    use crate::provider::{Role, StopReason, Usage};
    use futures::StreamExt;
    use std::sync::Mutex as StdMutex;

    /// One step of a scripted reply.
    #[derive(Clone)]
    enum Play {
        Emit(Result<StreamEvent, ProviderError>),
        Wait(Duration),
    }

    /// A provider that plays one script per call and remembers the requests it got.
    struct Scripted {
        name: String,
        scripts: StdMutex<VecDeque<Vec<Play>>>,
        seen: StdMutex<Vec<Request>>,
    }

    impl Scripted {
        fn new(name: &str, scripts: Vec<Vec<Play>>) -> Arc<Self> {
            Arc::new(Scripted {
                name: name.to_string(),
                scripts: StdMutex::new(scripts.into()),
                seen: StdMutex::default(),
            })
        }
        fn calls(&self) -> usize {
            self.seen.lock().unwrap().len()
        }
        fn last_request(&self) -> Request {
            self.seen.lock().unwrap().last().cloned().unwrap()
        }
    }

    impl Provider for Scripted {
        fn name(&self) -> &str {
            &self.name
        }
        fn default_model(&self) -> &str {
            "claude-sonnet-4-5"
        }
        fn stream(&self, request: Request) -> ProviderStream {
            self.seen.lock().unwrap().push(request);
            let script = self.scripts.lock().unwrap().pop_front().unwrap_or_default();
            Box::pin(futures::stream::unfold(
                script.into_iter(),
                |mut steps| async move {
                    loop {
                        match steps.next()? {
                            Play::Wait(d) => tokio::time::sleep(d).await,
                            Play::Emit(item) => return Some((item, steps)),
                        }
                    }
                },
            ))
        }
    }

    fn start() -> Play {
        Play::Emit(Ok(StreamEvent::MessageStart {
            id: "m".into(),
            model: "claude-sonnet-4-5".into(),
        }))
    }
    fn text(t: &str) -> Play {
        Play::Emit(Ok(StreamEvent::TextDelta { text: t.into() }))
    }
    fn done() -> Play {
        Play::Emit(Ok(StreamEvent::Done {
            stop_reason: StopReason::EndTurn,
            raw_stop_reason: Some("end_turn".into()),
        }))
    }
    fn usage(input: u64, output: u64) -> Play {
        Play::Emit(Ok(StreamEvent::Usage(Usage {
            input_tokens: input,
            output_tokens: output,
            ..Usage::default()
        })))
    }
    fn fail(provider: &str, class: ErrorClass, phase: Phase) -> Play {
        Play::Emit(Err(ProviderError::new(
            provider,
            class,
            phase,
            format!("{class} from {provider}"),
        )))
    }
    /// A provider's HTTP error answer.
    fn answer(provider: &str, class: ErrorClass, status: u16, retry_after: Option<u64>) -> Play {
        let mut err = ProviderError::new(
            provider,
            class,
            Phase::Headers,
            format!("HTTP {status} from {provider}"),
        );
        err.status = Some(status);
        err.retry_after = retry_after.map(Duration::from_secs);
        Play::Emit(Err(err))
    }
    fn tool_call() -> [Play; 2] {
        [
            Play::Emit(Ok(StreamEvent::ToolCallStart {
                index: 0,
                id: "t1".into(),
                name: "get_weather".into(),
            })),
            Play::Emit(Ok(StreamEvent::ToolCallDelta {
                index: 0,
                partial_json: "{\"loc".into(),
            })),
        ]
    }
    fn reply(words: &[&str]) -> Vec<Play> {
        let mut s = vec![start()];
        s.extend(words.iter().map(|w| text(w)));
        s.extend([usage(10, words.len() as u64), done()]);
        s
    }

    fn settings(mid_stream: MidStreamPolicy) -> EngineSettings {
        EngineSettings {
            mid_stream,
            retry: RetryConfig {
                max_retries: 1,
                min_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(40),
                jitter: false,
                ..RetryConfig::default()
            },
            ..EngineSettings::default()
        }
    }

    fn engine(targets: Vec<Target>, settings: EngineSettings) -> FailoverEngine {
        let bus = Bus::new(4096);
        let breakers = Breakers::new(BreakerConfig::default(), bus.clone());
        let budget = RetryBudget::new(&BudgetConfig {
            capacity: 100.0,
            refill_per_sec: 10.0,
        });
        FailoverEngine::new(
            "chain",
            targets,
            settings,
            Shared::new(bus, breakers, budget, Pricing::built_in()),
        )
    }

    fn target(p: &Arc<Scripted>, prefill: bool) -> Target {
        let provider: Arc<dyn Provider> = p.clone();
        Target {
            accepts_prefill: prefill,
            ..Target::new(provider)
        }
    }

    /// The caller's view (text with rewinds applied, the end) and the bus's event types.
    struct Seen {
        text: String,
        starts: usize,
        rewinds: Vec<u64>,
        end: Result<StopReason, ProviderError>,
        types: Vec<&'static str>,
        /// `attempt_skipped` events: (provider, reason).
        skips: Vec<(String, String)>,
        finished: EventKind,
    }

    async fn ask(engine: &FailoverEngine) -> Seen {
        ask_for(engine, Request::prompt("hi")).await
    }

    async fn ask_for(engine: &FailoverEngine, request: Request) -> Seen {
        let mut rx = engine.shared().bus.subscribe();
        let (_, mut stream) = engine.send(request, RequestMeta::new(Source::Ask));
        let mut seen = Seen {
            text: String::new(),
            starts: 0,
            rewinds: vec![],
            end: Err(ProviderError::new(
                "",
                ErrorClass::StreamCut,
                Phase::Connect,
                "no end",
            )),
            types: vec![],
            skips: vec![],
            finished: EventKind::OperatorAction {
                action: crate::event::OperatorAction::Load,
                provider: None,
                detail: String::new(),
            },
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(StreamEvent::MessageStart { .. }) => seen.starts += 1,
                Ok(StreamEvent::TextDelta { text }) => seen.text.push_str(&text),
                Ok(StreamEvent::Rewind { discarded_chars }) => {
                    seen.rewinds.push(discarded_chars);
                    seen.text.clear();
                }
                Ok(StreamEvent::Done { stop_reason, .. }) => seen.end = Ok(stop_reason),
                Ok(_) => {}
                Err(e) => seen.end = Err(e),
            }
        }
        let mut numbers = Vec::new();
        while let Ok(e) = rx.try_recv() {
            seen.types.push(e.kind.type_name());
            match &e.kind {
                EventKind::RequestFinished { .. } => seen.finished = e.kind.clone(),
                EventKind::AttemptStarted { attempt, .. } => numbers.push(*attempt),
                EventKind::AttemptSkipped {
                    provider, reason, ..
                } => seen.skips.push((provider.clone(), reason.to_string())),
                _ => {}
            }
        }
        // Every attempt has its own number, 1, 2, 3…: consumers fold by it.
        let mut sorted = numbers.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (1..=numbers.len() as u32).collect::<Vec<_>>(),
            "attempt numbers {numbers:?}"
        );
        seen
    }

    #[tokio::test(start_paused = true)]
    async fn restart_withdraws_the_partial_reply_and_answers_from_one_provider() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hello "),
                text("wor"),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["Complete ", "answer."])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        ))
        .await;
        assert_eq!(seen.text, "Complete answer.");
        assert_eq!(seen.rewinds, [9]);
        assert_eq!(seen.starts, 2);
        assert_eq!(seen.end.unwrap(), StopReason::EndTurn);
        assert_eq!(
            (a.calls(), b.calls()),
            (1, 1),
            "restart goes to the next target"
        );
        let pos = |t: &str| seen.types.iter().position(|x| *x == t).unwrap();
        assert!(pos("attempt_failed") < pos("rewind"));
        match seen.finished {
            EventKind::RequestFinished {
                outcome,
                provider,
                attempts,
                failed_cost_usd,
                cost_usd,
                ..
            } => {
                assert_eq!(outcome, Outcome::Ok);
                assert_eq!(provider.as_deref(), Some("b"));
                assert_eq!(attempts, 2);
                // The cut attempt consumed tokens (estimated) and is paid for.
                assert!(failed_cost_usd > 0.0 && cost_usd > failed_cost_usd);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn totals_per_provider_count_every_attempt() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                usage(100, 0),
                text("x"),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["one", "two"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        );
        ask(&e).await;
        let totals = e.shared().totals();
        let (ta, tb) = (&totals["a"], &totals["b"]);
        assert_eq!((ta.attempts, ta.failures, ta.input_tokens), (1, 1, 100));
        assert!(ta.cost_usd > 0.0 && ta.failed_cost_usd == ta.cost_usd);
        assert_eq!((tb.attempts, tb.failures, tb.output_tokens), (1, 0, 2));
        assert_eq!(tb.failed_cost_usd, 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn continue_sends_the_partial_reply_as_prefill_and_splices() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hello "),
                text("wor"),
                fail("a", ErrorClass::Stalled, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["ld", "!"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, true)],
            settings(MidStreamPolicy::Continue),
        ))
        .await;
        assert_eq!(seen.text, "Hello world!");
        assert!(seen.rewinds.is_empty());
        assert_eq!(
            seen.starts, 1,
            "the continuation does not start a second message"
        );
        let last = b.last_request().messages.last().cloned().unwrap();
        assert_eq!(last.role, Role::Assistant);
        assert_eq!(last, Message::assistant("Hello wor"));
    }

    /// A request for `max_tokens`.
    fn asking(max_tokens: u32) -> Request {
        Request {
            max_tokens,
            ..Request::prompt("hi")
        }
    }

    /// A stream cut after `pieces`, reporting usage as Anthropic's `message_start` does (1 token).
    fn cut_after(provider: &str, pieces: &[&str]) -> Vec<Play> {
        let mut s = vec![start(), usage(10, 1)];
        s.extend(pieces.iter().map(|p| text(p)));
        s.push(fail(provider, ErrorClass::StreamCut, Phase::MidStream));
        s
    }

    #[tokio::test(start_paused = true)]
    async fn a_continuation_asks_only_for_the_tokens_left() {
        // Four characters a piece: three tokens by either count, whatever usage said (1).
        let a = Scripted::new("a", vec![cut_after("a", &["One ", "two ", "six "])]);
        // Short pieces: each is still a token, though their text is only five characters.
        let b = Scripted::new("b", vec![cut_after("b", &["a", "b", "c", "d", "e"])]);
        let c = Scripted::new("c", vec![reply(&["end"])]);
        let seen = ask_for(
            &engine(
                vec![target(&a, true), target(&b, true), target(&c, true)],
                settings(MidStreamPolicy::Continue),
            ),
            asking(10),
        )
        .await;
        assert_eq!(seen.text, "One two six abcdeend");
        assert_eq!(seen.end.unwrap(), StopReason::EndTurn);
        assert_eq!(a.last_request().max_tokens, 10);
        assert_eq!(b.last_request().max_tokens, 10 - 3);
        assert_eq!(c.last_request().max_tokens, 10 - 3 - 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_continuation_with_no_tokens_left_ends_with_max_tokens_and_no_call() {
        for policy in [MidStreamPolicy::Continue, MidStreamPolicy::ContinueOrFail] {
            let a = Scripted::new("a", vec![cut_after("a", &["One ", "two ", "six "])]);
            let b = Scripted::new("b", vec![reply(&["more"])]);
            let seen = ask_for(
                &engine(vec![target(&a, true), target(&b, true)], settings(policy)),
                asking(3),
            )
            .await;
            assert_eq!(seen.text, "One two six ");
            assert_eq!(seen.end.unwrap(), StopReason::MaxTokens, "{policy:?}");
            assert_eq!(b.calls(), 0, "nothing left to ask for");
            match seen.finished {
                EventKind::RequestFinished {
                    outcome,
                    provider,
                    stop_reason,
                    attempts,
                    ..
                } => {
                    assert_eq!(outcome, Outcome::Ok);
                    assert_eq!(provider.as_deref(), Some("a"), "who wrote the reply");
                    assert_eq!(stop_reason.as_deref(), Some("max_tokens"));
                    assert_eq!(attempts, 1);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_asks_for_the_whole_max_tokens_again() {
        let a = Scripted::new("a", vec![cut_after("a", &["One ", "two ", "six "])]);
        let b = Scripted::new("b", vec![reply(&["Fresh."])]);
        let seen = ask_for(
            &engine(
                vec![target(&a, true), target(&b, true)],
                settings(MidStreamPolicy::Restart),
            ),
            asking(3),
        )
        .await;
        assert_eq!(seen.text, "Fresh.");
        assert_eq!(b.last_request().max_tokens, 3, "the text was withdrawn");
    }

    #[tokio::test(start_paused = true)]
    async fn continue_restarts_where_the_target_cannot_take_a_prefill() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hello "),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["Fresh."])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Continue),
        ))
        .await;
        assert_eq!(seen.text, "Fresh.");
        assert_eq!(seen.rewinds, [6]);
        assert_eq!(b.last_request().messages.len(), 1, "no prefill sent");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_prefill_restarts_and_never_masks_the_original_error() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hello "),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        // b refuses the prefill, then is down for the plain request too.
        let b = Scripted::new(
            "b",
            vec![
                vec![fail("b", ErrorClass::BadRequest, Phase::Headers)],
                vec![fail("b", ErrorClass::Overloaded, Phase::Headers)],
                vec![fail("b", ErrorClass::Overloaded, Phase::Headers)],
            ],
        );
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, true)],
            settings(MidStreamPolicy::Continue),
        ))
        .await;
        let err = seen.end.unwrap_err();
        assert_ne!(
            err.class,
            ErrorClass::BadRequest,
            "the prefill refusal must not be what the caller sees"
        );
        assert_eq!(err.class, ErrorClass::Overloaded);
        assert_eq!(
            seen.rewinds,
            [6],
            "the partial reply is withdrawn before restarting"
        );
        assert_eq!(
            b.calls(),
            3,
            "prefill, then the plain request and its retry"
        );
        assert_eq!(b.last_request().messages.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn tool_call_streams_restart_even_under_continue() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                Play::Emit(Ok(StreamEvent::ToolCallStart {
                    index: 0,
                    id: "t1".into(),
                    name: "get_weather".into(),
                })),
                Play::Emit(Ok(StreamEvent::ToolCallDelta {
                    index: 0,
                    partial_json: "{\"loc".into(),
                })),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["ok"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, true)],
            settings(MidStreamPolicy::Continue),
        ))
        .await;
        assert_eq!(seen.rewinds.len(), 1);
        assert_eq!(
            b.last_request().messages.len(),
            1,
            "no prefill of a half tool call"
        );
        assert_eq!(seen.text, "ok");
    }

    #[tokio::test(start_paused = true)]
    async fn fail_policy_ends_with_the_error_and_tries_nothing_else() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hel"),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Fail),
        ))
        .await;
        assert_eq!(seen.end.unwrap_err().class, ErrorClass::StreamCut);
        assert_eq!(b.calls(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_on_the_same_target() {
        let mut limited =
            ProviderError::new("a", ErrorClass::RateLimited, Phase::Headers, "slow down");
        limited.retry_after = Some(Duration::from_secs(3));
        let a = Scripted::new(
            "a",
            vec![
                vec![Play::Emit(Err(limited))],
                reply(&["after ", "waiting"]),
            ],
        );
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let started = Instant::now();
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        ))
        .await;
        assert_eq!(seen.text, "after waiting");
        assert!(
            started.elapsed() >= Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!((a.calls(), b.calls()), (2, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn request_faults_do_not_fail_over_and_the_caller_gets_the_providers_reason() {
        for class in [
            ErrorClass::BadRequest,
            ErrorClass::ContentFilter,
            ErrorClass::NotFound,
            ErrorClass::TooLarge,
            ErrorClass::ContextLength,
        ] {
            let a = Scripted::new("a", vec![vec![fail("a", class, Phase::Headers)]]);
            let b = Scripted::new("b", vec![reply(&["unused"])]);
            let seen = ask(&engine(
                vec![target(&a, false), target(&b, false)],
                settings(MidStreamPolicy::Restart),
            ))
            .await;
            let err = seen.end.unwrap_err();
            assert_eq!(err.class, class);
            assert_eq!(err.message, format!("{class} from a"));
            assert_eq!((a.calls(), b.calls()), (1, 0), "{class}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn context_length_goes_only_to_a_larger_context() {
        let a = Scripted::new(
            "a",
            vec![vec![fail("a", ErrorClass::ContextLength, Phase::Headers)]],
        );
        let small = Scripted::new("small", vec![reply(&["unused"])]);
        let large = Scripted::new("large", vec![reply(&["roomy"])]);
        let mut ta = target(&a, false);
        ta.context_window = Some(200_000);
        let mut ts = target(&small, false);
        ts.context_window = Some(128_000);
        let mut tl = target(&large, false);
        tl.context_window = Some(1_000_000);
        let seen = ask(&engine(
            vec![ta, ts, tl],
            settings(MidStreamPolicy::Restart),
        ))
        .await;
        assert_eq!(seen.text, "roomy");
        assert_eq!((a.calls(), small.calls(), large.calls()), (1, 0, 1));
        assert!(seen.types.contains(&"attempt_skipped"));
    }

    #[tokio::test(start_paused = true)]
    async fn auth_fails_over_and_flags_the_provider() {
        let a = Scripted::new("a", vec![vec![fail("a", ErrorClass::Auth, Phase::Headers)]]);
        let b = Scripted::new("b", vec![reply(&["fine"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        ))
        .await;
        assert_eq!(seen.text, "fine");
        assert_eq!(a.calls(), 1, "auth is not retried");
        assert!(seen.types.contains(&"provider_flagged"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_timeout_fails_over_at_once() {
        let a = Scripted::new(
            "a",
            vec![
                vec![fail("a", ErrorClass::Timeout, Phase::FirstEvent)],
                reply(&["unused"]),
            ],
        );
        let b = Scripted::new("b", vec![reply(&["fast"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        ))
        .await;
        assert_eq!(seen.text, "fast");
        assert_eq!(a.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_stream_cancels_the_request() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("slow"),
                Play::Wait(Duration::from_secs(60)),
                done(),
            ]],
        );
        let e = engine(vec![target(&a, false)], settings(MidStreamPolicy::Restart));
        let mut rx = e.shared().bus.subscribe();
        let (_, mut stream) = e.send(Request::prompt("hi"), RequestMeta::new(Source::Ask));
        while let Some(Ok(ev)) = stream.next().await {
            if matches!(ev, StreamEvent::TextDelta { .. }) {
                break;
            }
        }
        drop(stream);
        let finished = loop {
            let ev = rx.recv().await.unwrap();
            if let EventKind::RequestFinished { class, .. } = &ev.kind {
                break *class;
            }
        };
        assert_eq!(finished, Some(ErrorClass::Cancelled));
    }

    #[tokio::test(start_paused = true)]
    async fn all_targets_forced_open_fails_fast_naming_them() {
        let a = Scripted::new("a", vec![reply(&["x"])]);
        let b = Scripted::new("b", vec![reply(&["y"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        );
        e.shared().breakers.force_open("a");
        e.shared().breakers.force_open("b");
        let seen = ask(&e).await;
        let err = seen.end.unwrap_err();
        assert_eq!(err.class, ErrorClass::Unavailable);
        assert!(
            err.message.contains("a forced_open") && err.message.contains("b forced_open"),
            "{}",
            err.message
        );
        assert_eq!((a.calls(), b.calls()), (0, 0));
    }

    fn slow(wait_ms: u64, words: &[&str]) -> Vec<Play> {
        let mut s = vec![Play::Wait(Duration::from_millis(wait_ms))];
        s.extend(reply(words));
        s
    }

    fn hedged(trigger: HedgeTrigger) -> EngineSettings {
        EngineSettings {
            hedge: Some(trigger),
            ..settings(MidStreamPolicy::Restart)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_primary_is_hedged_and_the_first_healthy_event_wins() {
        let a = Scripted::new("a", vec![slow(5_000, &["late"])]);
        let b = Scripted::new("b", vec![slow(100, &["hedged ", "answer"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            hedged(HedgeTrigger::After(Duration::from_secs(1))),
        );
        let started = Instant::now();
        let seen = ask(&e).await;
        assert_eq!(seen.text, "hedged answer");
        assert_eq!(seen.starts, 1, "only the winner reaches the caller");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!((a.calls(), b.calls()), (1, 1));
        match seen.finished {
            EventKind::RequestFinished {
                provider, attempts, ..
            } => {
                assert_eq!(provider.as_deref(), Some("b"));
                assert_eq!(attempts, 2, "both attempts are accounted");
            }
            other => panic!("{other:?}"),
        }
        // The loser was cancelled, not blamed: its breaker saw nothing.
        assert_eq!(
            e.shared()
                .breakers
                .snapshot(&"a".into())
                .consecutive_failures,
            0
        );
        let types = &seen.types;
        let failed = types.iter().filter(|t| **t == "attempt_failed").count();
        assert_eq!(failed, 1, "{types:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hedge_that_loses_publishes_no_first_event_and_no_text() {
        // Both produce their first event at the same instant (1.2 s): either may win, but only
        // the winner may announce a first event or text.
        let a = Scripted::new("a", vec![slow(1_200, &["from ", "a"])]);
        let b = Scripted::new("b", vec![slow(200, &["from ", "b"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            hedged(HedgeTrigger::After(Duration::from_secs(1))),
        );
        let mut rx = e.shared().bus.subscribe();
        let seen = ask(&e).await;
        let winner = match &seen.finished {
            EventKind::RequestFinished {
                provider: Some(p), ..
            } => p.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(seen.text, format!("from {winner}"));
        let (mut firsts, mut texts_from) = (Vec::new(), Vec::new());
        while let Ok(ev) = rx.try_recv() {
            match &ev.kind {
                EventKind::FirstEvent { provider, .. } => firsts.push(provider.clone()),
                EventKind::TextDelta { provider, .. } => texts_from.push(provider.clone()),
                _ => {}
            }
        }
        assert_eq!(
            firsts,
            std::slice::from_ref(&winner),
            "one first_event, the winner's"
        );
        assert!(texts_from.iter().all(|p| *p == winner), "{texts_from:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_prompt_primary_is_not_hedged() {
        let a = Scripted::new("a", vec![slow(200, &["quick"])]);
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            hedged(HedgeTrigger::After(Duration::from_secs(1))),
        );
        let seen = ask(&e).await;
        assert_eq!(seen.text, "quick");
        assert_eq!(b.calls(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_percentile_trigger_follows_recent_latency() {
        // Twenty quick answers teach the engine that `a` answers within 10 ms.
        let mut scripts: Vec<Vec<Play>> = (0..20).map(|_| slow(10, &["ok"])).collect();
        scripts.push(slow(3_000, &["too late"]));
        let a = Scripted::new("a", scripts);
        let b = Scripted::new("b", vec![slow(50, &["hedge"])]);
        let trigger = HedgeTrigger::Percentile {
            percentile: 95.0,
            fallback: Duration::from_secs(10),
        };
        let e = engine(vec![target(&a, false), target(&b, false)], hedged(trigger));
        for _ in 0..20 {
            assert_eq!(ask(&e).await.text, "ok");
        }
        assert_eq!(b.calls(), 0);
        let started = Instant::now();
        let seen = ask(&e).await;
        assert_eq!(seen.text, "hedge");
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "hedged after ~p95 (10 ms), not the fallback: {:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn when_all_are_open_try_earliest_tries_the_one_down_longest() {
        let a = Scripted::new(
            "a",
            vec![
                vec![fail("a", ErrorClass::ServerError, Phase::Headers)],
                reply(&["unused"]),
            ],
        );
        let b = Scripted::new("b", vec![reply(&["from b, down longest"])]);
        let bus = Bus::new(4096);
        let one_strike = BreakerConfig {
            consecutive_failures: 1,
            ..BreakerConfig::default()
        };
        let breakers = Breakers::new(one_strike, bus.clone());
        let budget = RetryBudget::new(&BudgetConfig {
            capacity: 100.0,
            refill_per_sec: 10.0,
        });
        let mut s = settings(MidStreamPolicy::Restart);
        s.retry.max_retries = 0;
        s.when_all_open = WhenAllOpen::TryEarliest;
        let e = FailoverEngine::new(
            "chain",
            vec![target(&a, false), target(&b, false)],
            s,
            Shared::new(bus, breakers, budget, Pricing::built_in()),
        );
        // b's breaker opens first (a failure seen elsewhere), a's a second later.
        e.shared()
            .breakers
            .admit(&"b".into())
            .unwrap()
            .record(CallOutcome::Failure { retry_after: None });
        tokio::time::advance(Duration::from_secs(1)).await;
        let first = ask(&e).await;
        assert_eq!(first.end.unwrap_err().class, ErrorClass::ServerError);
        // Everything is open: rather than no answer, one try at b, open longest.
        let second = ask(&e).await;
        assert_eq!(second.text, "from b, down longest");
        assert_eq!((a.calls(), b.calls()), (1, 1));
        assert_eq!(
            second
                .types
                .iter()
                .filter(|t| **t == "attempt_skipped")
                .count(),
            2
        );
    }

    fn cannot_continue(provider: &str) -> (String, String) {
        (provider.to_string(), "cannot_continue".to_string())
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_carries_visible_text_on_where_a_target_takes_a_prefill() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hello "),
                text("wor"),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let c = Scripted::new("c", vec![reply(&["ld", "!"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false), target(&c, true)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        assert_eq!(seen.text, "Hello world!");
        assert_eq!(seen.end.unwrap(), StopReason::EndTurn);
        assert!(seen.rewinds.is_empty());
        assert!(!seen.types.contains(&"rewind"), "{:?}", seen.types);
        assert_eq!(seen.starts, 1);
        assert_eq!(seen.skips, [cannot_continue("b")], "b takes no prefill");
        assert_eq!((a.calls(), b.calls(), c.calls()), (1, 0, 1));
        let last = c.last_request().messages.last().cloned().unwrap();
        assert_eq!(last, Message::assistant("Hello wor"));
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_ends_with_the_cut_when_no_target_can_continue() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hello "),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        let err = seen.end.unwrap_err();
        assert_eq!(
            (err.class, err.provider.as_str()),
            (ErrorClass::StreamCut, "a")
        );
        assert_eq!(seen.text, "Hello ", "what the caller saw stays");
        assert!(seen.rewinds.is_empty());
        assert!(!seen.types.contains(&"rewind"), "{:?}", seen.types);
        assert_eq!(seen.skips, [cannot_continue("b")]);
        assert_eq!(b.calls(), 0);
        match seen.finished {
            EventKind::RequestFinished { outcome, class, .. } => {
                assert_eq!(outcome, Outcome::Error);
                assert_eq!(class, Some(ErrorClass::StreamCut));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_restarts_invisibly_before_any_text() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                usage(10, 0),
                fail("a", ErrorClass::Overloaded, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["Fresh."])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        assert_eq!(seen.text, "Fresh.");
        assert_eq!(seen.end.unwrap(), StopReason::EndTurn);
        assert_eq!(seen.rewinds, [0], "only a bare message start is withdrawn");
        assert!(seen.skips.is_empty());
        assert_eq!(b.last_request().messages.len(), 1, "no prefill");
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_never_splices_or_withdraws_a_tool_call() {
        let mut script = vec![start()];
        script.extend(tool_call());
        script.push(fail("a", ErrorClass::StreamCut, Phase::MidStream));
        let a = Scripted::new("a", vec![script]);
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, true)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        assert_eq!(seen.end.unwrap_err().class, ErrorClass::StreamCut);
        assert!(seen.rewinds.is_empty());
        assert!(!seen.types.contains(&"rewind"), "{:?}", seen.types);
        assert_eq!(
            seen.skips,
            [cannot_continue("b")],
            "b takes a prefill, but not of a tool call"
        );
        assert_eq!(b.calls(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_a_refused_prefill_keeps_the_original_error() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hello "),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new(
            "b",
            vec![
                vec![answer("b", ErrorClass::BadRequest, 400, None)],
                reply(&["unused"]),
            ],
        );
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, true)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        let err = seen.end.unwrap_err();
        assert_eq!(
            (err.class, err.provider.as_str()),
            (ErrorClass::StreamCut, "a"),
            "the refusal must not mask the cut"
        );
        assert!(seen.rewinds.is_empty());
        assert!(!seen.types.contains(&"rewind"), "{:?}", seen.types);
        assert_eq!(b.calls(), 1, "no restart without the prefill");
        assert_eq!(seen.text, "Hello ");
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_retries_the_last_target_with_the_prefill() {
        let a = Scripted::new(
            "a",
            vec![
                vec![
                    start(),
                    text("Hel"),
                    fail("a", ErrorClass::Stalled, Phase::MidStream),
                ],
                reply(&["lo"]),
            ],
        );
        let seen = ask(&engine(
            vec![target(&a, true)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        assert_eq!(seen.text, "Hello");
        assert_eq!(seen.end.unwrap(), StopReason::EndTurn);
        assert!(seen.rewinds.is_empty());
        assert_eq!(seen.starts, 1);
        assert_eq!(a.calls(), 2);
        let last = a.last_request().messages.last().cloned().unwrap();
        assert_eq!(last, Message::assistant("Hel"));
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_retries_its_own_target_when_the_next_cannot_continue() {
        let a = Scripted::new(
            "a",
            vec![
                vec![
                    start(),
                    text("Hel"),
                    fail("a", ErrorClass::StreamCut, Phase::MidStream),
                ],
                reply(&["lo"]),
            ],
        );
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let seen = ask(&engine(
            vec![target(&a, true), target(&b, false)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        assert_eq!(seen.text, "Hello", "a carried its own reply on");
        assert_eq!(seen.end.unwrap(), StopReason::EndTurn);
        assert_eq!(
            b.calls(),
            0,
            "b could only have restarted, which the caller can't unsee"
        );
        assert_eq!(a.calls(), 2);
        assert!(seen.rewinds.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_does_not_wait_to_retry_a_target_that_cannot_continue() {
        let a = Scripted::new(
            "a",
            vec![
                vec![
                    start(),
                    text("Hel"),
                    fail("a", ErrorClass::StreamCut, Phase::MidStream),
                ],
                reply(&["unused"]),
            ],
        );
        let started = Instant::now();
        let seen = ask(&engine(
            vec![target(&a, false)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        assert_eq!(seen.end.unwrap_err().class, ErrorClass::StreamCut);
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "no backoff before giving up"
        );
        assert!(seen.skips.is_empty(), "a was tried, not skipped");
        assert_eq!(a.calls(), 1);
        assert!(seen.rewinds.is_empty());
    }

    #[test]
    fn continue_or_fail_has_its_config_name() {
        #[derive(Deserialize)]
        struct Chain {
            mid_stream: MidStreamPolicy,
        }
        let chain: Chain = toml::from_str("mid_stream = \"continue_or_fail\"").unwrap();
        assert_eq!(chain.mid_stream, MidStreamPolicy::ContinueOrFail);
    }

    fn no_retries() -> EngineSettings {
        let mut s = settings(MidStreamPolicy::Restart);
        s.retry.max_retries = 0;
        s
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limit_with_retry_after_outranks_a_later_refused_connection() {
        let anthropic = Scripted::new(
            "anthropic",
            vec![vec![answer(
                "anthropic",
                ErrorClass::RateLimited,
                429,
                Some(7),
            )]],
        );
        let openai = Scripted::new(
            "openai",
            vec![vec![fail("openai", ErrorClass::Connect, Phase::Connect)]],
        );
        let seen = ask(&engine(
            vec![target(&anthropic, false), target(&openai, false)],
            no_retries(),
        ))
        .await;
        let err = seen.end.unwrap_err();
        assert_eq!(err.class, ErrorClass::RateLimited);
        assert_eq!(
            (err.provider.as_str(), err.status),
            ("anthropic", Some(429))
        );
        assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
        assert_eq!((anthropic.calls(), openai.calls()), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_providers_503_outranks_an_earlier_refused_connection() {
        let anthropic = Scripted::new(
            "anthropic",
            vec![vec![fail("anthropic", ErrorClass::Connect, Phase::Connect)]],
        );
        let openai = Scripted::new(
            "openai",
            vec![vec![answer("openai", ErrorClass::Overloaded, 503, None)]],
        );
        let seen = ask(&engine(
            vec![target(&anthropic, false), target(&openai, false)],
            no_retries(),
        ))
        .await;
        let err = seen.end.unwrap_err();
        assert_eq!((err.class, err.status), (ErrorClass::Overloaded, Some(503)));
        assert_eq!(err.provider, "openai");
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_outranks_an_earlier_server_error() {
        let anthropic = Scripted::new(
            "anthropic",
            vec![vec![answer(
                "anthropic",
                ErrorClass::ServerError,
                500,
                None,
            )]],
        );
        let openai = Scripted::new(
            "openai",
            vec![vec![answer(
                "openai",
                ErrorClass::RateLimited,
                429,
                Some(3),
            )]],
        );
        let seen = ask(&engine(
            vec![target(&anthropic, false), target(&openai, false)],
            no_retries(),
        ))
        .await;
        let err = seen.end.unwrap_err();
        assert_eq!((err.provider.as_str(), err.status), ("openai", Some(429)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_fault_that_fails_over_is_not_masked_by_a_later_timeout() {
        let mut s = no_retries();
        let failover = crate::engine::classify::ClassPolicyOverride {
            failover: Some(Failover::Yes),
            ..Default::default()
        };
        s.policy = Policy::with_overrides(&BTreeMap::from([(ErrorClass::BadRequest, failover)]));
        let a = Scripted::new(
            "a",
            vec![vec![answer("a", ErrorClass::BadRequest, 400, None)]],
        );
        let b = Scripted::new(
            "b",
            vec![vec![fail("b", ErrorClass::Timeout, Phase::Headers)]],
        );
        let seen = ask(&engine(vec![target(&a, false), target(&b, false)], s)).await;
        let err = seen.end.unwrap_err();
        assert_eq!(
            (err.class, err.provider.as_str()),
            (ErrorClass::BadRequest, "a")
        );
        assert_eq!(b.calls(), 1, "the policy let it fail over");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_whose_restart_fails_to_connect_reports_the_cut() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hel"),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new(
            "b",
            vec![vec![fail("b", ErrorClass::Connect, Phase::Connect)]],
        );
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            no_retries(),
        ))
        .await;
        let err = seen.end.unwrap_err();
        assert_eq!(
            (err.class, err.provider.as_str()),
            (ErrorClass::StreamCut, "a"),
            "two transport failures: the earlier stays"
        );
    }

    #[test]
    fn keep_holds_the_most_informative_error_and_the_earliest_on_a_tie() {
        let plain = |p: &str, class| ProviderError::new(p, class, Phase::Headers, "x");
        let http = |p: &str, class, status, retry_after: Option<u64>| ProviderError {
            status: Some(status),
            retry_after: retry_after.map(Duration::from_secs),
            ..plain(p, class)
        };
        let in_stream = |p: &str, class, ty: &str| ProviderError {
            error_type: Some(ty.to_string()),
            phase: Phase::MidStream,
            ..plain(p, class)
        };
        let kept = |errors: Vec<ProviderError>| {
            let mut tally = Tally::default();
            for e in errors {
                tally.keep(e);
            }
            let e = tally.error.unwrap();
            (e.provider, e.class)
        };
        use ErrorClass::*;
        let cases: Vec<(Vec<ProviderError>, (&str, ErrorClass))> = vec![
            (
                vec![plain("a", Connect), plain("b", Timeout)],
                ("a", Connect),
            ),
            (
                vec![plain("a", Cancelled), plain("b", Stalled)],
                ("b", Stalled),
            ),
            (
                vec![plain("a", StreamCut), plain("b", Unavailable)],
                ("a", StreamCut),
            ),
            (
                vec![
                    plain("a", StreamCut),
                    in_stream("b", Overloaded, "overloaded_error"),
                ],
                ("b", Overloaded),
            ),
            (
                vec![plain("a", Malformed), http("b", Timeout, 504, None)],
                ("b", Timeout),
            ),
            (
                vec![
                    http("a", ServerError, 500, None),
                    http("b", Overloaded, 503, None),
                ],
                ("a", ServerError),
            ),
            (
                vec![
                    http("a", RateLimited, 429, None),
                    http("b", RateLimited, 429, Some(2)),
                ],
                ("b", RateLimited),
            ),
            (
                vec![
                    http("a", NotFound, 404, None),
                    http("b", RateLimited, 429, Some(2)),
                ],
                ("a", NotFound),
            ),
            (
                vec![http("a", Auth, 401, None), plain("b", ContextLength)],
                ("b", ContextLength),
            ),
        ];
        for (errors, (provider, class)) in cases {
            let names: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            assert_eq!(kept(errors), (provider.to_string(), class), "{names:?}");
        }
    }

    #[test]
    fn next_step_decisions() {
        let s = settings(MidStreamPolicy::Restart);
        let budget = RetryBudget::new(&BudgetConfig {
            capacity: 10.0,
            refill_per_sec: 0.0,
        });
        let decide = |class, phase, committed, has_next, retries| {
            let err = ProviderError::new("a", class, phase, "x");
            let facts = Facts {
                error: &err,
                committed,
                has_next_target: has_next,
                retries,
            };
            let mut backoff = Backoff::new(&s.retry);
            next_step(&s, &facts, &mut backoff, &budget).0
        };
        use ErrorClass::*;
        assert!(matches!(
            decide(Overloaded, Phase::Headers, false, true, 0),
            Step::Retry(_)
        ));
        assert_eq!(
            decide(Overloaded, Phase::Headers, false, true, 1),
            Step::NextTarget,
            "retries spent"
        );
        assert_eq!(
            decide(Overloaded, Phase::Headers, false, false, 1),
            Step::Fail
        );
        assert_eq!(
            decide(StreamCut, Phase::MidStream, true, true, 0),
            Step::NextTarget,
            "restart elsewhere"
        );
        assert!(
            matches!(
                decide(StreamCut, Phase::MidStream, true, false, 0),
                Step::Retry(_)
            ),
            "last target: again"
        );
        assert_eq!(
            decide(Timeout, Phase::Headers, false, true, 0),
            Step::NextTarget,
            "silent"
        );
        assert_eq!(
            decide(BadRequest, Phase::Headers, false, true, 0),
            Step::Fail
        );
        assert_eq!(
            decide(Quota, Phase::Headers, false, true, 0),
            Step::NextTarget
        );
    }
}
