//! Every simulated fault, through the real protocol clients over real sockets, yields the right
//! class in the right phase — for every protocol.

use futures::StreamExt;
use std::time::Duration;

use crate::support::sim::{self, paced};
use breakerbox::provider::{
    self, ApiKey, ErrorClass, Phase, Protocol, ProviderConfig, ProviderError, Request, StopReason,
    StreamEvent, Timeouts, ToolDef,
};
use breakerbox::sim::{Fault, SimConfig, Simulator};

const SHORT: Duration = Duration::from_millis(400);

async fn sim() -> Simulator {
    sim::start(SimConfig {
        providers: vec![
            paced("anthropic", Protocol::Anthropic),
            paced("openai", Protocol::Openai),
            paced("responses", Protocol::OpenaiResponses),
            paced("gemini", Protocol::Gemini),
        ],
        seed: 7,
    })
    .await
}

fn client(
    sim: &Simulator,
    name: &str,
    protocol: Protocol,
    direct: bool,
) -> std::sync::Arc<dyn provider::Provider> {
    let base = if direct {
        sim.direct_base_url(name)
    } else {
        sim.base_url(name)
    };
    let mut cfg = ProviderConfig::new(name, protocol, base.expect("provider has a URL"));
    cfg.api_key = ApiKey::new("sk-test-key");
    cfg.timeouts = Timeouts {
        connect: SHORT,
        headers: SHORT,
        first_event: SHORT,
        idle: SHORT,
        total: Duration::from_secs(10),
    };
    provider::build(cfg).expect("client builds")
}

/// Collect a whole stream: the events before the end, and the error if it failed.
async fn collect(
    p: &dyn provider::Provider,
    request: Request,
) -> (Vec<StreamEvent>, Option<ProviderError>) {
    let mut stream = p.stream(request);
    let mut events = Vec::new();
    while let Some(item) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the stream never hangs")
    {
        match item {
            Ok(e) => events.push(e),
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

fn text(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn done(events: &[StreamEvent]) -> Option<StopReason> {
    events.iter().find_map(|e| match e {
        StreamEvent::Done { stop_reason, .. } => Some(*stop_reason),
        _ => None,
    })
}

const PROTOCOLS: [(&str, Protocol); 4] = [
    ("anthropic", Protocol::Anthropic),
    ("openai", Protocol::Openai),
    ("responses", Protocol::OpenaiResponses),
    ("gemini", Protocol::Gemini),
];

#[tokio::test]
async fn healthy_replies_are_complete_deterministic_and_counted() {
    let sim = sim().await;
    for (name, protocol) in PROTOCOLS {
        let p = client(&sim, name, protocol, false);
        let (events, err) = collect(p.as_ref(), Request::prompt("Why is the sky blue?")).await;
        assert!(err.is_none(), "{name}: {err:?}");
        assert!(
            matches!(events.first(), Some(StreamEvent::MessageStart { .. })),
            "{name}: {events:?}"
        );
        assert_eq!(done(&events), Some(StopReason::EndTurn), "{name}");
        let reply = text(&events);
        assert!(reply.split_whitespace().count() >= 5, "{name}: {reply:?}");
        let usage = events
            .iter()
            .rev()
            .find_map(|e| match e {
                StreamEvent::Usage(u) => Some(*u),
                _ => None,
            })
            .expect("usage reported");
        assert!(
            usage.input_tokens > 0 && usage.output_tokens > 0,
            "{name}: {usage:?}"
        );

        // The same prompt gives the same text; another prompt another.
        let (again, _) = collect(p.as_ref(), Request::prompt("Why is the sky blue?")).await;
        assert_eq!(text(&again), reply, "{name}: deterministic");
        let (other, _) = collect(p.as_ref(), Request::prompt("Name three rivers.")).await;
        assert_ne!(text(&other), reply, "{name}: depends on the prompt");
    }
}

#[tokio::test]
async fn tool_calls_stream_when_tools_are_offered() {
    let sim = sim().await;
    for (name, protocol) in PROTOCOLS {
        let p = client(&sim, name, protocol, false);
        let mut request = Request::prompt("What is the weather in Paris?");
        request.tools = vec![ToolDef {
            name: "get_weather".into(),
            description: "Current weather".into(),
            input_schema: serde_json::json!({
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"]
            }),
        }];
        let (events, err) = collect(p.as_ref(), request).await;
        assert!(err.is_none(), "{name}: {err:?}");
        let start = events.iter().find_map(|e| match e {
            StreamEvent::ToolCallStart { index, id, name } => {
                Some((*index, id.clone(), name.clone()))
            }
            _ => None,
        });
        let (index, id, tool) =
            start.unwrap_or_else(|| panic!("{name}: no tool call in {events:?}"));
        assert_eq!(tool, "get_weather");
        assert!(!id.is_empty());
        let args: String = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCallDelta {
                    index: i,
                    partial_json,
                } if *i == index => Some(partial_json.as_str()),
                _ => None,
            })
            .collect();
        let parsed: serde_json::Value = serde_json::from_str(&args)
            .unwrap_or_else(|e| panic!("{name}: arguments {args:?} are not JSON: {e}"));
        assert!(parsed.get("location").is_some(), "{name}: {parsed}");
        assert_eq!(done(&events), Some(StopReason::ToolUse), "{name}");
    }
}

/// (fault, expected class, expected phase, use the provider's own port)
fn failing_faults() -> Vec<(&'static str, ErrorClass, Phase, bool)> {
    use ErrorClass::*;
    vec![
        (
            "rate_limit:retry_after=2s",
            RateLimited,
            Phase::Headers,
            false,
        ),
        ("quota", Quota, Phase::Headers, false),
        ("overloaded", Overloaded, Phase::Headers, false),
        ("server_error", ServerError, Phase::Headers, false),
        ("bad_request", BadRequest, Phase::Headers, false),
        ("context_length", ContextLength, Phase::Headers, false),
        ("content_filter", ContentFilter, Phase::Headers, false),
        ("auth", Auth, Phase::Headers, false),
        ("connect_refused", Connect, Phase::Connect, true),
        ("reset", Connect, Phase::Headers, false),
        ("no_response", Timeout, Phase::Headers, false),
        (
            "slow_first_event:delay=5s",
            Timeout,
            Phase::FirstEvent,
            false,
        ),
        ("stall:after=3", Stalled, Phase::MidStream, false),
        ("stream_cut:after=3", StreamCut, Phase::MidStream, false),
        (
            "mid_stream_error:after=3",
            Overloaded,
            Phase::MidStream,
            false,
        ),
        ("malformed:after=3", Malformed, Phase::MidStream, false),
        ("flap:down=30s", Overloaded, Phase::Headers, false),
    ]
}

#[tokio::test]
async fn every_failing_fault_gives_its_class_and_phase() {
    let sim = sim().await;
    for (name, protocol) in PROTOCOLS {
        for (fault, class, phase, direct) in failing_faults() {
            sim.set_fault(name, fault.parse::<Fault>().expect("fault parses"))
                .unwrap();
            let p = client(&sim, name, protocol, direct);
            let (events, err) = collect(p.as_ref(), Request::prompt("hello there")).await;
            let err = err.unwrap_or_else(|| panic!("{name} {fault}: no error, got {events:?}"));
            // Gemini blocks a prompt with a 200 whose one chunk says so (`promptFeedback`).
            let phase = match (protocol, fault) {
                (Protocol::Gemini, "content_filter") => Phase::FirstEvent,
                _ => phase,
            };
            assert_eq!(
                (err.class, err.phase),
                (class, phase),
                "{name} {fault}: {err}"
            );
            assert_eq!(err.provider, name);
            assert!(
                done(&events).is_none(),
                "{name} {fault}: a failed stream reported Done"
            );
            if fault.starts_with("rate_limit") {
                assert_eq!(err.status, Some(429));
                assert_eq!(err.retry_after, Some(Duration::from_secs(2)), "{name}");
            }
            if phase == Phase::MidStream {
                assert!(
                    !text(&events).is_empty(),
                    "{name} {fault}: text before the failure"
                );
            }
        }
        // Cleared, the provider answers again (the refused port is listening again, too).
        sim.set_fault(name, Fault::none()).unwrap();
        for direct in [false, true] {
            let p = client(&sim, name, protocol, direct);
            let (events, err) = collect(p.as_ref(), Request::prompt("hello again")).await;
            assert!(
                err.is_none() && done(&events).is_some(),
                "{name} direct={direct}: {err:?}"
            );
        }
    }
}

#[tokio::test]
async fn healthy_quirks_still_complete() {
    let sim = sim().await;
    for (name, protocol) in PROTOCOLS {
        for fault in ["no_done", "latency:first=150ms,token=2ms"] {
            sim.set_fault(name, fault.parse().unwrap()).unwrap();
            let p = client(&sim, name, protocol, false);
            let started = std::time::Instant::now();
            let (events, err) = collect(p.as_ref(), Request::prompt("hello")).await;
            if fault == "no_done"
                && matches!(protocol, Protocol::OpenaiResponses | Protocol::Gemini)
            {
                // Its only end marker is `response.completed` (Gemini's: the chunk with the
                // `finishReason`), which carries the stop and the usage: without it the reply
                // was cut.
                let err = err.unwrap_or_else(|| panic!("{name} {fault}: complete"));
                assert_eq!(
                    (err.class, err.phase),
                    (ErrorClass::StreamCut, Phase::MidStream)
                );
                assert!(done(&events).is_none() && !text(&events).is_empty());
                continue;
            }
            assert!(err.is_none(), "{name} {fault}: {err:?}");
            assert_eq!(done(&events), Some(StopReason::EndTurn), "{name} {fault}");
            if fault.starts_with("latency") {
                assert!(
                    started.elapsed() >= Duration::from_millis(150),
                    "{name}: latency applied"
                );
            }
        }
        sim.set_fault(name, Fault::none()).unwrap();
    }
}

#[tokio::test]
async fn a_flap_recovers_after_its_down_period() {
    let sim = sim().await;
    sim.set_fault("openai", "flap:down=300ms".parse().unwrap())
        .unwrap();
    let p = client(&sim, "openai", Protocol::Openai, false);
    let (_, err) = collect(p.as_ref(), Request::prompt("hi")).await;
    assert_eq!(err.map(|e| e.class), Some(ErrorClass::Overloaded));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (events, err) = collect(p.as_ref(), Request::prompt("hi")).await;
    assert!(err.is_none() && done(&events).is_some(), "{err:?}");
}
