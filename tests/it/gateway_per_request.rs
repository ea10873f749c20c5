//! Per-request control through the gateway, over real sockets: a request picks its chain
//! (`x-breakerbox-chain`) or turns failover off (`x-breakerbox-failover: off`), the reply says who
//! answered and after what (`x-breakerbox-provider`, `-model`, `-attempts`, `-failed-over`), the
//! gateway's headers never reach an upstream, and a reply spliced from two targets reports the
//! model that finished it and the usage of every part the client got.

use crate::support::demo_config::paced_sim;
use crate::support::upstream::Upstream;
use breakerbox::config::Config;
use breakerbox::event::{Bus, Event, EventKind};
use breakerbox::gateway::{self, server::Running};
use breakerbox::sim::Simulator;
use serde_json::{Value, json};
use std::sync::Arc;

/// No retries, and a third simulated provider with chains to pick from. The timeouts are long
/// enough that a core stalled by other tests never turns a healthy reply into a failover.
const CONFIG: &str = r#"
[timeouts]
headers = "5s"
first_event = "5s"
idle = "5s"

[retry]
max_retries = 0
min_delay = "5ms"
max_delay = "10ms"

[sim]
seed = 7

[[sim.providers]]
name = "claude-backup"
protocol = "anthropic"
model = "claude-haiku-4-5"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0

[[chains]]
name = "default"
targets = ["anthropic", "openai"]

[[chains]]
name = "backup"
targets = ["claude-backup", "openai"]
"#;

/// The model a simulated provider of the demo config serves (the built-in defaults move with the
/// providers' model lists).
fn model_of(provider: &str) -> String {
    let text = format!("{}\n{CONFIG}", paced_sim());
    let config = Config::parse(&text, "per-request.toml").unwrap();
    config
        .sim
        .providers
        .into_iter()
        .find(|p| p.name == provider)
        .and_then(|p| p.model)
        .unwrap_or_else(|| panic!("no model for simulated provider {provider}"))
}

struct Gw {
    running: Option<Running>,
    sim: Arc<Simulator>,
    bus: Bus,
    base: String,
}

impl Gw {
    async fn start(extra: &str, faults: &[&str]) -> Gw {
        let text = format!("{}\n{CONFIG}\n{extra}", paced_sim());
        let config = Config::parse(&text, "per-request.toml").unwrap();
        let faults: Vec<String> = faults.iter().map(|f| f.to_string()).collect();
        let (running, sim, bus) = gateway::start_demo(&config, &faults, None).await.unwrap();
        let base = format!("http://{}", running.addr);
        Gw {
            running: Some(running),
            sim,
            bus,
            base,
        }
    }

    async fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// The providers the simulator was asked, in order.
    fn asked(&self) -> Vec<String> {
        self.sim
            .recent_requests(50)
            .into_iter()
            .map(|r| r.provider)
            .collect()
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// The events published so far that `rx` has not seen.
fn drain(rx: &mut tokio::sync::broadcast::Receiver<Arc<Event>>) -> Vec<EventKind> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .map(|e| e.kind.clone())
        .collect()
}

/// The `x-breakerbox-` reply headers: provider, model, attempts, failed-over ("-" if absent).
fn answered(response: &reqwest::Response) -> [String; 4] {
    ["provider", "model", "attempts", "failed-over"].map(|h| {
        response
            .headers()
            .get(format!("x-breakerbox-{h}"))
            .map_or("-".to_string(), |v| v.to_str().unwrap().to_string())
    })
}

fn strings(values: [&str; 4]) -> [String; 4] {
    values.map(str::to_string)
}

fn anthropic_body(stream: bool) -> Value {
    json!({"model": "default", "max_tokens": 200, "stream": stream,
           "messages": [{"role": "user", "content": "Why is the sky blue?"}]})
}

fn openai_body(stream: bool) -> Value {
    json!({"model": "default", "stream": stream, "stream_options": {"include_usage": true},
           "messages": [{"role": "user", "content": "Why is the sky blue?"}]})
}

/// Every way in: each protocol, streaming and not.
fn every_way_in() -> Vec<(&'static str, Value)> {
    vec![
        ("/v1/messages", anthropic_body(false)),
        ("/v1/messages", anthropic_body(true)),
        ("/v1/chat/completions", openai_body(false)),
        ("/v1/chat/completions", openai_body(true)),
    ]
}

/// A whole reply came back (the body read to its end), in whichever protocol and form.
fn complete(path: &str, stream: bool, text: &str) -> bool {
    match (path, stream) {
        ("/v1/messages", true) => text.contains("event: message_stop"),
        ("/v1/messages", false) => text.contains("\"type\":\"message\""),
        (_, true) => text.contains("data: [DONE]"),
        (_, false) => text.contains("\"chat.completion\""),
    }
}

#[tokio::test]
async fn the_reply_headers_name_who_answered_with_and_without_a_failover() {
    for (faults, want) in [
        (
            vec![],
            strings(["anthropic", &model_of("anthropic"), "1", "false"]),
        ),
        (
            vec!["anthropic=server_error"],
            strings(["openai", &model_of("openai"), "2", "true"]),
        ),
    ] {
        let gw = Gw::start("", &faults).await;
        for (path, body) in every_way_in() {
            let response = gw.post(path, &body, &[]).await;
            assert_eq!(response.status(), 200, "{path} {faults:?}");
            let seen = answered(&response);
            let text = response.text().await.unwrap();
            assert!(complete(path, body["stream"] == true, &text), "{text}");
            assert_eq!(seen, want, "{path} stream={} {faults:?}", body["stream"]);
        }
        gw.stop().await;
    }
}

#[tokio::test]
async fn a_request_header_picks_the_chain_it_goes_down() {
    let gw = Gw::start("", &[]).await;
    let mut rx = gw.bus.subscribe();
    for (path, body) in every_way_in() {
        let before = gw.asked().len();
        let response = gw
            .post(path, &body, &[("x-breakerbox-chain", "backup")])
            .await;
        assert_eq!(response.status(), 200);
        let seen = answered(&response);
        let text = response.text().await.unwrap();
        assert!(complete(path, body["stream"] == true, &text), "{text}");
        assert_eq!(
            seen,
            strings(["claude-backup", "claude-haiku-4-5", "1", "false"]),
            "{path} stream={}",
            body["stream"]
        );
        assert_eq!(gw.asked()[before..], ["claude-backup"], "{path}");
    }
    // Recorded: the chain the request named, and the chain's targets.
    let started: Vec<(Vec<String>, Option<String>, Option<bool>)> = drain(&mut rx)
        .into_iter()
        .filter_map(|kind| match kind {
            EventKind::RequestStarted {
                chain,
                chain_name,
                failover,
                ..
            } => Some((chain, chain_name, failover)),
            _ => None,
        })
        .collect();
    let want = (
        vec!["claude-backup".to_string(), "openai".to_string()],
        Some("backup".to_string()),
        None,
    );
    assert_eq!(started, vec![want; 4]);
    // Without the header, the route's chain.
    let response = gw.post("/v1/messages", &anthropic_body(false), &[]).await;
    assert_eq!(answered(&response)[0], "anthropic");
    gw.stop().await;
}

#[tokio::test]
async fn an_unknown_chain_or_a_bad_failover_value_is_a_400_in_the_clients_shape() {
    let gw = Gw::start("", &[]).await;
    let cases = [
        ("x-breakerbox-chain", "nope", "no chain is named `nope`"),
        ("x-breakerbox-failover", "maybe", "neither `on` nor `off`"),
    ];
    for (header, value, says) in cases {
        for (path, body) in every_way_in() {
            let response = gw.post(path, &body, &[(header, value)]).await;
            assert_eq!(response.status(), 400, "{path} {header}");
            let error: Value = response.json().await.unwrap();
            let message = error["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(header) && message.contains(says),
                "{message}"
            );
            if path == "/v1/messages" {
                assert_eq!(error["type"], "error");
                assert_eq!(error["error"]["type"], "invalid_request_error");
            } else {
                assert_eq!(error["error"]["type"], "invalid_request_error");
                assert_eq!(error["error"]["param"], header);
            }
            if header == "x-breakerbox-chain" {
                assert!(
                    message.contains("the chains are: default, backup"),
                    "{message}"
                );
            }
        }
    }
    assert!(
        gw.asked().is_empty(),
        "nothing went upstream: {:?}",
        gw.asked()
    );
    gw.stop().await;
}

#[tokio::test]
async fn with_failover_off_a_failing_primary_gives_the_client_its_own_error() {
    let gw = Gw::start("", &["anthropic=server_error"]).await;
    let mut rx = gw.bus.subscribe();
    for (path, body) in every_way_in() {
        let before = gw.asked().len();
        let response = gw
            .post(path, &body, &[("x-breakerbox-failover", "off")])
            .await;
        // The primary's 500, as the client's protocol says a server error; nothing else tried.
        assert_eq!(response.status(), 502, "{path} stream={}", body["stream"]);
        assert_eq!(
            answered(&response),
            strings(["anthropic", "-", "1", "false"]),
            "{path}"
        );
        let error: Value = response.json().await.unwrap();
        let kind = &error["error"]["type"];
        assert!(kind == "api_error" || kind == "server_error", "{error}");
        assert_eq!(gw.asked()[before..], ["anthropic"], "{path}");
    }
    let started: Vec<(Vec<String>, Option<bool>)> = drain(&mut rx)
        .into_iter()
        .filter_map(|kind| match kind {
            EventKind::RequestStarted {
                chain, failover, ..
            } => Some((chain, failover)),
            _ => None,
        })
        .collect();
    assert_eq!(
        started,
        vec![(vec!["anthropic".to_string()], Some(false)); 4]
    );
    // With it on (or without it) the same request fails over.
    let response = gw
        .post(
            "/v1/messages",
            &anthropic_body(false),
            &[("x-breakerbox-failover", "on")],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(answered(&response)[0], "openai");
    gw.stop().await;
}

/// A gateway over scripted upstreams (real providers' protocols on loopback).
async fn gateway_over(providers: &str) -> Running {
    let config = Config::parse(
        &format!("[retry]\nmax_retries = 0\n{providers}\n[[chains]]\nname = \"named\"\ntargets = [\"a\"]\n"),
        "upstream.toml",
    )
    .unwrap();
    let env = |var: &str| match var {
        "ANTHROPIC_API_KEY" | "OPENAI_API_KEY" => Some("gateway-key".to_string()),
        _ => None,
    };
    let common = breakerbox::cli::CommonArgs::default();
    let (running, _, _) = gateway::start(&common, &config, &env, None).await.unwrap();
    running
}

fn provider(name: &str, protocol: &str, url: &str) -> String {
    format!(
        "[[providers]]\nname = \"{name}\"\nprotocol = \"{protocol}\"\nmodel = \"m-{name}\"\nbase_url = \"{url}\"\n"
    )
}

const ANTHROPIC_REPLY: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m-a\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi.\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

const OPENAI_REPLY: &str = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m-a\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi.\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m-a\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m-a\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n\
data: [DONE]\n\n";

#[tokio::test]
async fn the_gateways_own_headers_never_reach_the_upstream() {
    for (protocol, reply, path, body, own) in [
        (
            "anthropic",
            ANTHROPIC_REPLY,
            "/v1/messages",
            anthropic_body(true),
            "anthropic-beta",
        ),
        (
            "openai",
            OPENAI_REPLY,
            "/v1/chat/completions",
            openai_body(true),
            "openai-beta",
        ),
    ] {
        let (url, up) = Upstream::start(&[reply.to_string()]).await;
        let base = if protocol == "openai" {
            format!("{url}/v1")
        } else {
            url
        };
        let gw = gateway_over(&provider("a", protocol, &base)).await;
        let response = reqwest::Client::new()
            .post(format!("http://{}{path}", gw.addr))
            .header("x-breakerbox-chain", "named")
            .header("x-breakerbox-failover", "on")
            .header(own, "a-beta-2025")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(answered(&response), strings(["a", "m-a", "1", "false"]));
        let text = response.text().await.unwrap();
        assert!(text.contains("Hi."), "{text}");
        let (headers, _) = up.seen().pop().unwrap();
        let ours: Vec<&str> = headers
            .keys()
            .map(|k| k.as_str())
            .filter(|k| k.starts_with("x-breakerbox"))
            .collect();
        assert!(ours.is_empty(), "{protocol}: {ours:?} went upstream");
        // The passthrough itself still works: the client's own protocol header went on.
        assert_eq!(headers[own], "a-beta-2025", "{protocol}");
        gw.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// A spliced reply (issue 14): the primary is cut after four words and the backup continues it
// ---------------------------------------------------------------------------------------------

/// `default` is anthropic then claude-backup, continuing a broken reply (`mid_stream =
/// "continue"`; live routes continue anyway).
const SPLICE: &str = r#"
[[chains]]
name = "spliced"
targets = ["anthropic", "claude-backup"]
mid_stream = "continue"

[[routes]]
model = "default"
chain = "spliced"
"#;

/// What the client's usage of a spliced reply must be, from the request's events: the input of
/// the backup (which read the conversation and the prefill) and the output of both parts, the cut
/// one counted by what it streamed — a piece a token, or four characters a token if more — since
/// its `message_start` still said 1.
fn spliced_usage(events: &[EventKind]) -> (u64, u64) {
    let mut primary_text = String::new();
    let mut primary_pieces = 0;
    let mut backup = None;
    for kind in events {
        match kind {
            EventKind::TextDelta { provider, text, .. } if provider == "anthropic" => {
                primary_text.push_str(text);
                primary_pieces += 1;
            }
            EventKind::Usage {
                provider,
                input_tokens,
                output_tokens,
                ..
            } if provider == "claude-backup" => backup = Some((*input_tokens, *output_tokens)),
            _ => {}
        }
    }
    let (input, output) = backup.expect("the backup's usage");
    let by_text = (primary_text.chars().count() as u64).div_ceil(4);
    assert_eq!(primary_pieces, 4, "cut after four words");
    (input, output + by_text.max(primary_pieces))
}

/// The `: x-breakerbox-…` comment lines of a stream.
fn comment(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with(": x-breakerbox-"))
        .collect()
}

#[tokio::test]
async fn a_spliced_reply_reports_the_model_that_finished_it_and_the_usage_of_every_part() {
    let gw = Gw::start(SPLICE, &["anthropic=stream_cut:after=4"]).await;
    let mut rx = gw.bus.subscribe();
    let finished = [
        ": x-breakerbox-provider: claude-backup",
        ": x-breakerbox-model: claude-haiku-4-5",
        ": x-breakerbox-attempts: 2",
        ": x-breakerbox-failed-over: true",
    ];

    // Anthropic, streaming: `message_start` went out from the primary, so the usage in
    // `message_delta` and the trailing comment tell the rest; the headers are as of the start.
    let response = gw.post("/v1/messages", &anthropic_body(true), &[]).await;
    let headers = answered(&response);
    assert_eq!(
        headers,
        strings(["anthropic", &model_of("anthropic"), "1", "false"])
    );
    let text = response.text().await.unwrap();
    let (input, output) = spliced_usage(&drain(&mut rx));
    let delta = data_of(&text, "message_delta");
    assert_eq!(delta["delta"]["stop_reason"], "end_turn", "{text}");
    assert_eq!(
        (
            &delta["usage"]["input_tokens"],
            &delta["usage"]["output_tokens"]
        ),
        (&json!(input), &json!(output)),
        "{text}"
    );
    assert_eq!(comment(&text), finished, "{text}");
    let comment_at = text.find(": x-breakerbox-provider").unwrap();
    assert!(comment_at < text.find("event: message_delta").unwrap());

    // OpenAI, streaming: the continuation's chunks and the usage chunk name the backup's model.
    let response = gw
        .post("/v1/chat/completions", &openai_body(true), &[])
        .await;
    let text = response.text().await.unwrap();
    let (input, output) = spliced_usage(&drain(&mut rx));
    let last = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .next_back()
        .unwrap();
    assert_eq!(last["model"], "claude-haiku-4-5", "{text}");
    assert_eq!(
        (
            &last["usage"]["prompt_tokens"],
            &last["usage"]["completion_tokens"]
        ),
        (&json!(input), &json!(output)),
        "{text}"
    );
    assert_eq!(comment(&text), finished, "{text}");

    // The Responses API, streaming: `response.completed` is the whole response.
    let body = json!({"model": "default", "stream": true, "input": "Why is the sky blue?"});
    let text = gw
        .post("/v1/responses", &body, &[])
        .await
        .text()
        .await
        .unwrap();
    let (input, output) = spliced_usage(&drain(&mut rx));
    let completed = &data_of(&text, "response.completed")["response"];
    assert_eq!(completed["model"], "claude-haiku-4-5", "{text}");
    assert_eq!(
        (
            &completed["usage"]["input_tokens"],
            &completed["usage"]["output_tokens"]
        ),
        (&json!(input), &json!(output))
    );

    // Not streaming: the whole reply, its headers exact.
    for (path, body) in [
        ("/v1/messages", anthropic_body(false)),
        ("/v1/chat/completions", openai_body(false)),
    ] {
        let response = gw.post(path, &body, &[]).await;
        assert_eq!(
            answered(&response),
            strings(["claude-backup", "claude-haiku-4-5", "2", "true"]),
            "{path}"
        );
        let reply: Value = response.json().await.unwrap();
        let (input, output) = spliced_usage(&drain(&mut rx));
        assert_eq!(reply["model"], "claude-haiku-4-5", "{reply}");
        let usage = &reply["usage"];
        let got = if path == "/v1/messages" {
            (&usage["input_tokens"], &usage["output_tokens"])
        } else {
            (&usage["prompt_tokens"], &usage["completion_tokens"])
        };
        assert_eq!(got, (&json!(input), &json!(output)), "{reply}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_buffered_spliced_stream_is_named_by_its_finisher_from_the_first_frame() {
    let extra = format!("{SPLICE}mode = \"buffered\"\n");
    let gw = Gw::start(&extra, &["anthropic=stream_cut:after=4"]).await;
    let response = gw.post("/v1/messages", &anthropic_body(true), &[]).await;
    assert_eq!(
        answered(&response),
        strings(["claude-backup", "claude-haiku-4-5", "2", "true"])
    );
    let text = response.text().await.unwrap();
    assert_eq!(
        data_of(&text, "message_start")["message"]["model"],
        "claude-haiku-4-5"
    );
    assert!(comment(&text).is_empty(), "the headers were exact: {text}");
    gw.stop().await;
}

/// The data of the first `event: NAME` frame of an SSE body.
fn data_of(text: &str, name: &str) -> Value {
    let frame = text
        .split("\n\n")
        .find(|f| f.lines().any(|l| l == format!("event: {name}")))
        .unwrap_or_else(|| panic!("no {name} in {text}"));
    let data: String = frame
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    serde_json::from_str(&data).unwrap()
}
