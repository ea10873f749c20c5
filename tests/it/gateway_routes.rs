//! Routing by the model name a client sends: without a config any name is routed (a target of the
//! client's protocol asks for that very model, the others for their own); routes may be patterns;
//! a route of the exact name wins over a pattern; `GET /v1/models` lists what is routable.

use crate::support::demo_config::FAST_SIM;
use breakerbox::config::Config;
use breakerbox::event::EventKind;
use breakerbox::gateway;
use serde_json::{Value, json};

/// Nothing retried, the simulated providers at zero latency.
fn sim() -> String {
    format!("[retry]\nmax_retries = 0\n{FAST_SIM}")
}

/// The models the attempts of the next request asked for, in order, and the reply's status.
async fn asked(
    config: &str,
    faults: &[&str],
    path: &str,
    body: Value,
) -> (u16, Vec<(String, String)>) {
    let config = Config::parse(config, "routes.toml").unwrap();
    let faults: Vec<String> = faults.iter().map(|f| f.to_string()).collect();
    let (gw, _sim, bus) = gateway::start_demo(&config, &faults, None).await.unwrap();
    let mut events = bus.subscribe();
    let reply = reqwest::Client::new()
        .post(format!("http://{}{path}", gw.addr))
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let _ = reply.bytes().await;
    let mut attempts = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let EventKind::AttemptStarted {
            provider, model, ..
        } = &event.kind
        {
            attempts.push((provider.clone(), model.clone()));
        }
    }
    (status, attempts)
}

fn anthropic_body(model: &str) -> Value {
    json!({"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
}

fn openai_body(model: &str) -> Value {
    json!({"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
}

fn pair(provider: &str, model: &str) -> (String, String) {
    (provider.to_string(), model.to_string())
}

#[tokio::test]
async fn without_routes_any_model_name_is_routed_as_requested_on_its_own_protocol() {
    // An Anthropic client naming its own model: the Anthropic target asks for it.
    let (status, attempts) = asked(
        &sim(),
        &[],
        "/v1/messages",
        anthropic_body("claude-haiku-4-5"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(attempts, [pair("anthropic", "claude-haiku-4-5")]);
    // Failing over to OpenAI: that target asks for its configured model, not Anthropic's name.
    let (status, attempts) = asked(
        &sim(),
        &["anthropic=overloaded"],
        "/v1/messages",
        anthropic_body("claude-haiku-4-5"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        attempts,
        [
            pair("anthropic", "claude-haiku-4-5"),
            pair("openai", "gpt-6.2-sol")
        ]
    );
    // An OpenAI client: Anthropic (first in the chain) asks for its own model, OpenAI for the name sent.
    let (status, attempts) = asked(
        &sim(),
        &["anthropic=overloaded"],
        "/v1/chat/completions",
        openai_body("gpt-5-mini"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        attempts,
        [
            pair("anthropic", "claude-sonnet-5-5"),
            pair("openai", "gpt-5-mini")
        ]
    );
    // `default` means the route, not a model: every target asks for its own.
    let (_, attempts) = asked(&sim(), &[], "/v1/messages", anthropic_body("default")).await;
    assert_eq!(attempts, [pair("anthropic", "claude-sonnet-5-5")]);
}

#[tokio::test]
async fn patterns_route_and_an_exact_name_wins() {
    let config = format!(
        "{}\n\
         [[chains]]\nname = \"openai-first\"\ntargets = [\"openai\", \"anthropic\"]\n\n\
         [[chains]]\nname = \"pinned\"\ntargets = [{{ provider = \"anthropic\", model = \"claude-opus-4-1\" }}]\n\n\
         [[routes]]\nmodel = \"claude-opus-4-1\"\nchain = \"pinned\"\n\n\
         [[routes]]\nmodel = \"gpt-*\"\nchain = \"openai-first\"\n\n\
         [[routes]]\nmodel = \"*\"\n",
        sim()
    );
    let (_, attempts) = asked(&config, &[], "/v1/chat/completions", openai_body("gpt-4.1")).await;
    assert_eq!(
        attempts,
        [pair("openai", "gpt-4.1")],
        "gpt-* picks its chain"
    );
    let (_, attempts) = asked(
        &config,
        &[],
        "/v1/messages",
        anthropic_body("claude-opus-4-1"),
    )
    .await;
    assert_eq!(
        attempts,
        [pair("anthropic", "claude-opus-4-1")],
        "the exact route"
    );
    let (_, attempts) = asked(
        &config,
        &[],
        "/v1/messages",
        anthropic_body("claude-haiku-4-5"),
    )
    .await;
    assert_eq!(
        attempts,
        [pair("anthropic", "claude-haiku-4-5")],
        "the catch-all"
    );
    // Without a catch-all, an unmatched name is a 404 naming the routes.
    let narrow = config.replace("[[routes]]\nmodel = \"*\"\n", "");
    let (status, attempts) = asked(&narrow, &[], "/v1/messages", anthropic_body("mistral")).await;
    assert_eq!((status, attempts.len()), (404, 0));
}

#[tokio::test]
async fn the_models_list_says_what_is_routable() {
    let config = Config::parse(&sim(), "routes.toml").unwrap();
    let (gw, _sim, _bus) = gateway::start_demo(&config, &[], None).await.unwrap();
    let list: Value = reqwest::get(format!("http://{}/v1/models", gw.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["default", "claude-sonnet-5-5", "gpt-6.2-sol"]);
}

/// `POST /v1/messages/count_tokens` against a gateway: the count of the route's Anthropic target,
/// the estimate (marked) when that target cannot answer.
async fn count(faults: &[&str]) -> (u16, Option<String>, Value) {
    let config = Config::parse(&sim(), "routes.toml").unwrap();
    let faults: Vec<String> = faults.iter().map(|f| f.to_string()).collect();
    let (gw, _sim, _bus) = gateway::start_demo(&config, &faults, None).await.unwrap();
    let reply = reqwest::Client::new()
        .post(format!("http://{}/v1/messages/count_tokens", gw.addr))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({
            "model": "claude-haiku-4-5",
            "system": "You are terse.",
            "messages": [{"role": "user", "content": "How many tokens is this?"}],
        }))
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let estimate = reply
        .headers()
        .get("breakerbox-estimate")
        .map(|v| v.to_str().unwrap().to_string());
    (status, estimate, reply.json().await.unwrap())
}

#[tokio::test]
async fn count_tokens_asks_an_anthropic_target_or_says_it_estimated() {
    let (status, estimate, body) = count(&[]).await;
    assert_eq!(status, 200);
    assert_eq!(estimate, None, "the simulator counted: {body}");
    let counted = body["input_tokens"].as_u64().unwrap();
    assert!(counted > 3, "{body}");
    // The Anthropic target overloaded: an estimate, said to be one.
    let (status, estimate, body) = count(&["anthropic=overloaded"]).await;
    assert_eq!(status, 200);
    assert_eq!(estimate.as_deref(), Some("true"));
    assert!(body["input_tokens"].as_u64().unwrap() > 0, "{body}");
}
