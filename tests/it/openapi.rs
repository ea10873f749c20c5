//! The OpenAPI description of the gateway's operator endpoints (docs/schema/openapi.json) against
//! a real gateway over real sockets: every documented operation is called, and what it answers
//! (and the `/control` bodies it takes or refuses) must match the documented schemas; each frame
//! of `/events` must be a documented frame whose data is a valid event.

use std::time::Duration;

use breakerbox::config::Config;
use breakerbox::gateway;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::support::demo_config::paced_sim;

const TOKEN: &str = "operator-token-1";

fn read(name: &str) -> Value {
    let path = format!("{}/docs/schema/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A validator for one of the document's component schemas, with the events schema beside it
/// (the document refers to it as `events.schema.json`).
fn component(name: &str) -> jsonschema::Validator {
    let doc = read("openapi.json");
    let text = serde_json::to_string(&doc["components"]["schemas"])
        .unwrap()
        .replace("#/components/schemas/", "#/$defs/");
    let mut defs: Value = serde_json::from_str(&text).unwrap();
    defs["events"] = read("events.schema.json");
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": defs,
        "$ref": format!("#/$defs/{name}"),
    });
    jsonschema::options()
        .with_base_uri("https://breakerbox.invalid/schema/openapi.json")
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn assert_valid(validator: &jsonschema::Validator, value: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:?}\n{value}");
}

/// Every `$ref` in `value`, by JSON pointer into the document or to the events schema.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_2_for_this_version_and_every_reference_resolves() {
    let doc = read("openapi.json");
    assert_eq!(doc["openapi"], "3.2.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let mut paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    paths.sort();
    assert_eq!(paths, ["/control", "/events", "/healthz", "/metrics"]);
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 5, "{all:?}");
    for r in all {
        if r == "events.schema.json" {
            continue;
        }
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r}: not local"));
        assert!(doc.pointer(pointer).is_some(), "{r} resolves to nothing");
    }
    // Each component schema compiles (with the events schema it names).
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        component(name);
    }
}

#[test]
fn the_command_schema_takes_what_control_takes_and_refuses_what_it_refuses() {
    let command = component("Command");
    for good in [
        json!({"action": "trip", "provider": "anthropic"}),
        json!({"action": "reset", "provider": "openai"}),
        json!({"action": "set_fault", "provider": "openai", "fault": "overloaded"}),
        json!({"action": "prompt", "text": "hi"}),
        json!({"action": "load", "change": "faster"}),
    ] {
        assert_valid(&command, &good, "a command");
        let parsed: Result<breakerbox::session::command::Command, _> =
            serde_json::from_value(good.clone());
        assert!(parsed.is_ok(), "/control refuses {good}");
    }
    for bad in [
        json!({"action": "explode", "provider": "anthropic"}),
        json!({"action": "trip"}),
        json!({"action": "trip", "provider": "anthropic", "extra": 1}),
        json!({"action": "load", "change": "sideways"}),
    ] {
        assert!(!command.is_valid(&bad), "the schema takes {bad}");
        let parsed: Result<breakerbox::session::command::Command, _> =
            serde_json::from_value(bad.clone());
        assert!(parsed.is_err(), "/control takes {bad}");
    }
}

/// `(id, event, data)` of each whole SSE frame in `text` (comments skipped).
fn frames(text: &str) -> Vec<(Option<String>, Option<String>, String)> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let (mut id, mut event, mut data) = (None, None, None);
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(v.to_string());
            }
        }
        if let Some(data) = data {
            out.push((id, event, data));
        }
    }
    out
}

#[tokio::test]
async fn a_real_gateway_answers_as_documented() {
    let config = Config::parse(&paced_sim(), "openapi.toml").unwrap();
    let (running, _sim, _bus) = gateway::start_demo(&config, &[], Some(TOKEN.to_string()))
        .await
        .unwrap();
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let bearer = format!("Bearer {TOKEN}");
    let (ok, error, health) = (component("Ok"), component("Error"), component("Health"));

    let healthz = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), 200);
    assert_valid(&health, &healthz.json().await.unwrap(), "/healthz");

    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let kind = metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(kind.starts_with("text/plain"), "{kind}");

    for path in ["/events", "/control"] {
        let refused = http
            .request(
                if path == "/events" {
                    reqwest::Method::GET
                } else {
                    reqwest::Method::POST
                },
                format!("{base}{path}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401, "{path} without the token");
        assert_valid(&error, &refused.json().await.unwrap(), path);
    }

    let events = http
        .get(format!("{base}/events"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let mut events = events.bytes_stream();

    let control = |body: Value| {
        http.post(format!("{base}/control"))
            .header("authorization", &bearer)
            .json(&body)
            .send()
    };
    let tripped = control(json!({"action": "trip", "provider": "anthropic"}))
        .await
        .unwrap();
    assert_eq!(tripped.status(), 200);
    assert_valid(&ok, &tripped.json().await.unwrap(), "/control 200");
    let refused = control(json!({"action": "trip", "provider": "nobody"}))
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert_valid(&error, &refused.json().await.unwrap(), "/control 400");
    let big = control(json!({"action": "prompt", "text": "x".repeat(70 * 1024)}))
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    assert_valid(&error, &big.json().await.unwrap(), "/control 413");
    let prompt = control(json!({"action": "prompt", "text": "hi"}))
        .await
        .unwrap();
    let answered = if prompt.status() == 200 { &ok } else { &error };
    assert_valid(answered, &prompt.json().await.unwrap(), "/control prompt");

    let (frame, event) = (component("EventFrame"), component("events"));
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("\"action\":\"trip\"") {
        let chunk = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("the trip comes back on /events")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let all = frames(&seen);
    assert!(all.len() >= 2, "{seen}");
    for (id, name, data) in all {
        let as_object = json!({"id": id, "event": name, "data": data});
        let as_object: Value = as_object
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<serde_json::Map<_, _>>()
            .into();
        assert_valid(&frame, &as_object, "an /events frame");
        let data: Value = serde_json::from_str(&data).unwrap();
        assert_valid(&event, &data, "an /events frame's data");
        assert_eq!(name.as_deref(), data["type"].as_str(), "event: is the type");
        assert_eq!(id, Some(data["seq"].to_string()), "id: is the seq");
    }
}
