//! The events' JSON Schema (docs/schema/events.schema.json) against what breakerbox writes: the
//! shipped recording, and an event of every kind with every optional field present. The schema's
//! objects are open (readers ignore fields they do not know), so this test also checks that it
//! names every field an event carries and every value of each closed set: a field or a value added
//! to the events without the schema fails here.

use std::collections::BTreeSet;

use breakerbox::event::*;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

fn schema() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/schema/events.schema.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A validator for the schema's root (an event) or for one of its definitions.
fn validator(def: Option<&str>) -> jsonschema::Validator {
    let mut schema = schema();
    if let Some(def) = def {
        schema = json!({
            "$schema": schema["$schema"],
            "$defs": schema["$defs"],
            "$ref": format!("#/$defs/{def}"),
        });
    }
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the schema is a valid draft 2020-12 schema")
}

fn errors(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// An event of every kind, every optional field set. The match in `kind_index` makes a new kind
/// a compile error here until it has a sample.
fn samples() -> Vec<EventKind> {
    let s = |v: &str| v.to_string();
    let info = ProviderInfo {
        name: s("anthropic"),
        protocol: Protocol::Anthropic,
        model: s("claude-sonnet-5-5"),
        fault: Some(s("overloaded")),
        base_url: Some(s("https://api.anthropic.com")),
    };
    vec![
        EventKind::SessionStarted {
            format_version: 1,
            mode: Mode::Serve,
            providers: vec![info],
            breaker_threshold: Some(5),
            breaker_counts: Some(vec![ErrorClass::Overloaded]),
            settings: Some([(s("breaker.recovery"), s("30s"))].into()),
            pools: vec![PoolInfo {
                name: s("claude"),
                strategy: PoolStrategy::LeastInFlight,
                members: vec![PoolMemberInfo {
                    provider: s("anthropic"),
                    weight: 3,
                }],
            }],
        },
        EventKind::RequestStarted {
            request_id: s("r1"),
            source: Source::Gateway,
            chain: vec![s("anthropic"), s("openai")],
            prompt: Some(s("hi")),
            prompt_chars: Some(5000),
            chain_name: Some(s("cheap")),
            failover: Some(false),
            max_tokens: Some(1024),
            stream: Some(true),
        },
        EventKind::AttemptStarted {
            request_id: s("r1"),
            attempt: 1,
            provider: s("anthropic"),
            model: s("claude-sonnet-5-5"),
            pool: Some(s("claude")),
        },
        EventKind::AttemptFailed {
            request_id: s("r1"),
            attempt: 1,
            provider: s("anthropic"),
            phase: Phase::Headers,
            class: ErrorClass::RateLimited,
            retryable: true,
            status: Some(429),
            retry_after_ms: Some(5000),
            message: s("slow down"),
            elapsed_ms: 12,
        },
        EventKind::AttemptSkipped {
            request_id: s("r1"),
            provider: s("anthropic"),
            reason: SkipReason::Throttled,
        },
        EventKind::FirstEvent {
            request_id: s("r1"),
            attempt: 2,
            provider: s("openai"),
            latency_ms: 300,
        },
        EventKind::TextDelta {
            request_id: s("r1"),
            provider: s("openai"),
            text: s("Hello"),
        },
        EventKind::Rewind {
            request_id: s("r1"),
            provider: s("openai"),
            discarded_chars: 5,
            reason: s("restart"),
        },
        EventKind::Usage {
            request_id: s("r1"),
            provider: s("openai"),
            model: s("gpt-6.2-sol"),
            input_tokens: 12,
            output_tokens: 50,
            cache_read_tokens: 4,
            cache_write_tokens: 2,
            cost_usd: 0.00056,
            estimated: true,
            unpriced: true,
            response_id: Some(s("chatcmpl-1")),
        },
        EventKind::RequestFinished {
            request_id: s("r1"),
            outcome: Outcome::Error,
            provider: Some(s("openai")),
            stop_reason: Some(s("end_turn")),
            class: Some(ErrorClass::Unavailable),
            message: Some(s("every provider failed")),
            total_ms: 2300,
            cost_usd: 0.00056,
            attempts: 2,
            failed_cost_usd: 0.0001,
            primary_cost_usd: Some(0.0009),
            unpriced: true,
        },
        EventKind::BreakerChanged {
            provider: s("anthropic"),
            model: Some(s("claude-sonnet-5-5")),
            from: BreakerState::Closed,
            to: BreakerState::Open,
            reason: s("5 consecutive failures"),
            recovery_ms: Some(30_000),
            instance: Some(s("gw-2")),
        },
        EventKind::ProviderFlagged {
            provider: s("openai"),
            flag: ProviderFlag::Misconfigured,
            reason: s("401"),
        },
        EventKind::FaultChanged {
            provider: s("anthropic"),
            fault: s("rate_limit:retry_after=5s,p=0.8"),
            reason: s("scenario incident, step at 0:15"),
        },
        EventKind::ProbeStarted {
            provider: s("anthropic"),
            model: Some(s("claude-sonnet-5-5")),
            target_model: s("claude-sonnet-5-5"),
            probe: 1,
        },
        EventKind::ProbeFinished {
            provider: s("anthropic"),
            model: Some(s("claude-sonnet-5-5")),
            probe: 1,
            ok: false,
            latency_ms: 40,
            class: Some(ErrorClass::Overloaded),
            status: Some(529),
            message: Some(s("overloaded")),
            input_tokens: 9,
            output_tokens: 1,
            cost_usd: 0.0000028,
            unpriced: true,
            next_probe_ms: Some(3000),
        },
        EventKind::OperatorAction {
            action: OperatorAction::Trip,
            provider: Some(s("anthropic")),
            detail: s("from the console"),
            instance: Some(s("gw-2")),
        },
        EventKind::RateLimits {
            provider: s("anthropic"),
            model: Some(s("claude-sonnet-5-5")),
            limits: vec![RateLimit {
                dimension: LimitDimension::InputTokens,
                limit: Some(50),
                remaining: Some(2),
                reset_ms: Some(9000),
            }],
        },
        EventKind::RequestRejected {
            reason: RejectReason::UnknownModel,
            status: 404,
            protocol: Protocol::Gemini,
            message: s("no route for model `x`"),
        },
        EventKind::ClusterChanged {
            instance: s("gw-1"),
            connected: false,
            redis: s("127.0.0.1:6379"),
            reason: s("lost: connection refused"),
        },
        EventKind::ThrottleChanged {
            provider: s("anthropic"),
            model: Some(s("claude-sonnet-5-5")),
            throttled: true,
            dimension: Some(LimitDimension::Requests),
            remaining: Some(1),
            limit: Some(20),
            reset_ms: Some(9000),
            reason: s("requests 1/20 left, resets in 9s"),
        },
    ]
}

fn kind_index(kind: &EventKind) -> usize {
    match kind {
        EventKind::SessionStarted { .. } => 0,
        EventKind::RequestStarted { .. } => 1,
        EventKind::AttemptStarted { .. } => 2,
        EventKind::AttemptFailed { .. } => 3,
        EventKind::AttemptSkipped { .. } => 4,
        EventKind::FirstEvent { .. } => 5,
        EventKind::TextDelta { .. } => 6,
        EventKind::Rewind { .. } => 7,
        EventKind::Usage { .. } => 8,
        EventKind::RequestFinished { .. } => 9,
        EventKind::BreakerChanged { .. } => 10,
        EventKind::ProviderFlagged { .. } => 11,
        EventKind::FaultChanged { .. } => 12,
        EventKind::ProbeStarted { .. } => 13,
        EventKind::ProbeFinished { .. } => 14,
        EventKind::OperatorAction { .. } => 15,
        EventKind::RateLimits { .. } => 16,
        EventKind::ThrottleChanged { .. } => 17,
        EventKind::RequestRejected { .. } => 18,
        EventKind::ClusterChanged { .. } => 19,
    }
}

fn as_json(kind: EventKind, seq: u64) -> Value {
    let event = Event {
        ts: Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap(),
        seq,
        kind,
        gateway: None,
    };
    serde_json::to_value(&event).unwrap()
}

/// The keys of `value` (and of the objects in it, by path) missing from `schema`'s `properties`.
fn unnamed(schema: &Value, defs: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => &defs[r.trim_start_matches("#/$defs/")],
        None => schema,
    };
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match schema["properties"].get(key) {
                    Some(sub) => unnamed(sub, defs, v, &format!("{path}.{key}"), out),
                    None if schema.get("additionalProperties").is_some() => {}
                    None => out.push(format!("{path}.{key}")),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                unnamed(&schema["items"], defs, item, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_line_of_the_shipped_recording_is_valid() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/recordings/demo-incident.jsonl"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let (header, events) = (validator(Some("session_header")), validator(None));
    let mut lines = text.lines();
    let first: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(errors(&header, &first), Vec::<String>::new(), "line 1");
    let mut kinds = BTreeSet::new();
    for (n, line) in lines.enumerate() {
        let value: Value = serde_json::from_str(line).unwrap();
        let problems = errors(&events, &value);
        assert!(problems.is_empty(), "line {}: {problems:?}\n{line}", n + 2);
        kinds.insert(value["type"].as_str().unwrap().to_string());
    }
    assert!(
        kinds.len() >= 8,
        "the recording shows most kinds: {kinds:?}"
    );
}

#[test]
fn an_event_of_every_kind_with_every_field_is_valid_and_every_field_is_named() {
    let schema = schema();
    let events = validator(None);
    let samples = samples();
    let covered: BTreeSet<usize> = samples.iter().map(kind_index).collect();
    assert_eq!(covered.len(), samples.len(), "one sample per kind");
    let mut types = BTreeSet::new();
    for (seq, kind) in samples.into_iter().enumerate() {
        let name = kind.type_name();
        let value = as_json(kind, seq as u64 + 1);
        assert_eq!(errors(&events, &value), Vec::<String>::new(), "{value}");
        let mut missing = Vec::new();
        let own = &schema["$defs"][format!("{name}_event")];
        unnamed(own, &schema["$defs"], &value, name, &mut missing);
        // The envelope's fields are the root's.
        missing.retain(|m| !["ts", "seq"].iter().any(|k| m == &format!("{name}.{k}")));
        assert_eq!(
            missing,
            Vec::<String>::new(),
            "fields the schema does not name"
        );
        types.insert(name.to_string());
    }
    let declared: BTreeSet<String> = schema["properties"]["type"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(declared, types);
}

#[test]
fn every_value_of_every_closed_set_is_in_the_schema() {
    fn names<T: serde::Serialize>(all: &[T]) -> Vec<Value> {
        all.iter()
            .map(|v| serde_json::to_value(v).unwrap())
            .collect()
    }
    let schema = schema();
    let defs = &schema["$defs"];
    let sets = [
        ("error_class", names(&ErrorClass::ALL)),
        ("breaker_state", names(&BreakerState::ALL)),
        ("skip_reason", names(&SkipReason::ALL)),
        ("operator_action", names(&OperatorAction::ALL)),
        ("provider_flag", names(&ProviderFlag::ALL)),
        ("pool_strategy", names(&PoolStrategy::ALL)),
        ("limit_dimension", names(&LimitDimension::ALL)),
        ("reject_reason", names(&RejectReason::ALL)),
    ];
    for (def, values) in sets {
        assert_eq!(defs[def]["enum"].as_array().unwrap(), &values, "{def}");
    }
}

#[test]
fn the_schema_refuses_what_breakerbox_never_writes() {
    let events = validator(None);
    let good = as_json(samples().swap_remove(3), 4);
    assert!(events.is_valid(&good));
    let mut bad_class = good.clone();
    bad_class["class"] = json!("bogus");
    let mut no_request = good.clone();
    no_request.as_object_mut().unwrap().remove("request_id");
    let mut unknown_type = good.clone();
    unknown_type["type"] = json!("attempt_exploded");
    let mut bad_ts = good.clone();
    bad_ts["ts"] = json!("yesterday");
    let mut negative = good;
    negative["elapsed_ms"] = json!(-1);
    for bad in [bad_class, no_request, unknown_type, bad_ts, negative] {
        assert!(!events.is_valid(&bad), "accepted {bad}");
    }
}
