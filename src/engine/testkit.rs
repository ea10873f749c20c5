//! Test support for the engine's unit tests: a scripted provider, its script steps, an engine over
//! scripted targets, and the caller's and the bus's view of one request.
#![allow(clippy::unwrap_used)]

use futures::StreamExt;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use crate::engine::breaker::{BreakerConfig, Breakers};
use crate::engine::cost::Pricing;
use crate::engine::failover::{
    EngineSettings, FailoverEngine, MidStreamPolicy, RequestMeta, Shared, Target,
};
use crate::engine::retry::{BudgetConfig, RetryBudget, RetryConfig};
use crate::event::{Bus, EventKind, Source};
use crate::provider::{
    ErrorClass, Phase, Provider, ProviderError, ProviderStream, Request, StopReason, StreamEvent,
    Usage,
};

/// One step of a scripted reply.
#[derive(Clone)]
pub(super) enum Play {
    Emit(Result<StreamEvent, ProviderError>),
    Wait(Duration),
}

/// A provider that plays one script per call and remembers the requests it got.
pub(super) struct Scripted {
    name: String,
    scripts: StdMutex<VecDeque<Vec<Play>>>,
    seen: StdMutex<Vec<Request>>,
}

impl Scripted {
    pub(super) fn new(name: &str, scripts: Vec<Vec<Play>>) -> Arc<Self> {
        Arc::new(Scripted {
            name: name.to_string(),
            scripts: StdMutex::new(scripts.into()),
            seen: StdMutex::default(),
        })
    }
    pub(super) fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    pub(super) fn last_request(&self) -> Request {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

impl Provider for Scripted {
    fn name(&self) -> &str {
        &self.name
    }
    fn default_model(&self) -> &str {
        "claude-sonnet-5-5"
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

pub(super) fn start() -> Play {
    Play::Emit(Ok(StreamEvent::MessageStart {
        id: "m".into(),
        model: "claude-sonnet-5-5".into(),
    }))
}

pub(super) fn text(t: &str) -> Play {
    Play::Emit(Ok(StreamEvent::TextDelta { text: t.into() }))
}

pub(super) fn done() -> Play {
    Play::Emit(Ok(StreamEvent::Done {
        stop_reason: StopReason::EndTurn,
        raw_stop_reason: Some("end_turn".into()),
    }))
}

pub(super) fn usage(input: u64, output: u64) -> Play {
    Play::Emit(Ok(StreamEvent::Usage(Usage {
        input_tokens: input,
        output_tokens: output,
        ..Usage::default()
    })))
}

pub(super) fn fail(provider: &str, class: ErrorClass, phase: Phase) -> Play {
    Play::Emit(Err(ProviderError::new(
        provider,
        class,
        phase,
        format!("{class} from {provider}"),
    )))
}

/// A provider's HTTP error answer.
pub(super) fn answer(
    provider: &str,
    class: ErrorClass,
    status: u16,
    retry_after: Option<u64>,
) -> Play {
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

pub(super) fn tool_call() -> [Play; 2] {
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

pub(super) fn reply(words: &[&str]) -> Vec<Play> {
    let mut s = vec![start()];
    s.extend(words.iter().map(|w| text(w)));
    s.extend([usage(10, words.len() as u64), done()]);
    s
}

pub(super) fn settings(mid_stream: MidStreamPolicy) -> EngineSettings {
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

pub(super) fn engine(targets: Vec<Target>, settings: EngineSettings) -> FailoverEngine {
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

pub(super) fn target(p: &Arc<Scripted>, prefill: bool) -> Target {
    let provider: Arc<dyn Provider> = p.clone();
    Target {
        accepts_prefill: prefill,
        ..Target::new(provider)
    }
}

/// The caller's view (text with rewinds applied, the end) and the bus's event types.
pub(super) struct Seen {
    pub(super) text: String,
    pub(super) starts: usize,
    pub(super) rewinds: Vec<u64>,
    pub(super) end: Result<StopReason, ProviderError>,
    pub(super) types: Vec<&'static str>,
    /// `attempt_skipped` events: (provider, reason).
    pub(super) skips: Vec<(String, String)>,
    pub(super) finished: EventKind,
    /// The last usage the caller got.
    pub(super) usage: Option<Usage>,
    /// The models of the `ContinuedBy` events the caller got.
    pub(super) continued_by: Vec<String>,
}

pub(super) async fn ask(engine: &FailoverEngine) -> Seen {
    ask_for(engine, Request::prompt("hi")).await
}

pub(super) async fn ask_for(engine: &FailoverEngine, request: Request) -> Seen {
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
            instance: None,
        },
        usage: None,
        continued_by: vec![],
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
            Ok(StreamEvent::Usage(usage)) => seen.usage = Some(usage),
            Ok(StreamEvent::ContinuedBy { model }) => seen.continued_by.push(model),
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
