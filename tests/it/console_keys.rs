//! Keys drive the console's App against a real demo engine: trip → `forced_open` → the next request
//! skips the provider; reset; the fault picker sets a simulated fault; load keys; freeze.

use crate::support::events::{operator_action, session_started};
use futures::StreamExt;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers};
use std::sync::Arc;
use std::time::Duration;

use breakerbox::cli::CommonArgs;
use breakerbox::config::Config;
use breakerbox::console::app::App;
use breakerbox::console::keys::Bindings;
use breakerbox::console::ui::{Focus, LoadView, Overlay, Ui};
use breakerbox::engine::failover::{FailoverEngine, RequestMeta};
use breakerbox::event::{Bus, EventKind, Mode, Source};
use breakerbox::provider::Request;
use breakerbox::session::Controller;
use breakerbox::sim::Simulator;

fn key(c: char) -> KeyEvent {
    code(KeyCode::Char(c))
}

fn code(code: KeyCode) -> KeyEvent {
    KeyEvent {
        code,
        modifiers: KeyModifiers::NONE,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    }
}

async fn demo() -> (App, FailoverEngine, Arc<Simulator>, Bus) {
    let text = "[sim]\nseed = 1\n[[sim.providers]]\nname = \"anthropic\"\nprotocol = \"anthropic\"\nfirst_event_latency = \"0ms\"\ntoken_delay = \"0ms\"\n[[sim.providers]]\nname = \"openai\"\nprotocol = \"openai\"\nfirst_event_latency = \"0ms\"\ntoken_delay = \"0ms\"\n";
    let config = Config::parse(text, "test").expect("config");
    let common = CommonArgs {
        demo: true,
        ..CommonArgs::default()
    };
    let bus = Bus::new(1 << 16);
    let mut setup = breakerbox::session::setup::build(&common, &config, bus.clone(), &|_| None)
        .await
        .expect("setup");
    let engine = setup.engine(None).expect("engine");
    let sim = Arc::new(setup.sim.take().expect("a simulator"));
    let names = setup.infos.iter().map(|i| i.name.clone()).collect();
    let mut controller = Controller::new(engine.clone(), names, Some(Arc::clone(&sim)));
    controller.start_load(LoadView {
        on: false,
        per_sec: 1.0,
    });
    let mut app = App::new(Ui::default(), Bindings::default(), controller);
    // The providers panel lists the session's providers.
    let session = session_started(Mode::Demo, setup.infos.clone(), Some(5));
    app.live.apply(&bus.publish(session));
    (app, engine, sim, bus)
}

/// Send one request and return the events it produced.
async fn request(engine: &FailoverEngine, bus: &Bus) -> Vec<EventKind> {
    let mut rx = bus.subscribe();
    let (id, mut stream) = engine.send(Request::prompt("hi"), RequestMeta::new(Source::Prompt));
    while stream.next().await.is_some() {}
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        let json = serde_json::to_value(&*e).expect("json");
        if json["request_id"] == id.as_str() {
            out.push(e.kind.clone());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trip_forces_open_and_the_next_request_skips_the_provider() {
    let (mut app, engine, _sim, bus) = demo().await;
    let mut rx = bus.subscribe();
    // anthropic is the first row, selected.
    app.on_key(&key('o'));
    assert!(
        matches!(&app.ui.overlay, Some(Overlay::Confirm { command }) if command.provider() == Some("anthropic"))
    );
    app.on_key(&key('y'));
    assert_eq!(app.ui.overlay, None);

    let mut saw_action = false;
    let mut saw_forced = false;
    while let Ok(e) = rx.try_recv() {
        match &e.kind {
            EventKind::OperatorAction {
                action, provider, ..
            } => {
                saw_action |= action == "trip" && provider.as_deref() == Some("anthropic");
            }
            EventKind::BreakerChanged { provider, to, .. } => {
                saw_forced |= provider == "anthropic" && to == "forced_open";
            }
            _ => {}
        }
    }
    assert!(saw_action && saw_forced);

    let events = request(&engine, &bus).await;
    assert!(events.iter().any(|k| matches!(k,
        EventKind::AttemptSkipped { provider, reason, .. } if provider == "anthropic" && reason == "forced_open")));
    assert!(events.iter().any(|k| matches!(k,
        EventKind::RequestFinished { provider: Some(p), .. } if p == "openai")));

    // Reset goes back to automatic at once (it forces nothing, so it does not ask).
    app.on_key(&key('r'));
    let events = request(&engine, &bus).await;
    assert!(events.iter().any(|k| matches!(k,
        EventKind::RequestFinished { provider: Some(p), .. } if p == "anthropic")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_key_but_y_cancels_a_trip() {
    let (mut app, engine, _sim, bus) = demo().await;
    app.on_key(&key('o'));
    app.on_key(&key('n'));
    assert_eq!(app.ui.flash.as_deref(), Some("cancelled"));
    let events = request(&engine, &bus).await;
    assert!(
        !events
            .iter()
            .any(|k| matches!(k, EventKind::AttemptSkipped { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fault_picker_sets_a_simulated_fault() {
    let (mut app, _engine, sim, _bus) = demo().await;
    app.on_key(&key('f'));
    assert!(matches!(
        app.ui.overlay,
        Some(Overlay::FaultPicker { selected: 0, .. })
    ));
    // Down to the second choice (rate_limit), Enter.
    app.on_key(&code(KeyCode::Down));
    app.on_key(&code(KeyCode::Enter));
    let fault = sim.fault("anthropic").expect("a fault").to_string();
    assert!(fault.starts_with("rate_limit"), "{fault}");
    assert!(
        app.ui
            .flash
            .as_deref()
            .is_some_and(|f| f.contains("rate_limit"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_keys_turn_the_background_load_on_and_step_its_rate() {
    let (mut app, _engine, sim, _bus) = demo().await;
    app.on_key(&key('+'));
    assert_eq!(app.load().map(|l| l.per_sec), Some(2.0));
    app.on_key(&key('l'));
    assert_eq!(app.load().map(|l| l.on), Some(true));
    assert_eq!(
        app.ui.flash.as_deref(),
        Some("background load on, 2 requests/s")
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let sent: u64 = sim.providers().iter().map(|p| p.requests).sum();
    assert!(sent >= 1, "background requests reached the providers");
    app.on_key(&key('l'));
    assert_eq!(app.load().map(|l| l.on), Some(false));
    // Off, the rate is what it comes back at, not what is being sent.
    assert_eq!(
        app.ui.flash.as_deref(),
        Some("background load off (back at 2 requests/s when on)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeze_keeps_the_screen_while_data_is_still_collected() {
    let (mut app, _engine, _sim, bus) = demo().await;
    app.on_key(&key(' '));
    assert!(app.is_frozen());
    let before = app.live.events_applied;
    app.live
        .apply(&bus.publish(operator_action("load", None, "")));
    assert_eq!(app.live.events_applied, before + 1, "the live fold goes on");
    app.on_key(&key(' '));
    assert!(!app.is_frozen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prompt_takes_text_enter_sends_alt_enter_breaks_the_line() {
    let (mut app, _engine, _sim, bus) = demo().await;
    let mut rx = bus.subscribe();
    app.on_key(&key('i'));
    for c in "two".chars() {
        app.on_key(&key(c));
    }
    app.on_key(&KeyEvent {
        modifiers: KeyModifiers::ALT,
        ..code(KeyCode::Enter)
    });
    for c in "lines".chars() {
        app.on_key(&key(c));
    }
    // `q` typed into the prompt is text, not quit.
    app.on_key(&key('q'));
    assert!(!app.should_quit());
    assert_eq!(app.prompt.lines(), ["two", "linesq"]);
    app.on_key(&code(KeyCode::Enter));
    assert_eq!(app.prompt.lines(), [""]);
    let started = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let e = rx.recv().await.expect("events");
            if let EventKind::RequestStarted { source, prompt, .. } = &e.kind {
                return (*source, prompt.clone());
            }
        }
    })
    .await
    .expect("the prompt was sent");
    assert_eq!(started, (Source::Prompt, Some("two\nlinesq".to_string())));
    // Sending leaves the prompt for the reply: the next `q` is a command again.
    assert_eq!(app.ui.focus, Focus::Reply);
    app.on_key(&key('q'));
    assert!(app.should_quit());
}

/// Ctrl-C clears a prompt being typed (as a shell does) and quits only from an empty one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_clears_the_prompt_before_it_quits() {
    let (mut app, _engine, _sim, _bus) = demo().await;
    let ctrl_c = KeyEvent {
        modifiers: KeyModifiers::CONTROL,
        ..key('c')
    };
    app.on_key(&key('i'));
    for c in "half a tho".chars() {
        app.on_key(&key(c));
    }
    app.on_key(&ctrl_c);
    assert!(!app.should_quit());
    assert_eq!(app.prompt.lines(), [""]);
    assert_eq!(app.ui.focus, Focus::Prompt);
    app.on_key(&ctrl_c);
    assert!(app.should_quit());
}
