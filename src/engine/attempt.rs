//! One attempt: one request to one provider, from `attempt_started` to success or a classified
//! failure, with every step published on the bus.

use futures::StreamExt;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::engine::breaker::BreakerKey;
use crate::engine::classify::{self, Policy};
use crate::engine::cost::Pricing;
use crate::engine::throttle::Throttle;
use crate::event::{Bus, EventKind};
use crate::provider::{
    ErrorClass, Phase, Provider, ProviderError, ProviderStream, Request, StopReason, StreamEvent,
    Usage,
};

/// Who is asking: the request this attempt belongs to and where its events go.
pub struct AttemptContext<'a> {
    pub bus: &'a Bus,
    pub pricing: &'a Pricing,
    pub request_id: &'a str,
    /// 1-based attempt number within the request.
    pub number: u32,
    /// Where the attempt's stream events go as they arrive (the engine's caller); `None` to only
    /// collect them into the report.
    pub out: Option<&'a mpsc::Sender<Result<StreamEvent, ProviderError>>>,
    /// This attempt continues a reply already started: its `MessageStart` goes to the caller as
    /// [`StreamEvent::ContinuedBy`] (the model carrying the reply on), not as a new message.
    pub continuing: bool,
    /// Added to the usage this attempt forwards: the output of the attempts it continues (see
    /// `Tally::deliver`), so the caller's usage of a spliced reply counts every token it got.
    pub usage_before: Usage,
    /// The engine's policy, for the `retryable` flag of `attempt_failed`; the default if `None`.
    pub policy: Option<&'a Policy>,
    /// A hedged attempt: it may lose, so its `first_event` and text are published by whoever
    /// forwards them to the caller, never here.
    pub held: bool,
    /// Where the provider's rate-limit headers go as they arrive: the shared throttle, under the
    /// target's breaker key. `None`: they are dropped.
    pub limits: Option<(&'a Throttle, &'a BreakerKey)>,
    /// The pool the provider was chosen from, for `attempt_started`.
    pub pool: Option<&'a str>,
}

impl<'a> AttemptContext<'a> {
    pub fn new(bus: &'a Bus, pricing: &'a Pricing, request_id: &'a str, number: u32) -> Self {
        AttemptContext {
            bus,
            pricing,
            request_id,
            number,
            out: None,
            continuing: false,
            usage_before: Usage::default(),
            policy: None,
            held: false,
            limits: None,
            pool: None,
        }
    }
}

/// The longest reply id kept: ids are short, but they come from the provider.
const RESPONSE_ID_BYTES: usize = 256;

/// How a completed attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub stop_reason: StopReason,
    pub raw_stop_reason: Option<String>,
}

/// What an attempt did, whichever way it ended.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub provider: String,
    /// The model that answered (as the provider reported it), else the one requested.
    pub model: String,
    pub result: Result<Completion, ProviderError>,
    pub text: String,
    pub usage: Usage,
    /// The provider reported no usage (the stream was cut first): `usage` is estimated from text.
    pub usage_estimated: bool,
    /// Pieces of output streamed (text, thinking, tool-call input): each is at least one token.
    pub output_pieces: u64,
    /// Zero when the model has no price (then `unpriced`).
    pub cost_usd: f64,
    /// It used tokens of a model the price table does not know: its cost is unknown, not zero.
    pub unpriced: bool,
    pub first_event_ms: Option<u64>,
    /// The provider's id of the reply (its `MessageStart`'s), when it gave one.
    pub response_id: Option<String>,
    /// A tool call had started streaming.
    pub tool_call: bool,
    pub elapsed: Duration,
}

impl AttemptReport {
    /// A report with nothing done yet, ending in `result`.
    fn new(
        provider: &str,
        model: &str,
        result: Result<Completion, ProviderError>,
    ) -> AttemptReport {
        AttemptReport {
            provider: provider.to_string(),
            model: model.to_string(),
            result,
            text: String::new(),
            usage: Usage::default(),
            usage_estimated: false,
            output_pieces: 0,
            cost_usd: 0.0,
            unpriced: false,
            first_event_ms: None,
            response_id: None,
            tool_call: false,
            elapsed: Duration::ZERO,
        }
    }

    /// No call made: the request stands complete as it is, ending with `completion`.
    pub fn without_call(provider: &str, completion: Completion) -> AttemptReport {
        AttemptReport::new(provider, "", Ok(completion))
    }

    /// An attempt that left no report of its own (its task died): a server error, nothing spent.
    pub fn lost(provider: &str, why: &str) -> AttemptReport {
        let err = ProviderError::new(provider, ErrorClass::ServerError, Phase::FirstEvent, why);
        AttemptReport::new(provider, "", Err(err))
    }

    /// The attempt got as far as a first healthy event (the engine committed to it).
    pub fn committed(&self) -> bool {
        self.first_event_ms.is_some()
    }
}

/// Run one attempt to its end. The caller decides what a failure means for the request.
pub async fn run(
    provider: &dyn Provider,
    mut request: Request,
    ctx: AttemptContext<'_>,
) -> AttemptReport {
    if request.model.is_empty() {
        request.model = provider.default_model().to_string();
    }
    let name = provider.name().to_string();
    // A placeholder: `result` is set from the stream's real end below.
    let placeholder = ProviderError::new(&name, ErrorClass::StreamCut, Phase::FirstEvent, "");
    let mut report = AttemptReport::new(&name, &request.model, Err(placeholder));
    let request_chars = request_chars(&request);
    ctx.bus.publish(EventKind::AttemptStarted {
        request_id: ctx.request_id.to_string(),
        attempt: ctx.number,
        provider: name.clone(),
        model: request.model.clone(),
        pool: ctx.pool.map(str::to_string),
    });

    let started = Instant::now();
    // The stream is dropped when `follow` returns: that aborts the HTTP request if it is still open.
    let outcome = follow(provider.stream(request), &ctx, &mut report, started).await;
    report.elapsed = started.elapsed();
    report.result = outcome.unwrap_or_else(|| {
        // The clients report cuts themselves; this guards against a provider that just stops.
        let phase = if report.first_event_ms.is_some() {
            Phase::MidStream
        } else {
            Phase::FirstEvent
        };
        Err(ProviderError::new(
            &name,
            ErrorClass::StreamCut,
            phase,
            "the stream ended before the reply was complete",
        ))
    });
    price(&mut report, request_chars, ctx.pricing);
    publish_end(&ctx, &report);
    report
}

/// Read the attempt's stream, forwarding its events to `ctx.out`, until it ends. The outcome, or
/// `None` if the stream just stopped.
async fn follow(
    mut stream: ProviderStream,
    ctx: &AttemptContext<'_>,
    report: &mut AttemptReport,
    started: Instant,
) -> Option<Result<Completion, ProviderError>> {
    loop {
        let item = match ctx.out {
            // Stop as soon as the caller is gone, even while the provider is silent.
            Some(out) => tokio::select! {
                item = stream.next() => item,
                () = out.closed() => return Some(Err(cancelled(&report.provider, report.committed()))),
            },
            None => stream.next().await,
        };
        let event = match item? {
            // What the headers say of the provider's rate limits: kept, not a reply event.
            Ok(StreamEvent::RateLimits(limits)) => {
                if let Some((throttle, key)) = ctx.limits {
                    throttle.observe(key, limits);
                }
                continue;
            }
            Ok(event) => event,
            Err(err) => return Some(Err(err)),
        };
        if report.first_event_ms.is_none() {
            first_event(ctx, report, started);
        }
        let (forward, completion) = take(ctx, report, &event);
        let event = match event {
            StreamEvent::Usage(usage) => StreamEvent::Usage(usage.plus(&ctx.usage_before)),
            StreamEvent::MessageStart { model, .. } if ctx.continuing => {
                StreamEvent::ContinuedBy { model }
            }
            other => other,
        };
        if forward
            && let Some(out) = ctx.out
            && out.send(Ok(event)).await.is_err()
        {
            return Some(Err(cancelled(&report.provider, true)));
        }
        if let Some(completion) = completion {
            return Some(Ok(completion));
        }
    }
}

/// The attempt's first event arrived: note its latency and, unless the attempt is held, announce it.
fn first_event(ctx: &AttemptContext<'_>, report: &mut AttemptReport, started: Instant) {
    let latency_ms = millis(started.elapsed());
    report.first_event_ms = Some(latency_ms);
    // A held (hedged) attempt may yet lose: whoever forwards it announces its first event.
    if !ctx.held {
        ctx.bus.publish(EventKind::FirstEvent {
            request_id: ctx.request_id.to_string(),
            attempt: ctx.number,
            provider: report.provider.clone(),
            latency_ms,
        });
    }
}

/// Take one event into the report. Whether to forward it to the caller, and the completion if it
/// is the end.
fn take(
    ctx: &AttemptContext<'_>,
    report: &mut AttemptReport,
    event: &StreamEvent,
) -> (bool, Option<Completion>) {
    if matches!(
        event,
        StreamEvent::TextDelta { .. }
            | StreamEvent::RefusalDelta { .. }
            | StreamEvent::ThinkingDelta { .. }
            | StreamEvent::ToolCallDelta { .. }
    ) {
        report.output_pieces += 1;
    }
    match event {
        StreamEvent::MessageStart { id, model } => {
            if !model.is_empty() {
                report.model = model.clone();
            }
            if !id.is_empty() {
                report.response_id = Some(crate::text::cut(id, RESPONSE_ID_BYTES).to_string());
            }
            (true, None)
        }
        StreamEvent::TextDelta { text } | StreamEvent::RefusalDelta { text } => {
            report.text.push_str(text);
            if !ctx.held {
                ctx.bus.publish_text(ctx.request_id, &report.provider, text);
            }
            (true, None)
        }
        StreamEvent::ToolCallStart { .. } => {
            report.tool_call = true;
            (true, None)
        }
        StreamEvent::Usage(usage) => {
            report.usage = *usage;
            (true, None)
        }
        // The caller gets `Done` from the engine once the request is settled.
        StreamEvent::Done {
            stop_reason,
            raw_stop_reason,
        } => (
            false,
            Some(Completion {
                stop_reason: *stop_reason,
                raw_stop_reason: raw_stop_reason.clone(),
            }),
        ),
        _ => (true, None),
    }
}

/// Set the attempt's usage and cost. A stream cut before the provider reported usage (OpenAI sends
/// it last) still consumed and billed tokens: they are estimated, about four characters a token.
fn price(report: &mut AttemptReport, request_chars: u64, pricing: &Pricing) {
    if report.usage == Usage::default() && !report.text.is_empty() {
        report.usage = Usage {
            input_tokens: request_chars.div_ceil(4),
            output_tokens: (report.text.chars().count() as u64).div_ceil(4),
            ..Usage::default()
        };
        report.usage_estimated = true;
    }
    let cost = pricing.cost(&report.model, &report.usage);
    report.unpriced = cost.is_none() && report.usage != Usage::default();
    report.cost_usd = cost.unwrap_or(0.0);
}

/// Publish what the attempt used and, if it failed, how.
fn publish_end(ctx: &AttemptContext<'_>, report: &AttemptReport) {
    if report.usage != Usage::default() {
        ctx.bus.publish(EventKind::Usage {
            request_id: ctx.request_id.to_string(),
            provider: report.provider.clone(),
            model: report.model.clone(),
            input_tokens: report.usage.input_tokens,
            output_tokens: report.usage.output_tokens,
            cache_read_tokens: report.usage.cache_read_tokens,
            cache_write_tokens: report.usage.cache_write_tokens,
            cost_usd: report.cost_usd,
            estimated: report.usage_estimated,
            unpriced: report.unpriced,
            response_id: report.response_id.clone(),
        });
    }
    if let Err(err) = &report.result {
        ctx.bus.publish(EventKind::AttemptFailed {
            request_id: ctx.request_id.to_string(),
            attempt: ctx.number,
            provider: report.provider.clone(),
            phase: err.phase,
            class: err.class,
            retryable: ctx.policy.map_or_else(
                || classify::retryable(err.class),
                |p| p.retryable(err.class),
            ),
            status: err.status,
            retry_after_ms: err.retry_after_ms(),
            message: err.message.clone(),
            elapsed_ms: millis(report.elapsed),
        });
    }
}

fn cancelled(provider: &str, committed: bool) -> ProviderError {
    let phase = if committed {
        Phase::MidStream
    } else {
        Phase::FirstEvent
    };
    ProviderError::new(
        provider,
        ErrorClass::Cancelled,
        phase,
        "the caller went away",
    )
}

/// Characters of text in a request, for estimating its tokens.
fn request_chars(request: &Request) -> u64 {
    let content: usize = request
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .map(|c| match c {
            crate::provider::Content::Text { text } => text.chars().count(),
            crate::provider::Content::ToolUse { input, .. } => input.to_string().len(),
            crate::provider::Content::ToolResult { content, .. } => content.chars().count(),
            // What an image costs in tokens depends on its pixels; its URL is a poor guide.
            crate::provider::Content::Image { .. } | crate::provider::Content::File { .. } => 0,
        })
        .sum();
    let system = request.system.as_ref().map_or(0, |s| s.chars().count());
    (content + system) as u64
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::provider::ProviderStream;

    /// A provider that replays a fixed list of items.
    struct Scripted(Vec<Result<StreamEvent, ProviderError>>);

    impl Provider for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn default_model(&self) -> &str {
            "gpt-5"
        }
        fn stream(&self, _request: Request) -> ProviderStream {
            Box::pin(futures::stream::iter(self.0.clone()))
        }
    }

    fn types(
        rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<crate::event::Event>>,
    ) -> Vec<&'static str> {
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            out.push(e.kind.type_name());
        }
        out
    }

    #[tokio::test]
    async fn success_publishes_first_event_text_and_priced_usage() {
        let provider = Scripted(vec![
            Ok(StreamEvent::MessageStart {
                id: "m".into(),
                model: "gpt-5-2025-08-07".into(),
            }),
            Ok(StreamEvent::TextDelta { text: "Hi".into() }),
            Ok(StreamEvent::TextDelta {
                text: " there".into(),
            }),
            Ok(StreamEvent::Usage(Usage {
                input_tokens: 1_000_000,
                output_tokens: 0,
                ..Usage::default()
            })),
            Ok(StreamEvent::Done {
                stop_reason: StopReason::EndTurn,
                raw_stop_reason: Some("stop".into()),
            }),
        ]);
        let bus = Bus::new(64);
        let mut rx = bus.subscribe();
        let pricing = Pricing::built_in();
        let ctx = AttemptContext::new(&bus, &pricing, "r1", 1);
        let report = run(&provider, Request::prompt("hello"), ctx).await;
        assert_eq!(report.text, "Hi there");
        assert_eq!(report.model, "gpt-5-2025-08-07");
        assert!((report.cost_usd - 1.25).abs() < 1e-9);
        assert!(report.result.is_ok());
        assert_eq!(
            types(&mut rx),
            [
                "attempt_started",
                "first_event",
                "text_delta",
                "text_delta",
                "usage"
            ]
        );
    }

    #[tokio::test]
    async fn a_model_without_a_price_is_unpriced_not_free() {
        let provider = Scripted(vec![
            Ok(StreamEvent::MessageStart {
                id: "m".into(),
                model: "llama-3.3-70b".into(),
            }),
            Ok(StreamEvent::TextDelta { text: "Hi".into() }),
            Ok(StreamEvent::Usage(Usage {
                input_tokens: 10,
                output_tokens: 2,
                ..Usage::default()
            })),
            Ok(StreamEvent::Done {
                stop_reason: StopReason::EndTurn,
                raw_stop_reason: None,
            }),
        ]);
        let bus = Bus::new(64);
        let mut rx = bus.subscribe();
        let pricing = Pricing::built_in();
        let report = run(
            &provider,
            Request::prompt("hello"),
            AttemptContext::new(&bus, &pricing, "r1", 1),
        )
        .await;
        assert!(report.unpriced && report.cost_usd == 0.0);
        let mut usage = None;
        while let Ok(e) = rx.try_recv() {
            if let EventKind::Usage { .. } = &e.kind {
                usage = Some(serde_json::to_value(&*e).unwrap());
            }
        }
        let usage = usage.unwrap();
        assert_eq!(usage["unpriced"], true, "{usage}");
        assert_eq!(usage["cost_usd"], 0.0, "the field stays, with its meaning");
        // A priced model's usage does not carry the flag at all.
        let priced = Scripted(vec![
            Ok(StreamEvent::Usage(Usage {
                input_tokens: 10,
                ..Usage::default()
            })),
            Ok(StreamEvent::Done {
                stop_reason: StopReason::EndTurn,
                raw_stop_reason: None,
            }),
        ]);
        let report = run(
            &priced,
            Request::prompt("hello"),
            AttemptContext::new(&bus, &pricing, "r2", 1),
        )
        .await;
        assert!(!report.unpriced && report.cost_usd > 0.0);
        let seen: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .filter(|e| e.kind.type_name() == "usage")
            .map(|e| serde_json::to_string(&*e).unwrap())
            .collect();
        assert!(seen.len() == 1 && !seen[0].contains("unpriced"), "{seen:?}");
    }

    #[tokio::test]
    async fn a_stream_that_just_stops_is_a_cut_not_a_success() {
        let provider = Scripted(vec![Ok(StreamEvent::TextDelta { text: "Hal".into() })]);
        let bus = Bus::new(64);
        let mut rx = bus.subscribe();
        let pricing = Pricing::built_in();
        let ctx = AttemptContext::new(&bus, &pricing, "r1", 1);
        let report = run(&provider, Request::prompt("hello"), ctx).await;
        // The tokens were consumed and billed, so they are estimated rather than lost.
        assert!(report.usage_estimated);
        assert_eq!(report.usage.output_tokens, 1);
        let err = report.result.unwrap_err();
        assert_eq!(
            (err.class, err.phase),
            (ErrorClass::StreamCut, Phase::MidStream)
        );
        assert_eq!(
            types(&mut rx),
            [
                "attempt_started",
                "first_event",
                "text_delta",
                "usage",
                "attempt_failed"
            ]
        );
    }

    #[tokio::test]
    async fn an_error_first_is_published_with_its_class_and_retryability() {
        let mut err = ProviderError::new(
            "scripted",
            ErrorClass::RateLimited,
            Phase::Headers,
            "slow down",
        );
        err.status = Some(429);
        err.retry_after = Some(Duration::from_secs(2));
        let provider = Scripted(vec![Err(err)]);
        let bus = Bus::new(64);
        let mut rx = bus.subscribe();
        let pricing = Pricing::built_in();
        let ctx = AttemptContext::new(&bus, &pricing, "r1", 1);
        let report = run(&provider, Request::prompt("hello"), ctx).await;
        assert!(report.first_event_ms.is_none());
        let _started = rx.try_recv().unwrap();
        let failed = rx.try_recv().unwrap();
        match &failed.kind {
            EventKind::AttemptFailed {
                class,
                retryable,
                status,
                retry_after_ms,
                phase,
                ..
            } => {
                assert_eq!(*class, ErrorClass::RateLimited);
                assert!(*retryable);
                assert_eq!(*status, Some(429));
                assert_eq!(*retry_after_ms, Some(2000));
                assert_eq!(*phase, Phase::Headers);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
