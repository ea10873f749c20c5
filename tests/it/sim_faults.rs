//! Each fault kind produces exactly its HTTP-level behaviour: statuses, headers and bodies for the
//! error faults; resets, refusals, silences and cuts on the socket for the others; and nothing
//! leaks when clients hang up on a silent provider.

use crate::support::sim::*;
use breakerbox::provider::Protocol;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// The path on the shared port.
fn path(name: &str, protocol: Protocol) -> String {
    match protocol {
        Protocol::Anthropic => format!("/{name}/v1/messages"),
        Protocol::Openai => format!("/{name}/v1/chat/completions"),
        Protocol::OpenaiResponses => format!("/{name}/v1/responses"),
        Protocol::Gemini => {
            format!("/{name}/v1beta/models/gemini-test:streamGenerateContent?alt=sse")
        }
        Protocol::Bedrock => format!("/{name}/model/m/converse-stream"),
        Protocol::Azure => format!("/{name}/openai/v1/chat/completions"),
    }
}

struct Expect {
    fault: &'static str,
    status: u16,
    /// Anthropic `error.type`.
    anthropic_type: &'static str,
    /// OpenAI `error.code` (or `error.type` when there is no code).
    openai_code: &'static str,
    message_has: &'static str,
}

#[tokio::test]
async fn error_faults_answer_with_status_headers_and_body() {
    let cases = [
        Expect {
            fault: "rate_limit:retry_after=1500ms",
            status: 429,
            anthropic_type: "rate_limit_error",
            openai_code: "rate_limit_exceeded",
            message_has: "",
        },
        Expect {
            fault: "quota",
            status: 0, // differs by protocol, checked below
            anthropic_type: "invalid_request_error",
            openai_code: "insufficient_quota",
            message_has: "",
        },
        Expect {
            fault: "overloaded",
            status: 0,
            anthropic_type: "overloaded_error",
            openai_code: "server_error",
            message_has: "verloaded",
        },
        Expect {
            fault: "server_error",
            status: 500,
            anthropic_type: "api_error",
            openai_code: "server_error",
            message_has: "",
        },
        Expect {
            fault: "server_error:status=502",
            status: 502,
            anthropic_type: "api_error",
            openai_code: "server_error",
            message_has: "",
        },
        Expect {
            fault: "bad_request",
            status: 400,
            anthropic_type: "invalid_request_error",
            openai_code: "invalid_request_error",
            message_has: "",
        },
        Expect {
            fault: "context_length",
            status: 400,
            anthropic_type: "invalid_request_error",
            openai_code: "context_length_exceeded",
            message_has: "",
        },
        Expect {
            fault: "content_filter",
            status: 400,
            anthropic_type: "invalid_request_error",
            openai_code: "content_policy_violation",
            message_has: "",
        },
        Expect {
            fault: "auth",
            status: 401,
            anthropic_type: "authentication_error",
            openai_code: "invalid_api_key",
            message_has: "",
        },
        Expect {
            fault: "overloaded:status=503,retry_after=3s",
            status: 503,
            anthropic_type: "overloaded_error",
            openai_code: "server_error",
            message_has: "",
        },
    ];
    let sim = start_fast().await;
    for (name, protocol) in PROTOCOLS {
        for case in &cases {
            set(&sim, name, case.fault);
            for stream in [true, false] {
                let what = format!("{name} {} stream={stream}", case.fault);
                let response = post(&url(&sim, name, protocol), &body_for(protocol, stream)).await;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                assert!(
                    headers["content-type"]
                        .to_str()
                        .unwrap()
                        .starts_with("application/json"),
                    "{what}"
                );
                let text = response.text().await.unwrap();
                assert!(
                    !text.contains("sk-secret"),
                    "{what}: the key is never echoed"
                );
                let body: Value = serde_json::from_str(&text).unwrap();
                let message = body["error"]["message"].as_str().unwrap();
                assert!(message.contains(case.message_has), "{what}: {message}");
                let expected_status = match (case.fault, protocol) {
                    ("quota", Protocol::Anthropic) => 400,
                    ("quota", Protocol::Openai | Protocol::OpenaiResponses | Protocol::Azure) => {
                        429
                    }
                    ("overloaded", Protocol::Anthropic) => 529,
                    (
                        "overloaded",
                        Protocol::Openai | Protocol::OpenaiResponses | Protocol::Azure,
                    ) => 503,
                    _ => case.status,
                };
                assert_eq!(status, expected_status, "{what}");
                match protocol {
                    Protocol::Gemini => {
                        unreachable!("Gemini has its own tests (tests/it/gemini.rs)")
                    }
                    Protocol::Anthropic => {
                        assert_eq!(body["type"], "error", "{what}");
                        assert_eq!(body["error"]["type"], case.anthropic_type, "{what}");
                        let id = headers["request-id"].to_str().unwrap();
                        assert!(id.starts_with("req_"));
                        assert_eq!(body["request_id"], id, "{what}");
                    }
                    // The Responses API answers errors as Chat Completions does.
                    Protocol::Openai | Protocol::OpenaiResponses => {
                        let error = &body["error"];
                        for key in ["message", "type", "param", "code"] {
                            assert!(error.get(key).is_some(), "{what}: {key}");
                        }
                        let code = error["code"].as_str().or(error["type"].as_str());
                        assert_eq!(code, Some(case.openai_code), "{what}: {error}");
                        assert!(headers.contains_key("x-request-id"));
                    }
                    Protocol::Bedrock => unreachable!("Bedrock is tested in bedrock.rs"),
                    // Azure's are tested in tests/it/azure.rs.
                    Protocol::Azure => assert!(body["error"]["code"].is_string(), "{what}"),
                }
                match case.fault {
                    "rate_limit:retry_after=1500ms" => {
                        assert_eq!(headers["retry-after"], "2", "{what}: seconds, rounded up");
                        if protocol.is_openai() {
                            assert_eq!(headers["retry-after-ms"], "1500");
                        }
                    }
                    "overloaded:status=503,retry_after=3s" => {
                        assert_eq!(headers["retry-after"], "3", "{what}");
                    }
                    _ => assert!(!headers.contains_key("retry-after"), "{what}"),
                }
                if case.fault == "quota" && protocol == Protocol::Anthropic {
                    assert!(message.starts_with("Your credit balance is too low"));
                }
                if case.fault == "context_length" && protocol == Protocol::Anthropic {
                    assert_eq!(
                        message,
                        "prompt is too long: 250000 tokens > 200000 maximum"
                    );
                }
                if case.fault == "content_filter" && protocol == Protocol::Anthropic {
                    assert_eq!(message, "Output blocked by content filtering policy");
                }
            }
        }
    }
    assert_eq!(outcome_count(&sim, "openai", "rate_limit"), 2);
    assert_eq!(outcome_count(&sim, "anthropic", "server_error"), 4);
}

#[tokio::test]
async fn reset_reads_the_request_then_sends_rst() {
    let sim = start_fast().await;
    for (name, protocol) in PROTOCOLS {
        for fault in ["reset", "connect_refused"] {
            set(&sim, name, fault);
            let mut stream =
                raw_post(sim.addr(), &path(name, protocol), &body_for(protocol, true)).await;
            let (bytes, end) = read_until_end(&mut stream, Duration::from_secs(3)).await;
            assert_eq!(end, End::Reset, "{name} {fault} on the shared port");
            assert!(bytes.is_empty(), "{name} {fault}: no response byte");
        }
        assert_eq!(outcome_count(&sim, name, "reset"), 1);
        assert_eq!(outcome_count(&sim, name, "connect_refused"), 1);
    }
}

#[tokio::test]
async fn connect_refused_closes_the_direct_port_until_cleared() {
    let sim = start_fast().await;
    for (name, protocol) in PROTOCOLS {
        let base = sim.direct_base_url(name).unwrap();
        let port_addr: std::net::SocketAddr = base
            .trim_start_matches("http://")
            .trim_end_matches("/v1")
            .parse()
            .unwrap();
        set(&sim, name, "connect_refused");
        eventually("the direct port refuses", || {
            !sim.providers()
                .iter()
                .any(|p| p.name == name && p.direct_listening)
        })
        .await;
        let error = TcpStream::connect(port_addr).await.unwrap_err();
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{name}"
        );

        set(&sim, name, "none");
        eventually("the direct port listens again", || {
            sim.providers()
                .iter()
                .any(|p| p.name == name && p.direct_listening)
        })
        .await;
        let response = post(&endpoint(&base, protocol), &body_for(protocol, true)).await;
        assert_eq!(response.status(), 200, "{name}: same port, accepted again");
        response.text().await.unwrap();
    }
}

#[tokio::test]
async fn a_probable_connect_refused_resets_instead_of_closing_the_port() {
    let sim = start_fast().await;
    set(&sim, "openai", "connect_refused:p=0.5");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(sim.providers().iter().all(|p| p.direct_listening));
}

#[tokio::test]
async fn no_response_keeps_the_connection_open_then_closes() {
    let sim = start_fast().await;
    for (name, protocol) in PROTOCOLS {
        set(&sim, name, "no_response:for=600ms");
        let started = Instant::now();
        let mut stream =
            raw_post(sim.addr(), &path(name, protocol), &body_for(protocol, true)).await;
        let (bytes, end) = read_until_end(&mut stream, Duration::from_millis(300)).await;
        assert_eq!(
            (bytes.len(), end),
            (0, End::Silent),
            "{name}: open and silent"
        );
        let (bytes, end) = read_until_end(&mut stream, Duration::from_secs(3)).await;
        assert_eq!(
            (bytes.len(), end),
            (0, End::Closed),
            "{name}: closed after `for`"
        );
        assert!(started.elapsed() >= Duration::from_millis(600));
        assert_eq!(outcome_count(&sim, name, "no_response"), 1);
    }
}

#[tokio::test]
async fn slow_first_event_sends_headers_at_once_and_the_first_event_late() {
    let sim = start_fast().await;
    for (name, protocol) in PROTOCOLS {
        set(&sim, name, "slow_first_event:delay=400ms");
        let started = Instant::now();
        let mut response = post(&url(&sim, name, protocol), &body_for(protocol, true)).await;
        assert_eq!(response.status(), 200);
        assert!(
            started.elapsed() < Duration::from_millis(250),
            "{name}: headers at once"
        );
        response.chunk().await.unwrap().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(400), "{name}");
        let rest = response.text().await.unwrap();
        assert!(has_end_marker(&rest), "{name}: {rest}");
    }
}

#[tokio::test]
async fn stall_goes_silent_mid_stream_then_resumes() {
    let sim = start_fast().await;
    for (name, protocol) in PROTOCOLS {
        set(&sim, name, "stall:after=2,for=500ms");
        let mut response = post(&url(&sim, name, protocol), &body_for(protocol, true)).await;
        let mut before = String::new();
        let started = Instant::now();
        let gap = loop {
            let chunk_started = Instant::now();
            let chunk = response.chunk().await.unwrap().unwrap();
            let waited = chunk_started.elapsed();
            if waited >= Duration::from_millis(400) {
                break waited;
            }
            before.push_str(std::str::from_utf8(&chunk).unwrap());
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{name}: no stall"
            );
        };
        assert!(gap >= Duration::from_millis(450), "{name}: {gap:?}");
        assert_eq!(tokens(&before), 2, "{name}: two tokens, then silence");
        let rest = response.text().await.unwrap();
        assert!(has_end_marker(&rest), "{name}: resumes and completes");
        assert_eq!(outcome_count(&sim, name, "stall"), 1);
    }
}

#[tokio::test]
async fn stream_cut_aborts_the_body_without_its_end() {
    let sim = start_fast().await;
    for (name, protocol) in PROTOCOLS {
        set(&sim, name, "stream_cut:after=3");
        let mut stream =
            raw_post(sim.addr(), &path(name, protocol), &body_for(protocol, true)).await;
        let (bytes, end) = read_until_end(&mut stream, Duration::from_secs(3)).await;
        assert_ne!(end, End::Silent, "{name}: the connection ends");
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{name}: {text}");
        assert!(text.contains("transfer-encoding: chunked"), "{name}");
        assert!(
            !text.ends_with("0\r\n\r\n"),
            "{name}: no terminating chunk, so clients see an incomplete body"
        );
        assert_eq!(tokens(&text), 3, "{name}");
        assert!(!has_end_marker(&text), "{name}: {text}");

        // An HTTP client sees an error, not a clean end.
        let response = post(&url(&sim, name, protocol), &body_for(protocol, true)).await;
        assert!(response.text().await.is_err(), "{name}");

        // Not streamed: the promised body is cut short.
        let response = post(&url(&sim, name, protocol), &body_for(protocol, false)).await;
        assert!(response.bytes().await.is_err(), "{name}");
        assert_eq!(outcome_count(&sim, name, "stream_cut"), 3);
    }
}

#[tokio::test]
async fn mid_stream_error_is_an_in_stream_error_event() {
    let sim = start_fast().await;
    for (name, protocol) in PROTOCOLS {
        for (fault, error_type) in [
            ("mid_stream_error:after=2", "overloaded_error"),
            ("mid_stream_error:after=2,type=api_error", "api_error"),
        ] {
            set(&sim, name, fault);
            let response = post(&url(&sim, name, protocol), &body_for(protocol, true)).await;
            assert_eq!(response.status(), 200);
            let text = response.text().await.expect("the body ends cleanly");
            let events = sse_events(&text);
            let (event, data) = events.last().unwrap();
            let data = json(data);
            match protocol {
                Protocol::Gemini => unreachable!("Gemini has its own tests (tests/it/gemini.rs)"),
                Protocol::Anthropic => {
                    assert_eq!(event.as_deref(), Some("error"));
                    assert_eq!(data["type"], "error");
                    assert_eq!(data["error"]["type"], error_type);
                    assert!(!text.contains("message_stop"));
                }
                Protocol::Openai | Protocol::Azure => {
                    assert_eq!(data["error"]["type"], error_type);
                    assert!(data["error"]["message"].is_string());
                    assert!(!text.contains("[DONE]"));
                }
                Protocol::OpenaiResponses => {
                    // The terminal `response.failed`, numbered after the events before it.
                    assert_eq!(event.as_deref(), Some("response.failed"));
                    assert_eq!(data["type"], "response.failed");
                    assert_eq!(data["sequence_number"], events.len() - 1);
                    let response = &data["response"];
                    assert_eq!(response["status"], "failed");
                    assert_eq!(response["error"]["code"], "server_error");
                    let message = response["error"]["message"].as_str().unwrap();
                    assert_eq!(
                        message.contains("overloaded"),
                        error_type == "overloaded_error",
                        "{message}"
                    );
                    assert_eq!(
                        response["id"],
                        json(&events[0].1)["response"]["id"],
                        "the response that was created"
                    );
                    assert!(!text.contains("response.completed"));
                }
                Protocol::Bedrock => unreachable!("Bedrock is tested in bedrock.rs"),
            }
            assert_eq!(tokens(&text), 2, "{name} {fault}");
        }
        // Not streamed: the HTTP error of that type.
        set(&sim, name, "mid_stream_error");
        let response = post(&url(&sim, name, protocol), &body_for(protocol, false)).await;
        assert_eq!(
            response.status(),
            if protocol == Protocol::Anthropic {
                529
            } else {
                503
            },
            "{name}"
        );
    }
}

#[tokio::test]
async fn malformed_sends_one_invalid_event_then_ends() {
    let sim = start_fast().await;
    for (name, protocol) in PROTOCOLS {
        set(&sim, name, "malformed:after=3");
        let text = post(&url(&sim, name, protocol), &body_for(protocol, true))
            .await
            .text()
            .await
            .unwrap();
        let events = sse_events(&text);
        let (last, rest) = events.split_last().unwrap();
        assert!(
            serde_json::from_str::<Value>(&last.1).is_err(),
            "{name}: {last:?}"
        );
        assert!(
            rest.iter()
                .all(|(_, d)| serde_json::from_str::<Value>(d).is_ok())
        );
        assert_eq!(tokens(&text), 3, "{name}");

        let body = post(&url(&sim, name, protocol), &body_for(protocol, false))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            serde_json::from_str::<Value>(&body).is_err(),
            "{name}: {body}"
        );
    }
}

#[tokio::test]
async fn no_done_completes_without_the_end_marker() {
    let sim = start_fast().await;
    for (name, protocol) in PROTOCOLS {
        set(&sim, name, "no_done");
        let text = post(&url(&sim, name, protocol), &body_for(protocol, true))
            .await
            .text()
            .await
            .unwrap();
        match protocol {
            Protocol::Gemini => unreachable!("Gemini has its own tests (tests/it/gemini.rs)"),
            Protocol::Anthropic => {
                assert!(text.contains("\"message_delta\"") && !text.contains("message_stop"));
            }
            Protocol::Openai | Protocol::Azure => {
                assert!(text.contains("\"finish_reason\":\"stop\"") && !text.contains("[DONE]"));
                assert!(
                    text.contains("\"choices\":[]"),
                    "the usage chunk is still sent"
                );
            }
            Protocol::OpenaiResponses => {
                // Its end marker is the terminal event: the items are all done, then nothing.
                let events = sse_events(&text);
                let (last, _) = events.last().unwrap();
                assert_eq!(last.as_deref(), Some("response.output_item.done"));
                assert!(!text.contains("response.completed"));
            }
            Protocol::Bedrock => unreachable!("Bedrock is tested in bedrock.rs"),
        }
    }
}

#[tokio::test]
async fn latency_is_slow_but_healthy() {
    let sim = start_fast().await;
    set(&sim, "anthropic", "latency:first=300ms,token=5ms");
    let started = Instant::now();
    let text = post(
        &url(&sim, "anthropic", Protocol::Anthropic),
        &anthropic_body(true),
    )
    .await
    .text()
    .await
    .unwrap();
    let words = tokens(&text) as u32;
    assert!(started.elapsed() >= Duration::from_millis(300) + Duration::from_millis(5) * words);
    assert!(text.contains("message_stop"));
    assert_eq!(outcome_count(&sim, "anthropic", "latency"), 1);
}

#[tokio::test]
async fn flap_alternates_down_and_up_from_when_it_is_set() {
    let sim = start_fast().await;
    let status = || async {
        post(
            &url(&sim, "openai", Protocol::Openai),
            &openai_body(false, false),
        )
        .await
        .status()
        .as_u16()
    };
    set(&sim, "openai", "flap:down=500ms,up=500ms,fault=rate_limit");
    let started = Instant::now();
    let at = |ms: u64| tokio::time::sleep_until((started + Duration::from_millis(ms)).into());
    at(100).await;
    assert_eq!(status().await, 429, "down first");
    at(700).await;
    assert_eq!(status().await, 200, "then up");
    at(1100).await;
    assert_eq!(status().await, 429, "then down again");
    let log = sim.recent_requests(3);
    let faults: Vec<&str> = log.iter().map(|r| r.fault.as_str()).collect();
    assert_eq!(faults, ["rate_limit", "none", "rate_limit"]);

    // Without `up`: one down period, then healthy for good.
    set(&sim, "openai", "flap:down=300ms");
    assert_eq!(status().await, 503);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(status().await, 200);
}

#[tokio::test]
async fn probability_affects_a_seeded_share_of_requests() {
    let statuses = |seed: u64| async move {
        let mut config = fast_config();
        config.seed = seed;
        let sim = start(config).await;
        set(&sim, "openai", "rate_limit:p=0.5");
        let mut out = Vec::new();
        for _ in 0..30 {
            let response = post(
                &url(&sim, "openai", Protocol::Openai),
                &openai_body(false, false),
            )
            .await;
            out.push(response.status().as_u16());
        }
        out
    };
    let first = statuses(3).await;
    let limited = first.iter().filter(|s| **s == 429).count();
    assert!((5..=25).contains(&limited), "{first:?}");
    assert!(first.iter().all(|s| *s == 200 || *s == 429));
    assert_eq!(first, statuses(3).await, "the same seed, the same draws");
}

#[tokio::test]
async fn silent_providers_leak_nothing_when_clients_hang_up() {
    let sim = start_fast().await;
    set(&sim, "anthropic", "stall:after=1,for=10m");
    set(&sim, "openai", "no_response");
    set(&sim, "responses", "stall:after=1,for=10m");
    let mut streams = Vec::new();
    for (name, protocol) in PROTOCOLS {
        for _ in 0..3 {
            streams
                .push(raw_post(sim.addr(), &path(name, protocol), &body_for(protocol, true)).await);
        }
    }
    eventually("all nine are being answered", || active(&sim) == 9).await;
    for stream in &mut streams {
        let (_, end) = read_until_end(stream, Duration::from_millis(200)).await;
        assert_eq!(end, End::Silent, "the connection stays open");
    }
    drop(streams);
    eventually("every handler and body is dropped", || active(&sim) == 0).await;
    assert_eq!(outcome_count(&sim, "anthropic", "client_gone"), 3);
    assert_eq!(outcome_count(&sim, "openai", "client_gone"), 3);
    assert_eq!(outcome_count(&sim, "responses", "client_gone"), 3);
    let log = sim.recent_requests(10);
    assert!(log.iter().all(|r| r.outcome == "client_gone"), "{log:?}");
    assert!(log.iter().filter(|r| r.fault == "stall").count() == 6);
}

#[tokio::test]
async fn a_flapping_refusal_closes_and_reopens_the_direct_port() {
    let sim = start_fast().await;
    let listening = || {
        sim.providers()
            .iter()
            .any(|p| p.name == "anthropic" && p.direct_listening)
    };
    set(
        &sim,
        "anthropic",
        "flap:down=300ms,up=300ms,fault=connect_refused",
    );
    eventually("down: the port is closed", || !listening()).await;
    eventually("up: the port listens", listening).await;
    eventually("down again", || !listening()).await;
    set(&sim, "anthropic", "flap:down=200ms,fault=connect_refused");
    eventually("down once", || !listening()).await;
    eventually("then up for good", listening).await;
}

/// `rate_limit_budget`: every response, streamed or not, states what is left in the protocol's
/// real rate-limit headers (read back by breakerbox's own parser), counting down per request;
/// once spent, a 429 with `retry-after` and nothing left, in each protocol's error shape.
#[tokio::test]
async fn a_rate_limit_budget_counts_down_in_the_headers_then_answers_429() {
    use breakerbox::protocol::LimitDimension;
    use breakerbox::provider::RateLimits;
    let sim = start_fast().await;
    for (name, protocol) in PROTOCOLS {
        set(&sim, name, "rate_limit_budget:requests=3,tokens=0,per=1m");
        for (left, stream) in [(2, true), (1, false), (0, true)] {
            let response = post(&url(&sim, name, protocol), &body_for(protocol, stream)).await;
            assert_eq!(response.status(), 200, "{name}");
            let limits = RateLimits::from_headers(response.headers(), chrono::Utc::now())
                .unwrap_or_else(|| panic!("{name}: no rate-limit headers"));
            let requests = limits.get(LimitDimension::Requests).copied().unwrap();
            assert_eq!(
                (requests.limit, requests.remaining),
                (Some(3), Some(left)),
                "{name}"
            );
            let reset = requests.reset.unwrap();
            assert!(
                reset > Duration::from_secs(55) && reset <= Duration::from_secs(61),
                "{name}: {reset:?}"
            );
            assert_eq!(limits.allowances.len(), 1, "{name}: tokens are not limited");
            let prefix = if protocol == Protocol::Anthropic {
                "anthropic-ratelimit-"
            } else {
                "x-ratelimit-"
            };
            assert!(
                response
                    .headers()
                    .keys()
                    .any(|k| k.as_str().starts_with(prefix)),
                "{name}"
            );
            let _ = response.text().await;
        }
        let refused = post(&url(&sim, name, protocol), &body_for(protocol, true)).await;
        assert_eq!(refused.status(), 429, "{name}");
        let retry_after: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((55..=60).contains(&retry_after), "{name}: {retry_after}");
        let limits = RateLimits::from_headers(refused.headers(), chrono::Utc::now()).unwrap();
        assert_eq!(
            limits.get(LimitDimension::Requests).unwrap().remaining,
            Some(0),
            "{name}"
        );
        let body: Value = refused.json().await.unwrap();
        let kind = body["error"]["type"]
            .as_str()
            .or(body["error"]["code"].as_str());
        assert!(
            matches!(kind, Some("rate_limit_error" | "requests")),
            "{name}: {body}"
        );
        assert_eq!(outcome_count(&sim, name, "rate_limit"), 1, "{name}");
        assert_eq!(outcome_count(&sim, name, "ok"), 3, "{name}");
    }
}
