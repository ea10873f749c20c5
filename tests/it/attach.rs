//! `breakerbox attach`: the console against a fake gateway (axum on 127.0.0.1:0) that speaks the
//! `/events`, `/control` and `/healthz` contract. Events reach the dashboard as the gateway stamped
//! them, keys become authorized POSTs, their results reach the status bar, a refused token is a
//! clear error that never shows the token, and a dropped stream reconnects without double counting.
//! A fleet console over three such gateways: merged rows, each member's part, events in time order
//! named by member, commands to all of them, a member down while the others carry on.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

use breakerbox::attach::{MemberSpec, Options, Reader, attach, attach_fleet};
use breakerbox::console::app::App;
use breakerbox::console::dashboard::{FleetBreaker, MemberLink};
use breakerbox::console::keys::Bindings;
use breakerbox::console::ui::{Link, Ui};
use breakerbox::engine::breaker::BreakerState;
use breakerbox::event::Event;

const TOKEN: &str = "s3cret-attach-token";

/// One `/events` connection's frames; the stream stays open after them when `keep_open`.
#[derive(Clone)]
struct Script {
    frames: String,
    keep_open: bool,
}

/// One command `/control` received: its Authorization header and its JSON body.
type Received = (Option<String>, Value);

#[derive(Clone)]
struct Fake {
    token: Option<String>,
    simulated: bool,
    /// `/control` answers 401 whatever it is sent.
    control_refuses: bool,
    /// Each `/events` connection plays the next script; the last repeats.
    scripts: Arc<Vec<Script>>,
    connections: Arc<AtomicUsize>,
    /// What `/control` received: the Authorization header and the JSON body.
    controls: Arc<Mutex<Vec<Received>>>,
}

impl Fake {
    fn new(scripts: Vec<Script>) -> Self {
        Fake {
            token: Some(TOKEN.to_string()),
            simulated: false,
            control_refuses: false,
            scripts: Arc::new(scripts),
            connections: Arc::new(AtomicUsize::new(0)),
            controls: Arc::default(),
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> Result<(), Response> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if presented == Some(token.as_str()) {
            return Ok(());
        }
        // A careless gateway echoing what it was given: the console must not show it.
        let error = format!("invalid token {}", presented.unwrap_or("(none)"));
        Err((
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "ok": false, "error": error })),
        )
            .into_response())
    }
}

async fn healthz(State(fake): State<Fake>) -> Response {
    axum::Json(json!({ "status": "ok", "mode": "demo", "simulated": fake.simulated }))
        .into_response()
}

async fn events(State(fake): State<Fake>, headers: HeaderMap) -> Response {
    if let Err(refused) = fake.authorized(&headers) {
        return refused;
    }
    let n = fake.connections.fetch_add(1, Ordering::SeqCst);
    let script = fake.scripts[n.min(fake.scripts.len() - 1)].clone();
    let first = futures::stream::once(async move {
        Ok::<Bytes, std::convert::Infallible>(Bytes::from(script.frames))
    });
    let body = if script.keep_open {
        Body::from_stream(futures::StreamExt::chain(first, futures::stream::pending()))
    } else {
        Body::from_stream(first)
    };
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

async fn control(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.controls.lock().unwrap().push((auth, parsed.clone()));
    if fake.control_refuses {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "ok": false, "error": "invalid token" })),
        )
            .into_response();
    }
    if let Err(refused) = fake.authorized(&headers) {
        return refused;
    }
    let message = match (parsed["action"].as_str(), parsed["provider"].as_str()) {
        (Some("trip"), Some(p)) => format!("{p}: forced open"),
        (Some(action), Some(p)) => format!("{p}: {action}"),
        (Some(action), None) => format!("{action}: accepted"),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "ok": false, "error": "bad request" })),
            )
                .into_response();
        }
    };
    axum::Json(json!({ "ok": true, "message": message })).into_response()
}

/// Serve the fake on an ephemeral loopback port; its base URL.
async fn serve(fake: Fake) -> String {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/events", get(events))
        .route("/control", post(control))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// One SSE frame in the gateway's format, the event built as its JSON.
fn frame(seq: u64, kind: Value) -> String {
    let mut event = kind;
    event["seq"] = json!(seq);
    event["ts"] = json!(format!("2026-03-14T12:00:{:02}.000Z", seq.min(59)));
    // Every frame must be a real `Event`.
    let _: Event = serde_json::from_value(event.clone()).expect("a valid event");
    let kind = event["type"].as_str().unwrap().to_string();
    format!("id: {seq}\nevent: {kind}\ndata: {event}\n\n")
}

fn session_started(seq: u64) -> String {
    frame(
        seq,
        json!({
            "type": "session_started",
            "format_version": 1,
            "mode": "serve",
            "providers": [
                { "name": "anthropic", "protocol": "anthropic", "model": "claude-sonnet-4-5" },
                { "name": "openai", "protocol": "openai", "model": "gpt-5" }
            ],
            "breaker_threshold": 5
        }),
    )
}

fn breaker_open(seq: u64, provider: &str) -> String {
    frame(
        seq,
        json!({
            "type": "breaker_changed", "provider": provider, "from": "closed", "to": "open",
            "reason": "5 consecutive failures", "recovery_ms": 30000
        }),
    )
}

/// A request answered by openai: started, attempt, first event, finished.
fn answered(seq: u64, id: &str) -> String {
    [
        frame(
            seq,
            json!({ "type": "request_started", "request_id": id, "source": "gateway", "chain": ["anthropic", "openai"] }),
        ),
        frame(
            seq + 1,
            json!({ "type": "attempt_started", "request_id": id, "attempt": 1, "provider": "openai", "model": "gpt-5" }),
        ),
        frame(
            seq + 2,
            json!({ "type": "first_event", "request_id": id, "attempt": 1, "provider": "openai", "latency_ms": 300 }),
        ),
        frame(
            seq + 3,
            json!({ "type": "request_finished", "request_id": id, "outcome": "ok", "provider": "openai",
                    "stop_reason": "end_turn", "total_ms": 900, "cost_usd": 0.001 }),
        ),
    ]
    .concat()
}

/// A gateway's usual opening: its session, one breaker open, one answered request.
fn opening() -> String {
    [
        session_started(1),
        breaker_open(2, "anthropic"),
        answered(3, "r1"),
    ]
    .concat()
}

fn fast() -> Options {
    Options {
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        request_timeout: Duration::from_secs(5),
        ..Options::default()
    }
}

fn key(c: char) -> KeyEvent {
    KeyEvent {
        code: KeyCode::Char(c),
        modifiers: KeyModifiers::NONE,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    }
}

fn enter() -> KeyEvent {
    KeyEvent {
        code: KeyCode::Enter,
        ..key(' ')
    }
}

/// The console attached to `url`; keep the reader while the test runs.
async fn attached(
    url: &str,
    token: Option<&str>,
) -> (App, broadcast::Receiver<Arc<Event>>, Reader) {
    let attachment = attach(url, token.map(str::to_string), fast())
        .await
        .expect("attaches");
    attachment.into_app(Ui::default(), Bindings::default())
}

/// Fold events and notes until `done` holds (failing after a generous bound, never waiting idle).
async fn until(
    app: &mut App,
    events: &mut broadcast::Receiver<Arc<Event>>,
    what: &str,
    done: impl Fn(&App) -> bool,
) {
    let waited = tokio::time::timeout(Duration::from_secs(5), async {
        while !done(app) {
            if !app.fold_next(events).await {
                break;
            }
        }
    })
    .await;
    assert!(waited.is_ok() && done(app), "waited in vain for {what}");
}

/// What the fake's `/control` received, once it has received `n` commands.
async fn controls(fake: &Fake, n: usize) -> Vec<Received> {
    for _ in 0..500 {
        let got = fake.controls.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("/control received fewer than {n} commands");
}

fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| app.draw(f)).unwrap();
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[tokio::test]
async fn events_reach_the_dashboard_and_a_trip_posts_with_the_token() {
    let fake = Fake::new(vec![Script {
        frames: opening(),
        keep_open: true,
    }]);
    let url = serve(fake.clone()).await;
    let (mut app, mut events, _reader) = attached(&url, Some(TOKEN)).await;
    until(&mut app, &mut events, "the opening events", |app| {
        app.live.totals.answered == 1
    })
    .await;
    let names: Vec<&str> = app.live.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["anthropic", "openai"]);
    assert_eq!(
        app.live.provider("anthropic").unwrap().breaker,
        BreakerState::Open
    );
    assert_eq!(app.live.events_applied, 6, "each event folded once");
    assert_eq!(app.live.requests.back().unwrap().id, "r1");

    // The header says where the console is attached, at 80×24 too.
    let port = url.rsplit(':').next().unwrap();
    for (w, h) in [(80, 24), (160, 48)] {
        let text = screen(&app, w, h);
        assert!(
            text.contains(&format!("ATTACHED 127.0.0.1:{port}")),
            "{w}×{h}:\n{text}"
        );
        assert!(!text.contains(TOKEN));
    }

    // Trip the selected provider (anthropic): `o`, then `y` to confirm.
    app.on_key(&key('o'));
    app.on_key(&key('y'));
    assert_eq!(
        app.ui.flash.as_deref(),
        Some("trip anthropic → sent"),
        "the key answers at once"
    );
    let got = controls(&fake, 1).await;
    assert_eq!(
        got[0],
        (
            Some(format!("Bearer {TOKEN}")),
            json!({ "action": "trip", "provider": "anthropic" })
        )
    );
    until(&mut app, &mut events, "the gateway's answer", |app| {
        app.ui.flash.as_deref() == Some("anthropic: forced open")
    })
    .await;

    // Reset (no confirmation) and a prompt go the same way.
    app.on_key(&key('r'));
    app.on_key(&key('i'));
    for c in "hi there".chars() {
        app.on_key(&key(c));
    }
    app.on_key(&enter());
    assert_eq!(app.ui.flash.as_deref(), Some("prompt → sent"));
    let got = controls(&fake, 3).await;
    let bodies: Vec<&Value> = got.iter().map(|(_, body)| body).collect();
    assert!(bodies.contains(&&json!({ "action": "reset", "provider": "anthropic" })));
    assert!(bodies.contains(&&json!({ "action": "prompt", "text": "hi there" })));
}

#[tokio::test]
async fn load_keys_and_faults_say_what_an_attached_console_can_do() {
    let mut fake = Fake::new(vec![Script {
        frames: opening(),
        keep_open: true,
    }]);
    let url = serve(fake.clone()).await;
    let (mut app, mut events, _reader) = attached(&url, Some(TOKEN)).await;
    until(&mut app, &mut events, "the opening events", |app| {
        app.live.providers.len() == 2
    })
    .await;
    assert_eq!(app.load(), None);
    for c in ['l', '+', '-'] {
        app.on_key(&key(c));
        assert_eq!(
            app.ui.flash.as_deref(),
            Some("no background load on an attached console")
        );
    }
    assert!(!app.facts().faults, "the gateway has no simulator");
    app.on_key(&key('f'));
    assert_eq!(app.ui.overlay, None);
    assert!(
        app.ui
            .flash
            .as_deref()
            .unwrap()
            .contains("this gateway has none")
    );

    // A gateway with simulated providers takes faults through the picker.
    fake.simulated = true;
    let url = serve(fake.clone()).await;
    let (mut app, mut events, _reader) = attached(&url, Some(TOKEN)).await;
    until(&mut app, &mut events, "the opening events", |app| {
        app.live.providers.len() == 2
    })
    .await;
    assert!(app.facts().faults);
    app.on_key(&key('f'));
    assert!(app.ui.overlay.is_some(), "the picker opens");
    app.on_key(&enter());
    assert_eq!(
        app.ui.flash.as_deref(),
        Some("fault none on anthropic → sent")
    );
    let got = controls(&fake, 1).await;
    assert_eq!(
        got[0].1,
        json!({ "action": "set_fault", "provider": "anthropic", "fault": "none" })
    );
}

#[tokio::test]
async fn a_refused_command_reaches_the_status_bar() {
    let mut fake = Fake::new(vec![Script {
        frames: opening(),
        keep_open: true,
    }]);
    fake.control_refuses = true;
    let url = serve(fake.clone()).await;
    let (mut app, mut events, _reader) = attached(&url, Some(TOKEN)).await;
    until(&mut app, &mut events, "the opening events", |app| {
        app.live.providers.len() == 2
    })
    .await;
    app.on_key(&key('r'));
    assert_eq!(app.ui.flash.as_deref(), Some("reset anthropic → sent"));
    until(&mut app, &mut events, "the refusal", |app| {
        app.ui.flash.as_deref().is_some_and(|f| {
            f.starts_with("reset anthropic failed: the gateway refused the token (401")
        })
    })
    .await;
    assert!(!app.ui.flash.as_deref().unwrap().contains(TOKEN));
}

#[tokio::test]
async fn an_unreachable_url_is_a_clear_error() {
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let err = attach(&gone, Some(TOKEN.to_string()), fast())
        .await
        .err()
        .expect("nothing listens there")
        .to_string();
    assert!(
        err.starts_with(&format!("cannot reach the gateway at {gone}: ")),
        "{err}"
    );
    assert!(!err.contains('\n') && !err.contains(TOKEN), "{err}");
}

#[tokio::test]
async fn a_refused_token_is_a_clear_error_without_the_token() {
    let fake = Fake::new(vec![Script {
        frames: opening(),
        keep_open: true,
    }]);
    let url = serve(fake.clone()).await;

    let wrong = "wrong-token-3141592653";
    let err = attach(&url, Some(wrong.to_string()), fast())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.starts_with(&format!("{url}: the gateway refused the token (401")),
        "{err}"
    );
    assert!(!err.contains(wrong), "the token is never shown: {err}");
    assert!(err.contains("BREAKERBOX_TOKEN"), "{err}");
    assert!(!err.contains('\n'), "{err}");

    let err = attach(&url, None, fast())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("the gateway needs a token"), "{err}");
    assert_eq!(fake.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_url_that_is_not_a_gateway_is_a_clear_error() {
    let app = Router::new().route("/", get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let err = attach(&url, None, fast())
        .await
        .err()
        .expect("not a gateway")
        .to_string();
    assert_eq!(
        err,
        format!(
            "{url} does not look like a breakerbox gateway: GET /healthz answered 404 Not Found"
        )
    );
}

#[tokio::test]
async fn a_dropped_stream_reconnects_without_counting_twice() {
    // The first connection ends after the opening; the next re-sends it (as the gateway does:
    // session, snapshot, recent events) and goes on with a new request.
    let fake = Fake::new(vec![
        Script {
            frames: opening(),
            keep_open: false,
        },
        Script {
            frames: [opening(), answered(7, "r2")].concat(),
            keep_open: true,
        },
    ]);
    let url = serve(fake.clone()).await;
    // Time enough to look at the disconnected console before the reconnection.
    let options = Options {
        backoff_initial: Duration::from_millis(100),
        ..fast()
    };
    let attachment = attach(&url, Some(TOKEN.to_string()), options)
        .await
        .unwrap();
    let (mut app, mut events, _reader) = attachment.into_app(Ui::default(), Bindings::default());
    let target = url.trim_start_matches("http://").to_string();

    until(&mut app, &mut events, "the disconnection", |app| {
        matches!(
            app.ui.attached.as_ref().map(|a| a.link),
            Some(Link::Disconnected { .. })
        ) && app
            .ui
            .flash
            .as_deref()
            .is_some_and(|f| f.starts_with(&format!("disconnected from {target}, ")))
    })
    .await;
    assert!(
        app.ui
            .flash
            .as_deref()
            .unwrap()
            .ends_with("reconnecting in 100ms (the gateway closed the stream)"),
        "{:?}",
        app.ui.flash
    );
    let text = screen(&app, 80, 24);
    assert!(text.contains(&format!("DISCONNECTED {target}")), "{text}");
    let wide = screen(&app, 160, 48);
    assert!(wide.contains("reconnecting in 100ms"), "{wide}");
    assert_eq!(app.live.totals.requests, 1, "what was seen stays on screen");

    until(&mut app, &mut events, "the reconnection and r2", |app| {
        app.live.totals.answered == 2
            && app.ui.attached.as_ref().map(|a| a.link) == Some(Link::Connected)
            && app.ui.flash.as_deref() == Some(format!("reconnected to {target}").as_str())
    })
    .await;
    assert_eq!(fake.connections.load(Ordering::SeqCst), 2);
    assert_eq!(app.live.totals.requests, 2, "r1 once, r2 once");
    let ids: Vec<&str> = app.live.requests.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r1", "r2"]);
    assert_eq!(
        app.live.events_applied, 10,
        "the second stream's events, once each"
    );
    assert_eq!(
        app.live.provider("anthropic").unwrap().breaker,
        BreakerState::Open
    );
    assert!(screen(&app, 80, 24).contains(&format!("ATTACHED {target}")));
}

#[tokio::test]
async fn lost_events_are_counted() {
    let frames = [
        session_started(1),
        "event: lagged\ndata: {\"missed\": 42}\n\n".to_string(),
        ": keepalive\n\n".to_string(),
        answered(50, "r9"),
    ]
    .concat();
    let fake = Fake::new(vec![Script {
        frames,
        keep_open: true,
    }]);
    let url = serve(fake).await;
    let (mut app, mut events, _reader) = attached(&url, Some(TOKEN)).await;
    until(&mut app, &mut events, "the events after the gap", |app| {
        app.live.totals.answered == 1 && app.live.events_missed == 42
    })
    .await;
    assert_eq!(app.live.requests.back().unwrap().id, "r9");
}

/// A fleet of `fakes` named a, b, c, …, attached with `options` and the test token.
async fn fleet(
    urls: &[String],
    options: Options,
) -> (App, broadcast::Receiver<Arc<Event>>, Reader) {
    let specs = urls
        .iter()
        .zip(["a", "b", "c", "d"])
        .map(|(url, name)| {
            let mut spec = MemberSpec::parse(&format!("{name}={url}")).expect("a member");
            spec.token = Some(TOKEN.to_string());
            spec
        })
        .collect();
    attach_fleet(specs, options)
        .await
        .expect("attaches to the fleet")
        .into_app(Ui::default(), Bindings::default())
}

fn fleet_options() -> Options {
    Options {
        merge_window: Duration::from_millis(50),
        ..fast()
    }
}

fn kept(frames: String) -> Fake {
    Fake::new(vec![Script {
        frames,
        keep_open: true,
    }])
}

fn members_up(app: &App) -> usize {
    app.live.gateways.as_deref().map_or(0, |f| f.up())
}

#[tokio::test]
async fn a_fleet_console_merges_three_gateways() {
    // a and b have anthropic's breaker open, c does not; their requests interleave in time.
    let a = kept(
        [
            session_started(1),
            breaker_open(2, "anthropic"),
            answered(10, "r1"),
        ]
        .concat(),
    );
    let b = kept(
        [
            session_started(1),
            breaker_open(3, "anthropic"),
            answered(20, "r1"),
        ]
        .concat(),
    );
    let c = kept([session_started(1), answered(5, "r1")].concat());
    let urls = vec![
        serve(a.clone()).await,
        serve(b.clone()).await,
        serve(c.clone()).await,
    ];
    let (mut app, mut events, _reader) = fleet(&urls, fleet_options()).await;
    until(&mut app, &mut events, "every member's requests", |app| {
        app.live.totals.answered == 3 && members_up(app) == 3
    })
    .await;

    // Each provider's row: the most severe of the members' breakers, and how many are in it.
    let fleet = app.live.gateways.as_deref().unwrap();
    assert_eq!(
        fleet.breaker("anthropic"),
        Some(FleetBreaker {
            state: BreakerState::Open,
            in_state: 2,
            of: 3
        })
    );
    assert_eq!(
        app.live.provider("anthropic").unwrap().breaker,
        BreakerState::Open
    );
    assert_eq!(
        app.live.provider("anthropic").unwrap().breaker_reason,
        "a: 5 consecutive failures"
    );
    // Each member's own part.
    let states: Vec<(&str, BreakerState)> = fleet
        .members
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                m.dash.provider("anthropic").unwrap().breaker,
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("a", BreakerState::Open),
            ("b", BreakerState::Open),
            ("c", BreakerState::Closed)
        ]
    );
    // Traffic adds up: openai answered all three.
    let openai = app.live.provider("openai").unwrap();
    assert_eq!((openai.attempts, openai.successes), (3, 3));
    assert_eq!(
        fleet
            .members
            .iter()
            .map(|m| m.dash.totals.answered)
            .sum::<u64>(),
        3
    );

    // Requests keep their gateway's name; the log is in time order and names every member.
    let mut ids: Vec<&str> = app.live.requests.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["c/r1", "a/r1", "b/r1"], "in the order they started");
    ids.sort_unstable();
    let times: Vec<_> = app.live.log.iter().map(|l| l.at).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let texts: Vec<&str> = app.live.log.iter().map(|l| l.text.as_str()).collect();
    for name in ["a", "b", "c"] {
        assert!(
            texts.iter().any(|t| t.starts_with(&format!("{name}/r1 "))),
            "{texts:?}"
        );
    }
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("a: ") && t.contains("anthropic")),
        "{texts:?}"
    );
    let seqs: Vec<u64> = app.live.log.iter().map(|l| l.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "the fleet's own seq");

    let text = screen(&app, 160, 48);
    assert!(text.contains("FLEET 3/3 up"), "{text}");
    assert!(text.contains("OPEN 2/3"), "{text}");
    assert!(text.contains("closed 3/3"), "{text}");
    assert!(text.contains("c/r1"), "{text}");
    assert!(!text.contains(TOKEN));
    let small = screen(&app, 80, 24);
    assert!(small.contains("FLEET 3/3 up"), "{small}");

    // Enter on anthropic: each gateway's breaker.
    app.on_key(&enter());
    let detail = screen(&app, 160, 48);
    assert!(detail.contains("Gateways (3 of 3 up"), "{detail}");
    let line_of = |name: &str| {
        detail
            .lines()
            .find(|l| l.contains(&format!("┃ {name}               ")))
            .unwrap_or_else(|| panic!("no line for {name}:\n{detail}"))
            .to_string()
    };
    assert!(line_of("a").contains("OPEN") && line_of("a").contains("5 consecutive failures"));
    assert!(line_of("b").contains("OPEN"));
    assert!(line_of("c").contains("closed") && line_of("c").contains("0 of 5 fails"));
    app.on_key(&KeyEvent {
        code: KeyCode::Esc,
        ..key(' ')
    });

    // A trip goes to every member, with the token; the status bar says how many took it.
    app.on_key(&key('o'));
    app.on_key(&key('y'));
    assert_eq!(
        app.ui.flash.as_deref(),
        Some("trip anthropic → sent to 3 gateways")
    );
    for fake in [&a, &b, &c] {
        let got = controls(fake, 1).await;
        assert_eq!(
            got,
            [(
                Some(format!("Bearer {TOKEN}")),
                json!({ "action": "trip", "provider": "anthropic" })
            )]
        );
    }
    until(&mut app, &mut events, "every member's answer", |app| {
        app.ui.flash.as_deref() == Some("trip anthropic: 3/3 gateways took it")
    })
    .await;

    // A prompt is one request: it goes to one member.
    app.on_key(&key('i'));
    for ch in "hi".chars() {
        app.on_key(&key(ch));
    }
    app.on_key(&enter());
    assert_eq!(app.ui.flash.as_deref(), Some("prompt → sent to a"));
    let got = controls(&a, 2).await;
    assert_eq!(got[1].1, json!({ "action": "prompt", "text": "hi" }));
    assert_eq!(b.controls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_member_down_is_shown_and_the_others_keep_working() {
    // a drops its stream once and comes back with one request more; b carries on; c refuses
    // connections; d accepts them and never answers.
    let a = Fake::new(vec![
        Script {
            frames: opening(),
            keep_open: false,
        },
        Script {
            frames: [opening(), answered(30, "r2")].concat(),
            keep_open: true,
        },
    ]);
    let b = kept([session_started(1), answered(20, "r1")].concat());
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let urls = vec![
        serve(a.clone()).await,
        serve(b.clone()).await,
        refused.clone(),
        silent_url,
    ];
    let options = Options {
        request_timeout: Duration::from_millis(500),
        ..fleet_options()
    };
    let started = std::time::Instant::now();
    let (mut app, mut events, _reader) = fleet(&urls, options).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a silent member holds up the start no longer than the request limit"
    );
    until(
        &mut app,
        &mut events,
        "a's reconnection and the others' requests",
        |app| app.live.totals.answered == 3 && members_up(app) == 2,
    )
    .await;
    assert_eq!(a.connections.load(Ordering::SeqCst), 2);
    assert_eq!(app.live.totals.requests, 3, "a/r1 once, a/r2, b/r1");
    let mut ids: Vec<&str> = app.live.requests.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["a/r1", "a/r2", "b/r1"]);
    let a_dash = &app.live.gateways.as_deref().unwrap().members[0].dash;
    assert_eq!(a_dash.totals.requests, 2, "a's own view, once each");

    let fleet = app.live.gateways.as_deref().unwrap();
    let links: Vec<bool> = fleet.members.iter().map(|m| m.link.is_up()).collect();
    assert_eq!(links, [true, true, false, false]);
    let MemberLink::Down { why, .. } = &fleet.members[2].link else {
        panic!("c is down");
    };
    assert!(why.contains("cannot reach"), "{why}");
    let MemberLink::Down { why, .. } = &fleet.members[3].link else {
        panic!("d is down");
    };
    assert!(why.contains("timed out"), "{why}");
    // The down members are not counted in the rows: b's and a's breakers only.
    assert_eq!(
        fleet
            .breaker("anthropic")
            .map(|b| (b.state, b.in_state, b.of)),
        Some((BreakerState::Open, 1, 2))
    );
    let text = screen(&app, 160, 48);
    assert!(text.contains("FLEET 2/4 up"), "{text}");
    assert!(text.contains("down: c, d"), "{text}");
    assert!(!text.contains(TOKEN));
    assert!(
        app.live.clock_held.is_none(),
        "the others keep the clock going"
    );

    // A command reaches those that are up and says which could not take it.
    app.on_key(&key('r'));
    assert_eq!(
        app.ui.flash.as_deref(),
        Some("reset anthropic → sent to 4 gateways")
    );
    until(&mut app, &mut events, "the results", |app| {
        app.ui.flash.as_deref().is_some_and(|f| {
            f.starts_with("reset anthropic: 2/4 gateways took it; c failed: cannot reach ")
        })
    })
    .await;
    let flash = app.ui.flash.clone().unwrap();
    assert!(
        flash.contains("; d failed: cannot reach ") && flash.ends_with("timed out"),
        "{flash}"
    );
    assert!(!flash.contains(TOKEN));
    assert_eq!(controls(&a, 1).await.len(), 1);
    assert_eq!(controls(&b, 1).await.len(), 1);
    drop(silent);
}

#[tokio::test]
async fn a_fleet_none_of_whose_members_answers_is_a_clear_error() {
    let gone = || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let specs = vec![
        MemberSpec::parse(&format!("a={}", gone())).unwrap(),
        MemberSpec::parse(&gone()).unwrap(),
    ];
    let err = attach_fleet(specs, fast())
        .await
        .err()
        .expect("nobody answers")
        .to_string();
    assert!(
        err.starts_with(
            "no gateway of the fleet answered: a: cannot reach the gateway at http://127.0.0.1:"
        ),
        "{err}"
    );
    assert!(
        err.contains("; 127.0.0.1:"),
        "the second by its host:port: {err}"
    );
    assert!(!err.contains('\n'), "{err}");
}
