//! Azure OpenAI over real sockets: the client against the simulator's two paths and every fault in
//! Azure's shapes, failover from an Azure primary to Anthropic and back, and the gateway's Azure
//! paths (a deployment's name picking the route, `api-key` as the gateway's token, an Azure target
//! passed through, other protocols' clients translated to an Azure target).

use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

use crate::support::sim::{self, paced};
use breakerbox::cli::CommonArgs;
use breakerbox::config::{Config, TargetEntry};
use breakerbox::engine::failover::{FailoverEngine, RequestMeta};
use breakerbox::event::{Bus, EventKind, Outcome, Source};
use breakerbox::provider::azure::{Auth, Settings};
use breakerbox::provider::{
    self, ApiKey, ErrorClass, Phase, Protocol, ProviderConfig, ProviderError, Request, StopReason,
    StreamEvent, Timeouts,
};
use breakerbox::session::setup::{self, Setup};
use breakerbox::sim::{SimConfig, Simulator};

const SHORT: Duration = Duration::from_millis(400);

async fn azure_sim() -> Simulator {
    sim::start(SimConfig {
        providers: vec![
            paced("azure", Protocol::Azure),
            paced("anthropic", Protocol::Anthropic),
        ],
        seed: 7,
    })
    .await
}

fn client(
    sim: &Simulator,
    key: &str,
    settings: Settings,
) -> std::sync::Arc<dyn provider::Provider> {
    let mut cfg = ProviderConfig::new("azure", Protocol::Azure, sim.base_url("azure").unwrap());
    cfg.api_key = ApiKey::new(key);
    cfg.model = "prod-4o".into();
    cfg.azure = settings;
    cfg.timeouts = Timeouts {
        connect: SHORT,
        headers: SHORT,
        first_event: SHORT,
        idle: SHORT,
        total: Duration::from_secs(10),
    };
    provider::build(cfg).unwrap()
}

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

fn started_model(events: &[StreamEvent]) -> Option<(String, String)> {
    events.iter().find_map(|e| match e {
        StreamEvent::MessageStart { id, model } => Some((id.clone(), model.clone())),
        _ => None,
    })
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

#[tokio::test]
async fn the_client_streams_from_a_deployment_and_the_v1_path_with_the_real_model() {
    let sim = azure_sim().await;
    for settings in [
        Settings::default(),
        Settings {
            api_version: "v1".into(),
            ..Settings::default()
        },
        Settings {
            auth: Auth::EntraToken,
            ..Settings::default()
        },
    ] {
        let azure = client(&sim, "az-key", settings.clone());
        let (events, err) = collect(azure.as_ref(), Request::prompt("Why is the sky blue?")).await;
        assert!(err.is_none(), "{settings:?}: {err:?}");
        // The empty first chunk (the prompt's filter results) does not start the message: the
        // next one does, with its id and the deployment's real model.
        let (id, model) = started_model(&events).expect("a message start");
        assert!(id.starts_with("chatcmpl-"), "{id}");
        assert_eq!(model, "gpt-6.2-sol", "{settings:?}");
        assert!(!text(&events).is_empty());
        assert!(
            events
                .iter()
                .any(|e| matches!(e, StreamEvent::Usage(u) if u.output_tokens > 0))
        );
        assert!(matches!(
            events.last(),
            Some(StreamEvent::Done {
                stop_reason: StopReason::EndTurn,
                ..
            })
        ));
    }
    // Without a credential Azure refuses.
    let (_, err) = collect(
        client(&sim, "", Settings::default()).as_ref(),
        Request::prompt("hi"),
    )
    .await;
    let err = err.expect("refused");
    assert_eq!((err.class, err.status), (ErrorClass::Auth, Some(401)));
    sim.shutdown().await;
}

#[tokio::test]
async fn every_fault_arrives_in_azures_shapes_and_is_classified() {
    let sim = azure_sim().await;
    let azure = client(&sim, "az-key", Settings::default());
    for (fault, class, phase, status) in [
        (
            "rate_limit:retry_after=1500ms",
            ErrorClass::RateLimited,
            Phase::Headers,
            Some(429),
        ),
        ("quota", ErrorClass::Quota, Phase::Headers, Some(429)),
        (
            "overloaded",
            ErrorClass::Overloaded,
            Phase::Headers,
            Some(503),
        ),
        (
            "server_error",
            ErrorClass::ServerError,
            Phase::Headers,
            Some(500),
        ),
        (
            "bad_request",
            ErrorClass::BadRequest,
            Phase::Headers,
            Some(400),
        ),
        (
            "context_length",
            ErrorClass::ContextLength,
            Phase::Headers,
            Some(400),
        ),
        (
            "content_filter",
            ErrorClass::ContentFilter,
            Phase::Headers,
            Some(400),
        ),
        ("auth", ErrorClass::Auth, Phase::Headers, Some(401)),
        (
            "stream_cut:after=3",
            ErrorClass::StreamCut,
            Phase::MidStream,
            None,
        ),
        (
            "mid_stream_error:after=3",
            ErrorClass::Overloaded,
            Phase::MidStream,
            None,
        ),
        (
            "malformed:after=3",
            ErrorClass::Malformed,
            Phase::MidStream,
            None,
        ),
        (
            "stall:after=3,for=2s",
            ErrorClass::Stalled,
            Phase::MidStream,
            None,
        ),
        (
            "no_response:for=2s",
            ErrorClass::Timeout,
            Phase::Headers,
            None,
        ),
        ("reset", ErrorClass::Connect, Phase::Headers, None),
    ] {
        sim::set(&sim, "azure", fault);
        let (_, err) = collect(azure.as_ref(), Request::prompt("hi")).await;
        let err = err.unwrap_or_else(|| panic!("{fault}: no error"));
        assert_eq!(
            (err.class, err.phase, err.status),
            (class, phase, status),
            "{fault}: {err}"
        );
        if fault.starts_with("rate_limit") {
            // From the milliseconds (`retry-after` alone says 2 s).
            assert_eq!(err.retry_after, Some(Duration::from_millis(1500)));
        }
        if fault == "content_filter" {
            assert_eq!(err.code.as_deref(), Some("content_filter"));
        }
    }
    // The end marker is not needed: a finish reason shows the reply was whole.
    sim::set(&sim, "azure", "no_done");
    let (events, err) = collect(azure.as_ref(), Request::prompt("hi")).await;
    assert!(err.is_none() && matches!(events.last(), Some(StreamEvent::Done { .. })));
    sim.shutdown().await;
}

const CONFIG: &str = r#"
[timeouts]
connect = "500ms"
headers = "500ms"
first_event = "500ms"
idle = "500ms"
total = "10s"

[retry]
max_retries = 0

[sim]
seed = 3

[[sim.providers]]
name = "anthropic"
protocol = "anthropic"
model = "claude-sonnet-5-5"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0

[[sim.providers]]
name = "azure"
protocol = "azure"
model = "gpt-6.2-sol"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0
"#;

async fn chain(first: &str, second: &str) -> (Setup, FailoverEngine) {
    let config = Config::parse(CONFIG, "azure test config").unwrap();
    let common = CommonArgs {
        demo: true,
        ..CommonArgs::default()
    };
    let setup = setup::build(&common, &config, Bus::new(1 << 16), &|_| None)
        .await
        .unwrap();
    let targets = [
        TargetEntry::Name(first.into()),
        TargetEntry::Name(second.into()),
    ];
    let engine = setup
        .engine_for("azure_chain", &targets, Default::default(), None)
        .unwrap();
    (setup, engine)
}

/// What a request's events say: who failed with which class, who finished it, and the model of the
/// message the caller got.
async fn ask(engine: &FailoverEngine) -> (Vec<(String, String)>, Option<String>, Option<String>) {
    let mut rx = engine.shared().bus.subscribe();
    let (id, mut stream) = engine.send(
        Request::prompt("Why do breakers trip?"),
        RequestMeta::new(Source::Ask),
    );
    let mut model = None;
    let mut complete = false;
    while let Some(item) = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("the engine never hangs")
    {
        match item {
            Ok(StreamEvent::MessageStart { model: m, .. }) => model = Some(m),
            Ok(StreamEvent::Done { .. }) => complete = true,
            Err(e) => panic!("the request failed: {e}"),
            _ => {}
        }
    }
    assert!(complete, "the caller got Done");
    let (mut failed, mut finished) = (Vec::new(), None);
    while let Ok(e) = rx.try_recv() {
        if serde_json::to_value(&*e).unwrap()["request_id"].as_str() != Some(id.as_str()) {
            continue;
        }
        match &e.kind {
            EventKind::AttemptFailed {
                provider, class, ..
            } => {
                failed.push((provider.clone(), class.to_string()));
            }
            EventKind::RequestFinished {
                outcome, provider, ..
            } => {
                assert_eq!(*outcome, Outcome::Ok);
                finished = provider.clone();
            }
            _ => {}
        }
    }
    (failed, finished, model)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_azure_primary_fails_over_to_anthropic_and_back() {
    let (setup, engine) = chain("azure", "anthropic").await;
    let (failed, finished, model) = ask(&engine).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(finished.as_deref(), Some("azure"));
    assert_eq!(model.as_deref(), Some("gpt-6.2-sol"));
    setup.sim.unwrap().shutdown().await;

    for (fault, class) in [
        ("rate_limit:retry_after=2s", "rate_limited"),
        ("overloaded", "overloaded"),
        ("stream_cut:after=3", "stream_cut"),
        ("mid_stream_error:after=3", "overloaded"),
    ] {
        let (setup, engine) = chain("azure", "anthropic").await;
        sim::set(setup.sim.as_ref().unwrap(), "azure", fault);
        let (failed, finished, model) = ask(&engine).await;
        assert_eq!(
            failed,
            [("azure".to_string(), class.to_string())],
            "{fault}"
        );
        assert_eq!(finished.as_deref(), Some("anthropic"), "{fault}");
        assert_eq!(model.as_deref(), Some("claude-sonnet-5-5"), "{fault}");
        setup.sim.unwrap().shutdown().await;
    }

    // And the reverse: Anthropic fails, Azure answers with its deployment's model.
    for fault in ["overloaded", "stream_cut:after=3"] {
        let (setup, engine) = chain("anthropic", "azure").await;
        sim::set(setup.sim.as_ref().unwrap(), "anthropic", fault);
        let (failed, finished, model) = ask(&engine).await;
        assert_eq!(failed.len(), 1, "{fault}: {failed:?}");
        assert_eq!(failed[0].0, "anthropic");
        assert_eq!(finished.as_deref(), Some("azure"), "{fault}");
        assert_eq!(model.as_deref(), Some("gpt-6.2-sol"), "{fault}");
        setup.sim.unwrap().shutdown().await;
    }
}

// ------------------------------------------------------------------------------------------------
// The gateway's Azure paths
// ------------------------------------------------------------------------------------------------

const TOKEN: &str = "gw-token-azure";

async fn gateway() -> (
    breakerbox::gateway::server::Running,
    std::sync::Arc<Simulator>,
) {
    let text = format!(
        "{CONFIG}\n[[chains]]\nname = \"az\"\ntargets = [\"azure\", \"anthropic\"]\n\n\
         [[routes]]\nmodel = \"prod-4o\"\nchain = \"az\"\n"
    );
    let config = Config::parse(&text, "azure gateway config").unwrap();
    let (running, sim, _) = breakerbox::gateway::start_demo(&config, &[], Some(TOKEN.to_string()))
        .await
        .unwrap();
    (running, sim)
}

/// The data of each SSE frame, JSON (`[DONE]` as a string).
fn frames(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|f| f.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap_or(Value::String(d.to_string())))
        .collect()
}

fn said(frames: &[Value]) -> String {
    frames
        .iter()
        .filter_map(|f| f["choices"][0]["delta"]["content"].as_str())
        .collect()
}

async fn post(
    addr: std::net::SocketAddr,
    path: &str,
    key: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = sim::client()
        .post(format!("http://{addr}{path}"))
        .json(&body);
    if let Some(key) = key {
        request = request.header("api-key", key);
    }
    request.send().await.unwrap()
}

fn chat(stream: bool) -> Value {
    json!({
        "model": "ignored-on-a-deployment-path",
        "stream": stream,
        "messages": [{"role": "user", "content": "Why is the sky blue?"}],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_speaks_azure_on_a_deployment_and_the_v1_path() {
    let (gw, sim) = gateway().await;
    let deployment = "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21";

    // No token: Azure's own 401 shape.
    let refused = post(gw.addr, deployment, None, chat(true)).await;
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "401", "{body}");

    // The deployment picks the route; the Azure target's stream comes through as Azure sent it.
    let streamed = post(gw.addr, deployment, Some(TOKEN), chat(true)).await;
    assert_eq!(streamed.status(), 200);
    let got = frames(&streamed.text().await.unwrap());
    assert_eq!(
        got[0]["id"], "",
        "the prompt's filter results first: {:?}",
        got[0]
    );
    assert!(got[0]["prompt_filter_results"].is_array());
    assert_eq!(got[1]["model"], "gpt-6.2-sol");
    assert!(!said(&got).is_empty());
    assert_eq!(got.last(), Some(&Value::String("[DONE]".into())));

    // The v1 path, whole: the body's model picks the route.
    let mut body = chat(false);
    body["model"] = json!("prod-4o");
    let whole = post(gw.addr, "/openai/v1/chat/completions", Some(TOKEN), body).await;
    assert_eq!(whole.status(), 200);
    let whole: Value = whole.json().await.unwrap();
    assert_eq!(whole["object"], "chat.completion");
    assert_eq!(whole["model"], "gpt-6.2-sol");
    assert!(whole["prompt_filter_results"].is_array(), "{whole}");
    assert!(
        whole["choices"][0]["message"]["content"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    // Azure failing: the Anthropic target answers the Azure client, translated.
    sim::set(&sim, "azure", "server_error");
    let failed_over = post(gw.addr, deployment, Some(TOKEN), chat(true)).await;
    assert_eq!(failed_over.status(), 200);
    let got = frames(&failed_over.text().await.unwrap());
    assert!(!said(&got).is_empty(), "{got:?}");
    assert_eq!(got.last(), Some(&Value::String("[DONE]".into())));

    // Every target failing: Azure's error shape, with its status.
    sim::set(&sim, "anthropic", "server_error");
    let down = post(gw.addr, deployment, Some(TOKEN), chat(false)).await;
    assert!(down.status().is_server_error());
    let body: Value = down.json().await.unwrap();
    assert!(
        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
        "{body}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_protocols_clients_reach_an_azure_target_translated() {
    let (gw, _sim) = gateway().await;
    let client = sim::client();
    let openai = client
        .post(format!("http://{}/v1/chat/completions", gw.addr))
        .bearer_auth(TOKEN)
        .json(&json!({"model": "prod-4o", "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(openai.status(), 200);
    let got = frames(&openai.text().await.unwrap());
    // Translated, not passed through: no Azure filter chunk reaches an OpenAI client.
    assert!(
        got.iter().all(|f| f.get("prompt_filter_results").is_none()),
        "{got:?}"
    );
    assert!(!said(&got).is_empty());
    let anthropic = client
        .post(format!("http://{}/v1/messages", gw.addr))
        .header("x-api-key", TOKEN)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "prod-4o", "max_tokens": 256,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 200);
    let message: Value = anthropic.json().await.unwrap();
    assert_eq!(message["type"], "message", "{message}");
    assert_eq!(message["stop_reason"], "end_turn");
    assert!(
        message["content"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    gw.stop().await;
}
