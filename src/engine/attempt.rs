//! One attempt: one request to one provider, from `attempt_started` to success or a classified
//! failure, with every step published on the bus.

use futures::StreamExt;
use std::time::Duration;
use tokio::time::Instant;

use crate::engine::classify;
use crate::engine::cost::Pricing;
use crate::event::{Bus, EventKind};
use crate::provider::{
    ErrorClass, Phase, Provider, ProviderError, Request, StopReason, StreamEvent, Usage,
};

/// Who is asking: the request this attempt belongs to and where its events go.
pub struct AttemptContext<'a> {
    pub bus: &'a Bus,
    pub pricing: &'a Pricing,
    pub request_id: &'a str,
    /// 1-based attempt number within the request.
    pub number: u32,
}

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
    /// Zero when the model has no price.
    pub cost_usd: f64,
    pub first_event_ms: Option<u64>,
    pub elapsed: Duration,
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
    let mut report = AttemptReport {
        provider: name.clone(),
        model: request.model.clone(),
        result: Err(ProviderError::new(
            &name,
            ErrorClass::StreamCut,
            Phase::FirstEvent,
            "",
        )),
        text: String::new(),
        usage: Usage::default(),
        cost_usd: 0.0,
        first_event_ms: None,
        elapsed: Duration::ZERO,
    };
    ctx.bus.publish(EventKind::AttemptStarted {
        request_id: ctx.request_id.to_string(),
        attempt: ctx.number,
        provider: name.clone(),
        model: request.model.clone(),
    });

    let started = Instant::now();
    let mut stream = provider.stream(request);
    let mut outcome = None;
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(event) => event,
            Err(err) => {
                outcome = Some(Err(err));
                break;
            }
        };
        if report.first_event_ms.is_none() {
            let latency_ms = millis(started.elapsed());
            report.first_event_ms = Some(latency_ms);
            ctx.bus.publish(EventKind::FirstEvent {
                request_id: ctx.request_id.to_string(),
                attempt: ctx.number,
                provider: name.clone(),
                latency_ms,
            });
        }
        match event {
            StreamEvent::MessageStart { model, .. } if !model.is_empty() => report.model = model,
            StreamEvent::TextDelta { text } => {
                report.text.push_str(&text);
                ctx.bus.publish(EventKind::TextDelta {
                    request_id: ctx.request_id.to_string(),
                    provider: name.clone(),
                    text,
                });
            }
            StreamEvent::Usage(usage) => report.usage = usage,
            StreamEvent::Done {
                stop_reason,
                raw_stop_reason,
            } => {
                outcome = Some(Ok(Completion {
                    stop_reason,
                    raw_stop_reason,
                }));
                break;
            }
            _ => {}
        }
    }
    // Dropping the stream here aborts the HTTP request if it is still open.
    drop(stream);
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

    report.cost_usd = ctx
        .pricing
        .cost(&report.model, &report.usage)
        .unwrap_or(0.0);
    if report.usage != Usage::default() {
        ctx.bus.publish(EventKind::Usage {
            request_id: ctx.request_id.to_string(),
            provider: name.clone(),
            model: report.model.clone(),
            input_tokens: report.usage.input_tokens,
            output_tokens: report.usage.output_tokens,
            cache_read_tokens: report.usage.cache_read_tokens,
            cache_write_tokens: report.usage.cache_write_tokens,
            cost_usd: report.cost_usd,
        });
    }
    if let Err(err) = &report.result {
        ctx.bus.publish(EventKind::AttemptFailed {
            request_id: ctx.request_id.to_string(),
            attempt: ctx.number,
            provider: name,
            phase: err.phase,
            class: err.class,
            retryable: classify::retryable(err.class),
            status: err.status,
            retry_after_ms: err.retry_after_ms(),
            message: err.message.clone(),
            elapsed_ms: millis(report.elapsed),
        });
    }
    report
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
        let ctx = AttemptContext {
            bus: &bus,
            pricing: &pricing,
            request_id: "r1",
            number: 1,
        };
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
    async fn a_stream_that_just_stops_is_a_cut_not_a_success() {
        let provider = Scripted(vec![Ok(StreamEvent::TextDelta { text: "Hal".into() })]);
        let bus = Bus::new(64);
        let mut rx = bus.subscribe();
        let pricing = Pricing::built_in();
        let ctx = AttemptContext {
            bus: &bus,
            pricing: &pricing,
            request_id: "r1",
            number: 1,
        };
        let report = run(&provider, Request::prompt("hello"), ctx).await;
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
        let ctx = AttemptContext {
            bus: &bus,
            pricing: &pricing,
            request_id: "r1",
            number: 1,
        };
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
