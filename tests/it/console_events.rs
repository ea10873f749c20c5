//! The console drawn from events, as live and replay feed it: events with fixed times go through
//! `Dashboard::apply` and the frame is snapshotted, so the fold and the panels are tested together.

use chrono::{TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui_textarea::TextArea;

use crate::support::events::*;
use breakerbox::console::dashboard::Dashboard;
use breakerbox::console::keys::Bindings;
use breakerbox::console::panels::{Facts, View, copy_text, draw};
use breakerbox::console::ui::{DetailTarget, LoadView, Ui};
use breakerbox::event::{Event, EventKind, Mode, ProviderInfo, Source};
use breakerbox::provider::{ErrorClass, Phase};

/// A request answered by `provider` after `first_ms`, streaming `words`.
fn answered(
    script: &mut Timeline,
    at: i64,
    id: &str,
    provider: &str,
    words: &[&str],
    attempt: u32,
) {
    let model = demo_model(provider);
    script.at(at, attempt_started(id, attempt, provider, model));
    script.at(at + 300, first_event(id, attempt, provider, 300));
    for (i, w) in words.iter().enumerate() {
        script.at(at + 320 + 20 * i as i64, text_delta(id, provider, w));
    }
    let end = at + 400 + 20 * words.len() as i64;
    let tokens = [20, words.len() as u64, 0, 0];
    script.at(end, usage(id, provider, model, tokens, 0.0004));
}

fn finished(
    script: &mut Timeline,
    at: i64,
    id: &str,
    provider: &str,
    attempts: u32,
    cost: f64,
    primary: f64,
) {
    let end = Finished {
        provider: Some(provider),
        stop_reason: Some("end_turn"),
        total_ms: 1500,
        cost_usd: cost,
        attempts,
        primary_cost_usd: Some(primary),
        unpriced: false,
        ..Finished::default()
    };
    script.at(at, request_finished(id, end));
}

fn incident() -> Vec<Event> {
    let mut sc = Timeline::new(Utc.with_ymd_and_hms(2026, 3, 14, 12, 0, 0).unwrap());
    sc.at(0, session_started(Mode::Demo, demo_providers(), Some(2)));
    let chain = ["anthropic", "openai"];
    // r1: healthy.
    let prompt = Some("Summarise the deploy log.");
    sc.at(1_000, request_started("r1", Source::Load, &chain, prompt));
    answered(
        &mut sc,
        1_000,
        "r1",
        "anthropic",
        &["The ", "deploy ", "went ", "fine."],
        1,
    );
    finished(&mut sc, 1_600, "r1", "anthropic", 1, 0.0004, 0.0004);
    // r2: rate-limited twice, the breaker opens, openai answers.
    let prompt = Some("Which test is flaky?");
    sc.at(5_000, request_started("r2", Source::Load, &chain, prompt));
    for (n, t) in [(1, 5_000), (2, 5_600)] {
        sc.at(
            t,
            attempt_started("r2", n, "anthropic", "claude-sonnet-4-5"),
        );
        sc.at(
            t + 40,
            EventKind::AttemptFailed {
                request_id: "r2".into(),
                attempt: n,
                provider: "anthropic".into(),
                phase: Phase::Headers,
                class: ErrorClass::RateLimited,
                retryable: true,
                status: Some(429),
                retry_after_ms: Some(5_000),
                message: "Number of requests has exceeded your rate limit".into(),
                elapsed_ms: 40,
            },
        );
    }
    let reason = "2 consecutive failures";
    sc.at(
        5_641,
        breaker_changed("anthropic", "closed", "open", reason, Some(30_000)),
    );
    answered(
        &mut sc,
        5_650,
        "r2",
        "openai",
        &["Probably ", "the ", "retry ", "test."],
        3,
    );
    finished(&mut sc, 6_200, "r2", "openai", 3, 0.0004, 0.0012);
    // r3, the operator's prompt: openai breaks mid-reply, the text is withdrawn, openai answers again.
    let prompt = Some("Why half-open?");
    sc.at(9_000, request_started("r3", Source::Prompt, &chain, prompt));
    sc.at(9_000, attempt_skipped("r3", "anthropic", "breaker_open"));
    sc.at(9_000, attempt_started("r3", 1, "openai", "gpt-5"));
    sc.at(9_300, first_event("r3", 1, "openai", 300));
    sc.at(9_320, text_delta("r3", "openai", "Because a brea"));
    sc.at(
        9_400,
        EventKind::AttemptFailed {
            request_id: "r3".into(),
            attempt: 1,
            provider: "openai".into(),
            phase: Phase::MidStream,
            class: ErrorClass::StreamCut,
            retryable: true,
            status: None,
            retry_after_ms: None,
            message: "stream broke".into(),
            elapsed_ms: 400,
        },
    );
    sc.at(9_420, rewind("r3", "openai", 14, "stream_cut"));
    answered(
        &mut sc,
        9_430,
        "r3",
        "openai",
        &["Half-open ", "lets ", "a ", "probe ", "test ", "recovery."],
        2,
    );
    finished(&mut sc, 10_100, "r3", "openai", 2, 0.0006, 0.0018);
    let detail = "latency:first=2s,token=80ms";
    sc.at(12_000, operator_action("set_fault", Some("openai"), detail));
    sc.events()
}

fn frame(dash: &Dashboard, ui: &Ui, facts: Facts, (w, h): (u16, u16)) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    let keys = Bindings::default();
    let prompt = TextArea::default();
    terminal
        .draw(|f| {
            draw(
                f,
                &View {
                    dash,
                    ui,
                    keys: &keys,
                    prompt: &prompt,
                    facts,
                },
            );
        })
        .unwrap();
    terminal.backend().to_string()
}

#[test]
fn an_incident_from_events() {
    let mut dash = Dashboard::new();
    for event in incident() {
        dash.apply(&event);
    }
    let ui = Ui::default();
    let load = Facts {
        load: Some(LoadView {
            on: true,
            per_sec: 1.0,
        }),
        faults: true,
        ..Facts::default()
    };
    let screen = frame(&dash, &ui, load, (120, 40));
    // The facts the frame must show, whatever the layout's details.
    for needle in [
        "DEMO",
        "OPEN",
        "half-open in 23s",
        "2 of 2",
        "rate_limited",
        "⟲ withdrawn 14 chars from openai",
        "Half-open lets a probe test recovery.",
        "r3",
    ] {
        assert!(screen.contains(needle), "{needle:?} missing:\n{screen}");
    }
    insta::assert_snapshot!(screen);
}

#[test]
fn the_same_events_give_the_same_frame() {
    let events = incident();
    let frames: Vec<String> = (0..2)
        .map(|_| {
            let mut dash = Dashboard::new();
            for e in &events {
                dash.apply(e);
            }
            frame(&dash, &Ui::default(), Facts::default(), (160, 48))
        })
        .collect();
    assert_eq!(frames[0], frames[1]);
}

/// A fallback whose model has no price (a local server): its requests read "cost unknown" in every
/// panel that shows money, and a total that includes them is a lower bound, never $0.
#[test]
fn a_model_without_a_price_reads_cost_unknown_never_zero() {
    let mut sc = Timeline::new(Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap());
    let mut providers = demo_providers();
    providers.truncate(1);
    providers.push(ProviderInfo {
        name: "local".into(),
        protocol: "openai".parse().unwrap(),
        model: "llama-3.3-70b".into(),
        fault: None,
        base_url: None,
    });
    sc.at(0, session_started(Mode::Demo, providers, Some(5)));
    let chain = ["anthropic", "local"];
    sc.at(
        1_000,
        request_started("r1", Source::Load, &chain, Some("hi")),
    );
    answered(&mut sc, 1_000, "r1", "anthropic", &["Hello."], 1);
    finished(&mut sc, 1_600, "r1", "anthropic", 1, 0.0004, 0.0004);
    sc.at(
        3_000,
        request_started("r2", Source::Load, &chain, Some("hi")),
    );
    sc.at(3_000, attempt_started("r2", 1, "local", "llama-3.3-70b"));
    sc.at(3_300, first_event("r2", 1, "local", 300));
    sc.at(3_320, text_delta("r2", "local", "Hello from afar."));
    let tokens = [20, 5, 0, 0];
    sc.at(
        3_400,
        unpriced_usage("r2", "local", "llama-3.3-70b", tokens),
    );
    let end = Finished {
        provider: Some("local"),
        stop_reason: Some("end_turn"),
        total_ms: 400,
        attempts: 1,
        unpriced: true,
        ..Finished::default()
    };
    sc.at(3_400, request_finished("r2", end));
    let mut dash = Dashboard::new();
    for event in sc.events() {
        dash.apply(&event);
    }
    let screen = frame(&dash, &Ui::default(), Facts::default(), (160, 48));
    let row = |needle: &str| {
        screen
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}:\n{screen}"))
            .to_string()
    };
    // The header's total and the cost panel's: a lower bound.
    assert!(row(" cost ").contains("≥ $0.0004 (+ unpriced)"), "{screen}");
    assert!(row("total ").contains("≥ $0.0004 (+ unpriced)"), "{screen}");
    // The request row, and the provider's rows in the providers and cost panels.
    let r2 = row("r2 ok");
    assert!(r2.contains("unknown") && !r2.contains("$0.0000"), "{r2}");
    let local = row("llama-3.3-70b");
    assert!(
        local.contains("unknown") && !local.contains("$0.0000"),
        "{local}"
    );
    // The reply panel follows r2, the newest: its outcome line too.
    assert!(screen.contains("cost unknown"), "{screen}");
    // The failover delta leaves out what it cannot know, and says so.
    assert!(
        screen.contains("what failing over cost is unknown (1 answer unpriced)"),
        "{screen}"
    );
    // The request's detail names the model and says how to price it.
    let detail = copy_text(&dash, &DetailTarget::Request("r2".into()));
    assert!(
        detail.contains("cost unknown: llama-3.3-70b has no price"),
        "{detail}"
    );
    let detail = copy_text(&dash, &DetailTarget::Provider("local".into()));
    assert!(
        detail.contains("cost unknown ($0.0000 on failures)"),
        "{detail}"
    );
}

/// A real engine over the simulator, from a config: `claude` (one breaker per model) serves chain
/// `a` with `claude-a` and chain `b` with `claude-b`; `gpt` is everyone's fallback.
struct PerModel {
    sim: breakerbox::sim::Simulator,
    setup: breakerbox::session::setup::Setup,
    bus: breakerbox::event::Bus,
}

const PER_MODEL_CONFIG: &str = r##"
[timeouts]
connect = "500ms"
headers = "500ms"
first_event = "500ms"
idle = "500ms"
total = "10s"

[retry]
max_retries = 0

[breaker]
consecutive_failures = 2
recovery = "200ms"
recovery_growth = 1.0

@POLICY@

[[providers]]
name = "claude"
protocol = "anthropic"
model = "claude-a"
base_url = "@CLAUDE_URL@"
breaker = "model"

[[providers]]
name = "gpt"
protocol = "openai"
model = "gpt-5"
base_url = "@GPT_URL@"

[[chains]]
name = "a"
targets = [{ provider = "claude", model = "claude-a" }, "gpt"]

[[chains]]
name = "b"
targets = [{ provider = "claude", model = "claude-b" }, "gpt"]
"##;

impl PerModel {
    /// `policy` holds lines for the config's `[policy]` tables.
    async fn start(policy: &str) -> PerModel {
        use breakerbox::sim::{SimConfig, SimProviderSpec, Simulator};
        let spec = |name: &str, protocol| SimProviderSpec {
            first_event_latency: std::time::Duration::ZERO,
            token_delay: std::time::Duration::ZERO,
            ..SimProviderSpec::new(name, protocol)
        };
        let sim_config = SimConfig {
            providers: vec![
                spec("claude", breakerbox::provider::Protocol::Anthropic),
                spec("gpt", breakerbox::provider::Protocol::Openai),
            ],
            seed: 1,
        };
        let sim = Simulator::start(sim_config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let text = PER_MODEL_CONFIG
            .replace("@POLICY@", policy)
            .replace("@CLAUDE_URL@", &sim.base_url("claude").unwrap())
            .replace("@GPT_URL@", &sim.base_url("gpt").unwrap());
        let config = breakerbox::config::Config::parse(&text, "test config").unwrap();
        let bus = breakerbox::event::Bus::new(1 << 16);
        let common = breakerbox::cli::CommonArgs::default();
        let key = |_: &str| Some("test-key".to_string());
        let setup = breakerbox::session::setup::build(&common, &config, bus.clone(), &key)
            .await
            .unwrap();
        PerModel { sim, setup, bus }
    }

    /// One request down `chain`, to its end.
    async fn ask(&self, chain: &str) {
        use breakerbox::engine::failover::RequestMeta;
        use futures::StreamExt;
        let engine = self.setup.engine(Some(chain)).unwrap();
        let request = breakerbox::provider::Request::prompt("Why half-open?");
        let (_, mut stream) = engine.send(request, RequestMeta::new(Source::Ask));
        while stream.next().await.is_some() {}
    }

    fn fault(&self, fault: &str) {
        self.sim
            .set_fault("claude", fault.parse().unwrap())
            .unwrap();
    }

    /// Every event published so far, folded.
    fn fold(&self, rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<Event>>) -> Dashboard {
        let mut dash = Dashboard::new();
        while let Ok(event) = rx.try_recv() {
            dash.apply(&event);
        }
        dash
    }
}

/// Per-model breakers end to end: `claude-a` and `claude-b` fail until both open, `claude-b`
/// recovers; the dashboard has one `claude` row that keeps each model's state and shows the worst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_model_breakers_from_a_real_engine_fold_into_one_row() {
    use breakerbox::event::BreakerState;
    let run = PerModel::start("").await;
    let mut rx = run.bus.subscribe();
    run.bus.publish(run.setup.session_started(Mode::Live));
    run.fault("server_error");
    for chain in ["a", "a", "b", "b"] {
        run.ask(chain).await;
    }
    run.fault("none");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    // Past its recovery, claude-b lets a probe through, which succeeds; claude-a is not asked.
    run.ask("b").await;
    let dash = run.fold(&mut rx);

    let names: Vec<&str> = dash.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["claude", "gpt"], "one row per provider");
    let claude = dash.provider("claude").unwrap();
    let models: Vec<(&str, BreakerState)> = claude
        .models
        .iter()
        .map(|m| (m.model.as_str(), m.state))
        .collect();
    assert_eq!(
        models,
        [
            ("claude-a", BreakerState::Open),
            ("claude-b", BreakerState::Closed)
        ]
    );
    assert_eq!(
        claude.breaker,
        BreakerState::Open,
        "the row shows the worst"
    );
    let b_changes: Vec<&str> = dash
        .log
        .iter()
        .filter(|l| l.kind == "breaker_changed" && l.text.contains("claude-b"))
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(b_changes.len(), 3, "open, half-open, closed: {b_changes:?}");
    assert_eq!(claude.breaker_since, Some(claude.models[0].since));
    assert!(claude.open_until.is_some());
    assert!(!claude.breaker_reason.is_empty());
    assert_eq!(
        (claude.attempts, claude.failures, claude.successes),
        (5, 4, 1)
    );
    assert_eq!(dash.provider("gpt").unwrap().breaker, BreakerState::Closed);
    assert_eq!(dash.totals.answered, 5, "gpt answered while claude failed");
    run.sim.shutdown().await;
}

/// `[policy.server_error] breaker = false`: the session says which classes count, and server
/// errors no longer raise the failures in a row (nor open the breaker); timeouts still would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_in_a_row_follow_the_configured_breaker_policy() {
    let run = PerModel::start("[policy.server_error]\nbreaker = false\n").await;
    let session = run.setup.session_started(Mode::Live);
    let EventKind::SessionStarted { breaker_counts, .. } = &session else {
        panic!("{session:?}");
    };
    let counts = breaker_counts
        .clone()
        .expect("the policy differs from the default");
    assert!(!counts.contains(&ErrorClass::ServerError));
    assert!(counts.contains(&ErrorClass::Overloaded));

    let mut rx = run.bus.subscribe();
    run.bus.publish(session);
    run.fault("server_error");
    for _ in 0..3 {
        run.ask("a").await;
    }
    let dash = run.fold(&mut rx);
    let claude = dash.provider("claude").unwrap();
    assert_eq!((claude.failures, claude.consecutive_failures), (3, 0));
    assert_eq!(claude.breaker, breakerbox::event::BreakerState::Closed);
    assert!(claude.models.is_empty(), "no breaker changed");
    assert_eq!(
        dash.errors[&("claude".to_string(), ErrorClass::ServerError)].count,
        3
    );
    run.sim.shutdown().await;
}
