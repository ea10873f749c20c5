//! AWS Bedrock (Converse / ConverseStream) over real sockets: the simulator's event stream and
//! its SigV4 check, the client against every simulated fault, and failover between Claude on
//! Anthropic and Claude on Bedrock in both directions.

use crate::support::demo_config::paced_sim;
use crate::support::sim::{client, fast, start};
use breakerbox::cli::CommonArgs;
use breakerbox::config::{Config, TargetEntry};
use breakerbox::engine::failover::{FailoverEngine, RequestMeta};
use breakerbox::event::{Bus, EventKind, Outcome, Source};
use breakerbox::protocol::bedrock::{Decoder, Frame};
use breakerbox::provider::aws::{AwsAuth, AwsCredentials};
use breakerbox::provider::{
    self, ErrorClass, Protocol, ProviderConfig, ProviderError, Request, StreamEvent,
};
use breakerbox::session::setup::{self, Setup};
use breakerbox::sim::{SimConfig, Simulator};
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;

const MODEL: &str = "us.anthropic.claude-haiku-4-5-20251001-v1:0";

async fn sim() -> Simulator {
    start(SimConfig {
        providers: vec![fast("bedrock", Protocol::Bedrock)],
        seed: 7,
    })
    .await
}

fn dummy_auth() -> AwsAuth {
    AwsAuth {
        region: "us-west-2".into(),
        credentials: Some(AwsCredentials::new(
            "AKIDTEST",
            "test-secret-key-do-not-show",
            Some("test-session-token".into()),
            "test",
        )),
    }
}

fn bedrock_client(base_url: &str) -> std::sync::Arc<dyn provider::Provider> {
    let mut config = ProviderConfig::new("bedrock", Protocol::Bedrock, base_url);
    config.model = MODEL.into();
    config.aws = Some(dummy_auth());
    config.timeouts.idle = Duration::from_millis(500);
    config.timeouts.first_event = Duration::from_millis(400);
    config.timeouts.headers = Duration::from_millis(500);
    provider::build(config).unwrap()
}

/// Every item of one reply: the events, and the error that ended it (if one did).
async fn collect(
    client: &dyn provider::Provider,
    request: Request,
) -> (Vec<StreamEvent>, Option<ProviderError>) {
    let mut stream = client.stream(request);
    let mut events = Vec::new();
    while let Some(item) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the client never hangs")
    {
        match item {
            Ok(event) => events.push(event),
            Err(err) => return (events, Some(err)),
        }
    }
    (events, None)
}

fn text_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_simulator_streams_converse_in_event_stream_framing_to_signed_requests_only() {
    let sim = sim().await;
    let base = sim.base_url("bedrock").unwrap();
    let url = format!("{base}{}", breakerbox::protocol::bedrock::path(MODEL, true));
    let body = json!({"messages": [{"role": "user", "content": [{"text": "Why is the sky blue?"}]}],
                      "inferenceConfig": {"maxTokens": 64}});
    // Unsigned: Bedrock's 403, its type in the header.
    let response = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["x-amzn-errortype"]
            .to_str()
            .unwrap()
            .split(':')
            .next(),
        Some("UnrecognizedClientException")
    );
    // Signed as our client signs it: the events, framed and checksummed.
    let response = client()
        .post(&url)
        .json(&body)
        .header("authorization", "Bearer a-bedrock-api-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let bytes = response.bytes().await.unwrap();
    let mut decoder = Decoder::new(1 << 20);
    decoder.feed(&bytes);
    let mut kinds = Vec::new();
    while let Some(Frame::Event { event_type, .. }) = decoder.next_frame().unwrap() {
        kinds.push(event_type);
    }
    assert_eq!(kinds.first().map(String::as_str), Some("messageStart"));
    assert_eq!(
        &kinds[kinds.len() - 2..],
        ["messageStop".to_string(), "metadata".to_string()]
    );
    assert_eq!(decoder.pending(), 0);

    // The client: SigV4-signed, the model id in the path, usage and the stop reason read.
    let (events, err) = collect(&*bedrock_client(&base), Request::prompt("Hello")).await;
    assert!(err.is_none(), "{err:?}");
    assert!(!text_of(&events).is_empty());
    assert!(
        matches!(events.first(), Some(StreamEvent::MessageStart { model, .. }) if model == MODEL)
    );
    assert!(
        events.iter().any(
            |e| matches!(e, StreamEvent::Usage(u) if u.input_tokens > 0 && u.output_tokens > 0)
        )
    );
    assert!(matches!(
        events.last(),
        Some(StreamEvent::Done { raw_stop_reason: Some(r), .. }) if r == "end_turn"
    ));
    let log = sim.recent_requests(10);
    assert!(
        log.iter().any(|r| r.model == MODEL),
        "the model id came through the path: {log:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn every_fault_reaches_the_client_as_its_class() {
    let sim = sim().await;
    let client = bedrock_client(&sim.base_url("bedrock").unwrap());
    // (fault, class of the failure, with a stream begun)
    let table: &[(&str, Option<ErrorClass>, bool)] = &[
        ("rate_limit", Some(ErrorClass::RateLimited), false),
        ("overloaded", Some(ErrorClass::Overloaded), false),
        ("server_error", Some(ErrorClass::ServerError), false),
        ("quota", Some(ErrorClass::Quota), false),
        ("auth", Some(ErrorClass::Auth), false),
        ("bad_request", Some(ErrorClass::BadRequest), false),
        ("context_length", Some(ErrorClass::ContextLength), false),
        ("content_filter", Some(ErrorClass::ContentFilter), false),
        ("reset", Some(ErrorClass::Connect), false),
        ("no_response:for=2s", Some(ErrorClass::Timeout), false),
        (
            "slow_first_event:delay=2s",
            Some(ErrorClass::Timeout),
            false,
        ),
        ("stall:after=2,for=2s", Some(ErrorClass::Stalled), true),
        ("stream_cut:after=2", Some(ErrorClass::StreamCut), true),
        (
            "mid_stream_error:after=2",
            Some(ErrorClass::Overloaded),
            true,
        ),
        (
            "mid_stream_error:after=2,type=throttlingException",
            Some(ErrorClass::RateLimited),
            true,
        ),
        (
            "mid_stream_error:after=2,type=api_error",
            Some(ErrorClass::ServerError),
            true,
        ),
        ("malformed:after=2", Some(ErrorClass::Malformed), true),
        // The metadata event lost: the reply was complete at messageStop.
        ("no_done", None, true),
    ];
    for (fault, class, streamed) in table {
        crate::support::sim::set(&sim, "bedrock", fault);
        let (events, err) = collect(&*client, Request::prompt("Tell me about breakers")).await;
        assert_eq!(err.as_ref().map(|e| e.class), *class, "{fault}: {err:?}");
        assert_eq!(!text_of(&events).is_empty(), *streamed, "{fault}");
        if let Some(err) = &err {
            // Bedrock sends no retry-after: the engine's backoff decides.
            assert_eq!(err.retry_after, None, "{fault}");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("test-secret-key") && !shown.contains("test-session-token"));
        } else {
            assert!(
                matches!(events.last(), Some(StreamEvent::Done { .. })),
                "{fault}"
            );
        }
        if *fault == "rate_limit" {
            assert_eq!(
                err.as_ref().and_then(|e| e.error_type.as_deref()),
                Some("ThrottlingException")
            );
        }
    }
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
min_delay = "10ms"
max_delay = "20ms"
jitter = false

[sim]
seed = 3

[[sim.providers]]
name = "bedrock"
protocol = "bedrock"
model = "us.anthropic.claude-sonnet-4-6"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0
"#;

/// Claude on Anthropic and Claude on Bedrock, the chain in `order`; the Bedrock target names its
/// own model id.
async fn chain(order: [&str; 2]) -> (Setup, FailoverEngine) {
    let config = Config::parse(&(CONFIG.to_string() + &paced_sim()), "test config").unwrap();
    let common = CommonArgs {
        demo: true,
        ..CommonArgs::default()
    };
    let setup = setup::build(&common, &config, Bus::new(1 << 16), &|_| None)
        .await
        .unwrap();
    let target = |name: &str| match name {
        "bedrock" => TargetEntry::Table {
            provider: "bedrock".into(),
            model: Some("us.anthropic.claude-haiku-4-5-20251001-v1:0".into()),
        },
        other => TargetEntry::Name(other.into()),
    };
    let engine = setup
        .engine_for(
            "pair",
            &[target(order[0]), target(order[1])],
            Default::default(),
            None,
        )
        .unwrap();
    (setup, engine)
}

/// One request through the engine: who answered, the failures on `failing`, whether the caller
/// saw a rewind, the models the usage was metered for.
async fn ask(
    engine: &FailoverEngine,
    failing: &str,
) -> (
    Outcome,
    Option<String>,
    Vec<String>,
    bool,
    Vec<String>,
    String,
) {
    let mut rx = engine.shared().bus.subscribe();
    let (id, mut stream) = engine.send(
        Request::prompt("Why do circuit breakers half-open?"),
        RequestMeta::new(Source::Ask),
    );
    let mut text = String::new();
    while let Some(item) = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .unwrap()
    {
        match item {
            Ok(StreamEvent::TextDelta { text: t }) => text.push_str(&t),
            Ok(StreamEvent::Rewind { .. }) => text.clear(),
            _ => {}
        }
    }
    let (mut outcome, mut who, mut failures, mut rewind, mut models) =
        (Outcome::Error, None, Vec::new(), false, Vec::new());
    while let Ok(e) = rx.try_recv() {
        match &e.kind {
            EventKind::AttemptFailed {
                request_id,
                provider,
                class,
                ..
            } if *request_id == id && provider == failing => failures.push(class.to_string()),
            EventKind::Rewind { request_id, .. } if *request_id == id => rewind = true,
            EventKind::Usage {
                request_id, model, ..
            } if *request_id == id => models.push(model.clone()),
            EventKind::RequestFinished {
                request_id,
                outcome: o,
                provider,
                ..
            } if *request_id == id => {
                outcome = *o;
                who = provider.clone();
            }
            _ => {}
        }
    }
    (outcome, who, failures, rewind, models, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_on_bedrock_backs_up_claude_on_anthropic_and_the_other_way_round() {
    for (order, failing) in [
        (["anthropic", "bedrock"], "anthropic"),
        (["bedrock", "anthropic"], "bedrock"),
    ] {
        let fallback = order[1];
        // Healthy: the primary answers.
        let (setup, engine) = chain(order).await;
        let (outcome, who, failures, _, models, text) = ask(&engine, failing).await;
        assert_eq!((outcome, who.as_deref()), (Outcome::Ok, Some(failing)));
        assert!(failures.is_empty() && !text.is_empty());
        if failing == "bedrock" {
            assert_eq!(models, ["us.anthropic.claude-haiku-4-5-20251001-v1:0"]);
        }
        setup.sim.unwrap().shutdown().await;
        for (fault, class, rewind) in [
            ("rate_limit:retry_after=2s", "rate_limited", false),
            ("overloaded", "overloaded", false),
            ("auth", "auth", false),
            ("stream_cut:after=3", "stream_cut", true),
            ("mid_stream_error:after=3", "overloaded", true),
            ("malformed:after=3", "malformed", true),
        ] {
            let (setup, engine) = chain(order).await;
            let sim = setup.sim.as_ref().unwrap();
            sim.set_fault(failing, fault.parse().unwrap()).unwrap();
            let (outcome, who, failures, rewound, models, text) = ask(&engine, failing).await;
            assert_eq!(failures, [class], "{failing}: {fault}");
            assert_eq!(
                (outcome, who.as_deref()),
                (Outcome::Ok, Some(fallback)),
                "{failing}: {fault}"
            );
            assert_eq!(rewound, rewind, "{failing}: {fault}");
            assert!(!text.is_empty(), "{failing}: {fault}");
            if fallback == "bedrock" {
                assert!(
                    models.contains(&"us.anthropic.claude-haiku-4-5-20251001-v1:0".to_string()),
                    "the chain target's own model id: {models:?}"
                );
            }
            setup.sim.unwrap().shutdown().await;
        }
    }
}

#[test]
fn a_bedrock_provider_takes_its_region_profile_and_endpoint_from_the_config() {
    let text = r#"
[[providers]]
name = "claude-bedrock"
protocol = "bedrock"
model = "us.anthropic.claude-sonnet-4-6"
region = "eu-west-3"
"#;
    let config = Config::parse(text, "test config").unwrap();
    let entry = &config.providers[0];
    let none = |_: &str| None;
    assert_eq!(entry.missing_key(&none), Some("AWS_BEARER_TOKEN_BEDROCK"));
    let env = |k: &str| match k {
        "AWS_ACCESS_KEY_ID" => Some("AKIDENV".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("envsecret".to_string()),
        _ => None,
    };
    assert_eq!(entry.missing_key(&env), None);
    let resolved = entry.resolve(Default::default(), &env);
    assert_eq!(
        resolved.base_url,
        "https://bedrock-runtime.eu-west-3.amazonaws.com"
    );
    let aws = resolved.aws.unwrap();
    assert_eq!(aws.region, "eu-west-3");
    assert_eq!(aws.credentials.unwrap().access_key_id, "AKIDENV");
    let token = |k: &str| (k == "AWS_BEARER_TOKEN_BEDROCK").then(|| "bedrock-api-key".to_string());
    assert_eq!(entry.missing_key(&token), None);
    assert!(Config::parse(&text.replace("eu-west-3", "x\"\nregionn = \"y"), "t").is_err());
}

#[test]
fn claude_on_bedrock_is_priced_by_its_model_id_and_inference_profile() {
    let pricing = breakerbox::engine::cost::Pricing::built_in();
    for id in [
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
    ] {
        let price = pricing
            .price(id)
            .unwrap_or_else(|| panic!("{id} is priced"));
        assert_eq!((price.input, price.output), (1.0, 5.0), "{id}");
    }
    assert_eq!(
        pricing
            .price("us.anthropic.claude-sonnet-4-6")
            .unwrap()
            .input,
        3.0
    );
    // Another model, not an older one's price; a prefix that is no geography is not stripped.
    assert!(pricing.price("us.anthropic.claude-sonnet-4-7").is_none());
    assert!(pricing.price("xx.anthropic.claude-sonnet-4-6").is_none());
}
