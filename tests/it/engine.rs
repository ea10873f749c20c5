//! The failover engine against the simulated providers over real sockets: every fault kind on the
//! primary, breakers opening and skipping, operator overrides, and a flapping primary.

use crate::support::demo_config::paced_sim;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

use breakerbox::cli::CommonArgs;
use breakerbox::config::Config;
use breakerbox::engine::breaker::{BreakerKey, BreakerState};
use breakerbox::engine::failover::{FailoverEngine, RequestMeta};
use breakerbox::event::{Bus, Event, EventKind, Outcome, Source};
use breakerbox::provider::{Provider, ProviderStream, Request, StreamEvent};
use breakerbox::session::setup::{self, Setup};
use breakerbox::session::{Command, Controller};

const CONFIG: &str = r#"
[timeouts]
connect = "500ms"
headers = "500ms"
first_event = "500ms"
idle = "500ms"
total = "10s"

[retry]
max_retries = #MAX_RETRIES
min_delay = "10ms"
max_delay = "20ms"
jitter = false
retry_after_cap = "500ms"

[breaker]
#BREAKER

[sim]
seed = 3
"#;

/// [`CONFIG`] with `breaker`'s lines in that section and `max_retries`, then the paced simulated
/// providers.
fn config_text(breaker: &str, max_retries: u32) -> String {
    CONFIG
        .replace("#BREAKER", breaker)
        .replace("#MAX_RETRIES", &max_retries.to_string())
        + &paced_sim()
}

/// A demo setup; `breaker` holds lines added to that section.
async fn demo(breaker: &str, max_retries: u32) -> (Setup, FailoverEngine) {
    let text = config_text(breaker, max_retries);
    let config = Config::parse(&text, "test config").expect("config parses");
    let common = CommonArgs {
        demo: true,
        ..CommonArgs::default()
    };
    let setup = setup::build(&common, &config, Bus::new(1 << 16), &|_| None)
        .await
        .expect("demo setup");
    let engine = setup.engine(None).expect("engine");
    (setup, engine)
}

/// A finished request as the caller and the bus saw it.
struct Seen {
    text: String,
    complete: bool,
    events: Vec<Arc<Event>>,
}

impl Seen {
    fn of(&self, ty: &str) -> Vec<&EventKind> {
        self.events
            .iter()
            .filter(|e| e.kind.type_name() == ty)
            .map(|e| &e.kind)
            .collect()
    }

    fn attempts_on(&self, provider: &str) -> usize {
        self.of("attempt_started")
            .iter()
            .filter(|k| matches!(k, EventKind::AttemptStarted { provider: p, .. } if p == provider))
            .count()
    }

    fn finished(&self) -> (Outcome, Option<String>, Option<String>) {
        match self.of("request_finished").last() {
            Some(EventKind::RequestFinished {
                outcome,
                provider,
                class,
                ..
            }) => (*outcome, provider.clone(), class.map(|c| c.to_string())),
            other => panic!("no request_finished: {other:?}"),
        }
    }
}

async fn ask(engine: &FailoverEngine, prompt: &str) -> Seen {
    ask_for(engine, prompt, Request::prompt(prompt).max_tokens).await
}

async fn ask_for(engine: &FailoverEngine, prompt: &str, max_tokens: u32) -> Seen {
    let mut rx = engine.shared().bus.subscribe();
    let request = Request {
        max_tokens,
        ..Request::prompt(prompt)
    };
    let (id, mut stream) = engine.send(request, RequestMeta::new(Source::Ask));
    let mut text = String::new();
    let mut complete = false;
    while let Some(item) = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("the engine never hangs")
    {
        match item {
            Ok(StreamEvent::TextDelta { text: t }) => text.push_str(&t),
            Ok(StreamEvent::Rewind { .. }) => text.clear(),
            Ok(StreamEvent::Done { .. }) => complete = true,
            _ => {}
        }
    }
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        let mine = serde_json::to_value(&*e).unwrap()["request_id"].as_str() == Some(id.as_str());
        if mine
            || matches!(
                e.kind,
                EventKind::BreakerChanged { .. } | EventKind::ProviderFlagged { .. }
            )
        {
            events.push(e);
        }
    }
    Seen {
        text,
        complete,
        events,
    }
}

/// What the engine should do with a fault on the primary: (fault, attempts on the primary, the class
/// of its failures, retryable, who answers (None: the request fails), a rewind expected).
type Row = (
    &'static str,
    usize,
    Option<&'static str>,
    bool,
    Option<&'static str>,
    bool,
);

fn table() -> Vec<Row> {
    vec![
        // retry-after 2s is over the 500ms cap: fail over instead of waiting.
        (
            "rate_limit:retry_after=2s",
            1,
            Some("rate_limited"),
            true,
            Some("openai"),
            false,
        ),
        (
            "overloaded",
            2,
            Some("overloaded"),
            true,
            Some("openai"),
            false,
        ),
        (
            "server_error",
            2,
            Some("server_error"),
            true,
            Some("openai"),
            false,
        ),
        (
            "connect_refused",
            2,
            Some("connect"),
            true,
            Some("openai"),
            false,
        ),
        ("reset", 2, Some("connect"), true, Some("openai"), false),
        (
            "flap:down=30s",
            2,
            Some("overloaded"),
            true,
            Some("openai"),
            false,
        ),
        ("quota", 1, Some("quota"), false, Some("openai"), false),
        ("auth", 1, Some("auth"), false, Some("openai"), false),
        // Timed out in silence: no second wait on the same route.
        (
            "no_response",
            1,
            Some("timeout"),
            true,
            Some("openai"),
            false,
        ),
        (
            "slow_first_event:delay=5s",
            1,
            Some("timeout"),
            true,
            Some("openai"),
            false,
        ),
        // Mid-stream: the partial reply is withdrawn and the request restarts on the fallback.
        (
            "stall:after=3",
            1,
            Some("stalled"),
            true,
            Some("openai"),
            true,
        ),
        (
            "stream_cut:after=3",
            1,
            Some("stream_cut"),
            true,
            Some("openai"),
            true,
        ),
        (
            "mid_stream_error:after=3",
            1,
            Some("overloaded"),
            true,
            Some("openai"),
            true,
        ),
        (
            "malformed:after=3",
            1,
            Some("malformed"),
            true,
            Some("openai"),
            true,
        ),
        // The request is at fault: the fallback would fail the same way.
        ("bad_request", 1, Some("bad_request"), false, None, false),
        (
            "context_length",
            1,
            Some("context_length"),
            false,
            None,
            false,
        ),
        (
            "content_filter",
            1,
            Some("content_filter"),
            false,
            None,
            false,
        ),
        // Healthy quirks.
        ("no_done", 1, None, false, Some("anthropic"), false),
        (
            "latency:first=50ms,token=1ms",
            1,
            None,
            false,
            Some("anthropic"),
            false,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_on_the_primary_through_the_engine() {
    const PROMPT: &str = "Why do circuit breakers half-open?";
    // What the fallback says to this prompt when asked directly.
    let (direct_setup, _) = demo("", 1).await;
    let only_openai = direct_setup
        .engine_for(
            "direct",
            &[breakerbox::config::TargetEntry::Name("openai".into())],
            Default::default(),
            None,
        )
        .unwrap();
    let openai_text = ask(&only_openai, PROMPT).await.text;
    assert!(!openai_text.is_empty());

    for (fault, primary_attempts, class, retryable, answered_by, rewind) in table() {
        let (setup, engine) = demo("", 1).await;
        let sim = setup.sim.as_ref().unwrap();
        sim.set_fault("anthropic", fault.parse().unwrap()).unwrap();
        let seen = ask(&engine, PROMPT).await;

        assert_eq!(
            seen.attempts_on("anthropic"),
            primary_attempts,
            "{fault}: attempts on the primary"
        );
        let failures: Vec<_> = seen
            .of("attempt_failed")
            .into_iter()
            .filter_map(|k| match k {
                EventKind::AttemptFailed {
                    provider,
                    class,
                    retryable,
                    ..
                } if provider == "anthropic" => Some((class.to_string(), *retryable)),
                _ => None,
            })
            .collect();
        match class {
            Some(c) => {
                assert_eq!(failures.len(), primary_attempts, "{fault}: {failures:?}");
                assert!(
                    failures.iter().all(|(got, r)| got == c && *r == retryable),
                    "{fault}: {failures:?}"
                );
            }
            None => assert!(failures.is_empty(), "{fault}: {failures:?}"),
        }
        let (outcome, provider, final_class) = seen.finished();
        match answered_by {
            Some(who) => {
                assert_eq!(outcome, Outcome::Ok, "{fault}: {final_class:?}");
                assert_eq!(provider.as_deref(), Some(who), "{fault}");
                assert!(seen.complete, "{fault}: the caller got Done");
                if who == "openai" {
                    assert_eq!(
                        seen.text, openai_text,
                        "{fault}: one provider's complete answer, no splice"
                    );
                    assert_eq!(seen.attempts_on("openai"), 1, "{fault}");
                }
            }
            None => {
                assert_eq!(outcome, Outcome::Error, "{fault}");
                assert_eq!(
                    final_class.as_deref(),
                    class,
                    "{fault}: the provider's own reason"
                );
                assert_eq!(seen.attempts_on("openai"), 0, "{fault}: no failover");
                assert!(!seen.complete, "{fault}");
            }
        }
        let rewinds = seen.of("rewind");
        assert_eq!(!rewinds.is_empty(), rewind, "{fault}: rewind");
        if let Some(EventKind::Rewind {
            discarded_chars, ..
        }) = rewinds.first()
        {
            assert!(*discarded_chars > 0, "{fault}");
        }
        if fault == "auth" {
            assert_eq!(seen.of("provider_flagged").len(), 1);
        }
        setup.sim.unwrap().shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mid_stream_cut_is_paid_for() {
    let (setup, engine) = demo("", 1).await;
    setup
        .sim
        .as_ref()
        .unwrap()
        .set_fault("anthropic", "stream_cut:after=5".parse().unwrap())
        .unwrap();
    let seen = ask(&engine, "hello").await;
    let usage_of = |p: &str| {
        seen.of("usage")
            .into_iter()
            .filter_map(|k| match k {
                EventKind::Usage {
                    provider, cost_usd, ..
                } if provider == p => Some(*cost_usd),
                _ => None,
            })
            .sum::<f64>()
    };
    assert!(
        usage_of("anthropic") > 0.0,
        "the cut attempt's tokens are accounted"
    );
    match seen.of("request_finished")[0] {
        EventKind::RequestFinished {
            cost_usd,
            failed_cost_usd,
            primary_cost_usd,
            ..
        } => {
            assert!((*failed_cost_usd - usage_of("anthropic")).abs() < 1e-12);
            assert!((*cost_usd - usage_of("anthropic") - usage_of("openai")).abs() < 1e-12);
            // The answer came from GPT-6.2 Sol but is priced at the primary's (Sonnet 5.5) rates too.
            assert!(primary_cost_usd.unwrap() > 0.0);
        }
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_and_later_requests_skip_the_primary() {
    let (setup, engine) = demo("consecutive_failures = 2\nrecovery = \"30s\"", 0).await;
    let sim = setup.sim.as_ref().unwrap();
    sim.set_fault("anthropic", "server_error".parse().unwrap())
        .unwrap();
    let first = ask(&engine, "one").await;
    assert!(first.of("breaker_changed").is_empty());
    let second = ask(&engine, "two").await;
    match second.of("breaker_changed").as_slice() {
        [
            EventKind::BreakerChanged {
                provider,
                from,
                to,
                reason,
                ..
            },
        ] => {
            assert_eq!(
                (provider.as_str(), from.as_str(), to.as_str()),
                ("anthropic", "closed", "open")
            );
            assert!(reason.contains("2 consecutive failures"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let third = ask(&engine, "three").await;
    assert_eq!(third.attempts_on("anthropic"), 0);
    match third.of("attempt_skipped").as_slice() {
        [
            EventKind::AttemptSkipped {
                provider, reason, ..
            },
        ] => {
            assert_eq!(
                (provider.as_str(), reason.as_str()),
                ("anthropic", "breaker_open")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(third.finished().1.as_deref(), Some("openai"));
    let anthropic = sim
        .providers()
        .into_iter()
        .find(|p| p.name == "anthropic")
        .unwrap();
    assert_eq!(anthropic.requests, 2, "the open breaker spares the primary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_overrides_trip_and_reset() {
    let (_setup, engine) = demo("", 1).await;
    let breakers = &engine.shared().breakers;
    assert!(breakers.force_open("anthropic"));
    let tripped = ask(&engine, "hi").await;
    assert!(matches!(tripped.of("attempt_skipped").as_slice(),
        [EventKind::AttemptSkipped { reason, .. }] if reason == "forced_open"));
    assert_eq!(tripped.finished().1.as_deref(), Some("openai"));
    assert!(breakers.reset("anthropic"));
    let back = ask(&engine, "hi").await;
    assert_eq!(back.finished().1.as_deref(), Some("anthropic"));
    assert!(back.of("attempt_skipped").is_empty());
}

/// A provider with a breaker per model: the operator's commands name the provider and reach each
/// of its breakers, whose changes name the provider and the model (one provider, as attempts name
/// it). A failing model opens its own breaker only.
#[tokio::test]
async fn a_per_model_provider_is_one_provider_to_the_operator() {
    let text = config_text("consecutive_failures = 1", 0)
        + r#"
[[providers]]
name = "anthropic"
protocol = "anthropic"
model = "claude-a"
breaker = "model"

[[providers]]
name = "openai"
protocol = "openai"
model = "gpt-5"

[[chains]]
name = "default"
targets = [{ provider = "anthropic", model = "claude-a" }, { provider = "anthropic", model = "claude-b" }, "openai"]
"#;
    let config = Config::parse(&text, "test config").expect("config parses");
    let common = CommonArgs {
        demo: true,
        ..CommonArgs::default()
    };
    let bus = Bus::new(1 << 16);
    let mut rx = bus.subscribe();
    let mut setup = setup::build(&common, &config, bus.clone(), &|_| None)
        .await
        .expect("demo setup");
    let engine = setup.engine(None).expect("engine");
    let sim = setup.sim.take().map(Arc::new);
    let names = setup.infos.iter().map(|i| i.name.clone()).collect();
    let controller = Controller::new(engine.clone(), names, sim);
    let breakers = &engine.shared().breakers;
    assert_eq!(
        breakers.keys_of("anthropic"),
        [
            BreakerKey::model("anthropic", "claude-a"),
            BreakerKey::model("anthropic", "claude-b")
        ]
    );

    let said = controller.apply(Command::Trip {
        provider: "anthropic".into(),
    });
    assert_eq!(said.as_deref(), Ok("anthropic: trip (force open)"));
    let mut changed = Vec::new();
    while let Ok(event) = rx.try_recv() {
        if let EventKind::BreakerChanged {
            provider,
            model,
            to,
            ..
        } = &event.kind
        {
            changed.push((provider.clone(), model.clone(), *to));
        }
    }
    let forced = |model: &str| {
        (
            "anthropic".to_string(),
            Some(model.to_string()),
            BreakerState::ForcedOpen,
        )
    };
    assert_eq!(changed, [forced("claude-a"), forced("claude-b")]);
    // Both models skipped: openai answers.
    let tripped = ask(&engine, "hi").await;
    assert_eq!(tripped.of("attempt_skipped").len(), 2);
    assert_eq!(tripped.finished().1.as_deref(), Some("openai"));
    assert_eq!(
        controller.apply(Command::Trip {
            provider: "anthropic".into()
        }),
        Ok("anthropic: already so".to_string())
    );
    assert!(
        controller
            .apply(Command::Reset {
                provider: "nobody".into()
            })
            .is_err_and(|e| e.contains("anthropic, openai"))
    );
    controller
        .apply(Command::Reset {
            provider: "anthropic".into(),
        })
        .expect("reset");
    assert_eq!(
        breakers.state(&BreakerKey::model("anthropic", "claude-b")),
        BreakerState::Closed
    );
}

/// A flapping primary: down for a while, then healthy. Requests spread over it are all answered, the
/// primary sees only probes while its breaker is open (no retry storm), and traffic returns to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_primary_is_spared_and_then_trusted_again() {
    let (setup, engine) = demo(
        "consecutive_failures = 2\nrecovery = \"300ms\"\nrecovery_growth = 1.0\nhalf_open_probes = 1",
        0,
    )
    .await;
    let sim = setup.sim.as_ref().unwrap();
    sim.set_fault("anthropic", "flap:down=1500ms".parse().unwrap())
        .unwrap();
    let mut answered_by = Vec::new();
    for i in 0..20 {
        let seen = ask(&engine, &format!("request {i}")).await;
        let (outcome, provider, _) = seen.finished();
        assert_eq!(outcome, Outcome::Ok, "request {i}");
        answered_by.push(provider.unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let anthropic = sim
        .providers()
        .into_iter()
        .find(|p| p.name == "anthropic")
        .unwrap();
    let failed = anthropic.requests - anthropic.outcomes.get("ok").copied().unwrap_or(0);
    // Two failures open it; then at most one probe per 300 ms recovery over the ~1.5 s outage.
    assert!(
        failed <= 2 + 6,
        "the primary saw {failed} failing requests: a retry storm"
    );
    assert!(failed >= 2);
    assert!(answered_by.iter().any(|p| p == "openai"), "{answered_by:?}");
    assert!(
        answered_by[answered_by.len() - 5..]
            .iter()
            .all(|p| p == "anthropic"),
        "traffic returns to the primary: {answered_by:?}"
    );
}

/// A demo setup whose chain continues mid-stream failures (`mid_stream = "continue"`) on a second
/// Anthropic target, `claude_b`.
async fn continuing() -> Setup {
    let text = config_text("", 0)
        + r#"
[[sim.providers]]
name = "claude_b"
protocol = "anthropic"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0

[[chains]]
name = "default"
targets = ["anthropic", "claude_b"]
mid_stream = "continue"
"#;
    let config = Config::parse(&text, "test config").unwrap();
    let common = CommonArgs {
        demo: true,
        ..CommonArgs::default()
    };
    setup::build(&common, &config, Bus::new(1 << 16), &|_| None)
        .await
        .unwrap()
}

/// `continue`: the primary breaks mid-reply and a prefill-capable target carries on from the text
/// the caller already has. No rewind; one message; the answer begins with what was already shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_splices_onto_the_partial_reply_through_a_real_prefill() {
    let setup = continuing().await;
    let engine = setup.engine(None).unwrap();
    setup
        .sim
        .as_ref()
        .unwrap()
        .set_fault("anthropic", "stream_cut:after=6".parse().unwrap())
        .unwrap();

    let seen = ask(&engine, "Tell me about breakers.").await;
    assert!(seen.complete, "answered");
    assert!(seen.of("rewind").is_empty(), "continued, not restarted");
    let partial: String = seen
        .of("text_delta")
        .into_iter()
        .filter_map(|k| match k {
            EventKind::TextDelta { provider, text, .. } if provider == "anthropic" => {
                Some(text.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(partial.split_whitespace().count(), 6, "{partial:?}");
    assert!(
        seen.text.starts_with(&partial) && seen.text.len() > partial.len(),
        "{:?}",
        seen.text
    );
    assert_eq!(seen.finished().1.as_deref(), Some("claude_b"));
    // The continuation was asked for with the partial reply as the assistant's last message.
    let log = setup.sim.as_ref().unwrap().recent_requests(10);
    assert!(log.iter().any(|r| r.provider == "claude_b"), "{log:?}");
}

/// A provider that remembers what it was asked and passes it on.
struct Recording {
    inner: Arc<dyn Provider>,
    asked: std::sync::Mutex<Vec<Request>>,
}

impl Provider for Recording {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn default_model(&self) -> &str {
        self.inner.default_model()
    }
    fn stream(&self, request: Request) -> ProviderStream {
        self.asked.lock().unwrap().push(request.clone());
        self.inner.stream(request)
    }
}

/// `continue` asks the next target only for what is left of the caller's `max_tokens`, so the
/// spliced reply never runs past it; with nothing left it ends with `max_tokens` and no call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_never_runs_past_max_tokens() {
    let setup = continuing().await;
    let engine = setup.engine(None).unwrap();
    let mut targets = engine.targets().to_vec();
    let second = Arc::new(Recording {
        inner: Arc::clone(&targets[1].provider),
        asked: Default::default(),
    });
    targets[1].provider = second.clone();
    let engine = engine.with_targets(targets);
    let sim = setup.sim.as_ref().unwrap();
    sim.set_fault("anthropic", "stream_cut:after=6".parse().unwrap())
        .unwrap();

    // Six tokens (one a word) arrive before the cut; twelve were asked for.
    let seen = ask_for(&engine, "Tell me about breakers.", 12).await;
    assert!(seen.complete, "answered");
    assert!(seen.of("rewind").is_empty(), "continued, not restarted");
    let asked = second.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    let left = asked[0].max_tokens;
    assert!(
        (1..=12 - 6).contains(&left),
        "the continuation asked for {left} tokens"
    );
    let first_tokens = seen
        .of("text_delta")
        .iter()
        .filter(|k| matches!(k, EventKind::TextDelta { provider, .. } if provider == "anthropic"))
        .count() as u64;
    assert_eq!(first_tokens, 6);
    let second_tokens: u64 = seen
        .of("usage")
        .iter()
        .filter_map(|k| match k {
            EventKind::Usage {
                provider,
                output_tokens,
                ..
            } if provider == "claude_b" => Some(*output_tokens),
            _ => None,
        })
        .sum();
    assert!(second_tokens >= 1 && second_tokens <= u64::from(left));
    assert!(
        first_tokens + second_tokens <= 12,
        "{first_tokens} + {second_tokens} tokens for a max_tokens of 12"
    );

    // Six asked for, six delivered before the cut: the reply is complete as it stands.
    second.asked.lock().unwrap().clear();
    let seen = ask_for(&engine, "Tell me about breakers.", 6).await;
    assert!(seen.complete, "answered");
    assert!(
        second.asked.lock().unwrap().is_empty(),
        "no call for nothing"
    );
    match seen.of("request_finished").last() {
        Some(EventKind::RequestFinished {
            outcome,
            stop_reason,
            ..
        }) => {
            assert_eq!(*outcome, Outcome::Ok);
            assert_eq!(stop_reason.as_deref(), Some("max_tokens"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(seen.text.split_whitespace().count(), 6, "{:?}", seen.text);
}

/// A chain whose primary speaks the OpenAI Responses API and whose fallback is Anthropic.
async fn responses_first() -> (Setup, FailoverEngine) {
    let text = config_text("", 0)
        + r#"
[[sim.providers]]
name = "responses"
protocol = "openai_responses"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0
"#;
    let config = Config::parse(&text, "test config").expect("config parses");
    let common = CommonArgs {
        demo: true,
        ..CommonArgs::default()
    };
    let setup = setup::build(&common, &config, Bus::new(1 << 16), &|_| None)
        .await
        .expect("demo setup");
    let engine = setup
        .engine_for(
            "responses_first",
            &[
                breakerbox::config::TargetEntry::Name("responses".into()),
                breakerbox::config::TargetEntry::Name("anthropic".into()),
            ],
            Default::default(),
            None,
        )
        .expect("engine");
    (setup, engine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responses_primary_fails_over_to_anthropic() {
    const PROMPT: &str = "Why do circuit breakers half-open?";
    let (setup, engine) = responses_first().await;
    let info = setup.infos.iter().find(|i| i.name == "responses").unwrap();
    assert_eq!(info.protocol.as_str(), "openai_responses");

    // Healthy, the Responses API answers, with its usage metered.
    let seen = ask(&engine, PROMPT).await;
    assert_eq!(
        seen.finished(),
        (Outcome::Ok, Some("responses".into()), None)
    );
    assert!(seen.complete && !seen.text.is_empty());
    let usage = seen
        .of("usage")
        .into_iter()
        .find_map(|k| match k {
            EventKind::Usage {
                provider,
                input_tokens,
                output_tokens,
                ..
            } if provider == "responses" => Some((*input_tokens, *output_tokens)),
            _ => None,
        })
        .expect("usage of the Responses reply");
    assert!(usage.0 > 0 && usage.1 > 0, "{usage:?}");
    setup.sim.unwrap().shutdown().await;

    // Failing before the stream, at its first event and midway: Anthropic answers.
    for (fault, class, rewind) in [
        ("rate_limit:retry_after=2s", "rate_limited", false),
        ("server_error", "server_error", false),
        ("stream_cut:after=3", "stream_cut", true),
        ("mid_stream_error:after=3", "overloaded", true),
        ("malformed:after=3", "malformed", true),
        ("no_done", "stream_cut", true),
    ] {
        let (setup, engine) = responses_first().await;
        let sim = setup.sim.as_ref().unwrap();
        sim.set_fault("responses", fault.parse().unwrap()).unwrap();
        let seen = ask(&engine, PROMPT).await;
        let failures: Vec<String> = seen
            .of("attempt_failed")
            .into_iter()
            .filter_map(|k| match k {
                EventKind::AttemptFailed {
                    provider, class, ..
                } if provider == "responses" => Some(class.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(failures, [class], "{fault}");
        assert_eq!(
            seen.finished(),
            (Outcome::Ok, Some("anthropic".into()), None),
            "{fault}"
        );
        assert!(seen.complete, "{fault}: the caller got Done");
        assert_eq!(seen.attempts_on("anthropic"), 1, "{fault}");
        assert_eq!(!seen.of("rewind").is_empty(), rewind, "{fault}: rewind");
        setup.sim.unwrap().shutdown().await;
    }
}
