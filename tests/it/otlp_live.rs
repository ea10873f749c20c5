//! Live OpenTelemetry export (`serve --otlp-endpoint`): a stand-in collector on loopback takes the
//! spans of a real gateway's traffic; a collector that is down or busy never holds a request up,
//! and what it loses is counted. The batching is checked under paused time against a transport in
//! memory.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use breakerbox::config::Config;
use breakerbox::event::{Bus, Source};
use breakerbox::gateway;
use breakerbox::telemetry::{OtlpConfig, OtlpExporter, OtlpStats, Sent, Transport};
use serde_json::{Value, json};

use crate::support::demo_config::paced_sim;
use crate::support::events::*;
use crate::support::gateway::Gateway;

/// What the stand-in collector received: each request's path, content type and body.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, String, Value)>>>);

impl Received {
    fn all(&self) -> Vec<(String, String, Value)> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Every span received so far.
    fn spans(&self) -> Vec<Value> {
        self.all()
            .iter()
            .flat_map(|(_, _, body)| {
                body["resourceSpans"][0]["scopeSpans"][0]["spans"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// A collector on 127.0.0.1 answering every POST with `status` (and `retry-after: 0` when busy).
async fn collector(status: StatusCode) -> (String, Received) {
    let received = Received::default();
    let sink = received.clone();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let kind = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if let Ok(mut v) = sink.0.lock() {
                    v.push((uri.path().to_string(), kind, json));
                }
                let mut response = (status, "{}").into_response();
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    response
                        .headers_mut()
                        .insert("retry-after", axum::http::HeaderValue::from_static("0"));
                }
                response
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), received)
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The real binary with `--otlp-endpoint`: each request's span and its attempts' arrive as valid
/// OTLP/JSON at `/v1/traces`, with the GenAI attributes, and nothing secret.
#[tokio::test]
async fn serve_exports_spans_live_to_a_collector() {
    let (url, received) = collector(StatusCode::OK).await;
    let token = "gateway-token-s3cr3t";
    let mut gw = Gateway::start(["--otlp-endpoint", &url, "--token", token]);
    wait_for("the banner's OTLP line", || {
        gw.log().contains("spans: OTLP/HTTP to")
    })
    .await;
    let http = reqwest::Client::new();
    for stream in [false, true] {
        let response = http
            .post(format!("{}/v1/messages", gw.base))
            .header("x-api-key", token)
            .header("anthropic-version", "2023-06-01")
            .json(
                &json!({"model": "claude-x", "max_tokens": 64, "stream": stream,
                          "messages": [{"role": "user", "content": "hi"}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", gw.log_tail());
        let _ = response.text().await;
    }
    wait_for("two requests' spans", || {
        received
            .spans()
            .iter()
            .filter(|s| s.get("parentSpanId").is_none())
            .count()
            >= 2
    })
    .await;
    for (path, kind, body) in received.all() {
        assert_eq!(path, "/v1/traces");
        assert_eq!(kind, "application/json");
        let resource = &body["resourceSpans"][0];
        assert_eq!(
            attr(&resource["resource"], "service.name"),
            Some(&json!({"stringValue": "breakerbox"}))
        );
        assert!(
            !body.to_string().contains(token),
            "the token leaked: {body}"
        );
    }
    let spans = received.spans();
    let requests: Vec<&Value> = spans
        .iter()
        .filter(|s| s.get("parentSpanId").is_none())
        .collect();
    let streams: Vec<Option<&Value>> = requests
        .iter()
        .map(|r| attr(r, "gen_ai.request.stream"))
        .collect();
    assert!(
        streams.contains(&Some(&json!({"boolValue": false}))),
        "{requests:?}"
    );
    assert!(
        streams.contains(&Some(&json!({"boolValue": true}))),
        "{requests:?}"
    );
    for r in &requests {
        assert_eq!(r["status"]["code"], 1, "{r}");
        assert_eq!(
            attr(r, "gen_ai.provider.name"),
            Some(&json!({"stringValue": "anthropic"}))
        );
        assert_eq!(
            attr(r, "gen_ai.request.max_tokens"),
            Some(&json!({"intValue": "64"}))
        );
        assert_eq!(
            attr(r, "breakerbox.source"),
            Some(&json!({"stringValue": "gateway"}))
        );
        assert!(attr(r, "gen_ai.response.finish_reasons").is_some(), "{r}");
        let attempt = spans
            .iter()
            .find(|a| a.get("parentSpanId") == r.get("spanId"))
            .unwrap_or_else(|| panic!("no attempt span under {r}"));
        assert_eq!(attempt["traceId"], r["traceId"]);
        assert_eq!(
            attr(attempt, "server.address"),
            Some(&json!({"stringValue": "127.0.0.1"}))
        );
        assert!(attr(attempt, "server.port").is_some(), "{attempt}");
        assert!(attr(attempt, "gen_ai.response.id").is_some(), "{attempt}");
        assert!(
            attr(attempt, "gen_ai.usage.input_tokens").is_some(),
            "{attempt}"
        );
        assert!(
            attr(attempt, "gen_ai.response.time_to_first_chunk")
                .and_then(|v| v["doubleValue"].as_f64())
                .is_some_and(|s| s > 0.0 && s < 10.0),
            "{attempt}"
        );
    }
    let metrics = crate::support::scrape::metrics(&http, &gw.base).await;
    assert!(
        metrics.contains("breakerbox_otlp_spans_dropped_total 0"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("breakerbox_otlp_spans_exported_total 0\n"),
        "{metrics}"
    );
    gw.terminate(Duration::from_secs(10));
}

const FAST: &str = r#"
[timeouts]
headers = "400ms"
first_event = "400ms"
idle = "300ms"
"#;

/// A collector that is down, or answers 503 every time: requests are answered as fast as with
/// none, and the spans lost are counted, as are the failed batches.
#[tokio::test]
async fn a_collector_down_or_busy_holds_no_request_up_and_losses_are_counted() {
    // Down: a port that was free a moment ago.
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let (busy, busy_received) = collector(StatusCode::SERVICE_UNAVAILABLE).await;
    for url in [down, busy] {
        let config = Config::parse(&format!("{FAST}{}", paced_sim()), "t.toml").unwrap();
        let (running, _sim, bus) = gateway::start_demo(&config, &[], None).await.unwrap();
        let mut otlp = OtlpConfig::resolve(Some(&url), &|_| None)
            .ok()
            .flatten()
            .expect("a config");
        otlp.interval = Duration::from_millis(50);
        otlp.retries = 1;
        otlp.max_backoff = Duration::from_millis(20);
        otlp.queue_spans = 3;
        let exporter = OtlpExporter::start(&bus, otlp).unwrap();
        running.gateway.report_otlp(exporter.stats());
        let base = format!("http://{}", running.addr);
        let http = reqwest::Client::new();
        let started = std::time::Instant::now();
        for _ in 0..5 {
            let response = http
                .post(format!("{base}/v1/chat/completions"))
                .json(&json!({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let _ = response.text().await;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let stats = exporter.stats();
        wait_for("a failed batch", || {
            OtlpStats::get(&stats.failures) >= 1 && OtlpStats::get(&stats.dropped) >= 2
        })
        .await;
        assert_eq!(OtlpStats::get(&stats.exported), 0);
        let metrics = crate::support::scrape::metrics(&http, &base).await;
        assert!(
            !metrics.contains("breakerbox_otlp_export_failures_total 0\n")
                && metrics.contains("breakerbox_otlp_export_failures_total "),
            "{metrics}"
        );
        exporter.stop(Duration::from_secs(1)).await;
        running.stop().await;
    }
    // The busy collector was asked again (retry-after: 0), so it saw each batch twice.
    assert!(busy_received.all().len() >= 2);
}

/// A transport in memory: when each batch arrived (tokio's clock) and how many spans it held;
/// answers busy the first `busy` times.
#[derive(Clone, Default)]
struct Memory {
    sent: Arc<Mutex<Vec<(Duration, usize)>>>,
    busy: Arc<Mutex<u32>>,
    start: Arc<Mutex<Option<tokio::time::Instant>>>,
}

impl Memory {
    fn sent(&self) -> Vec<(Duration, usize)> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Transport for Memory {
    fn send(&self, body: String) -> impl std::future::Future<Output = Sent> + Send {
        let me = self.clone();
        async move {
            let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let n = json["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .map_or(0, Vec::len);
            let start = me
                .start
                .lock()
                .ok()
                .and_then(|s| *s)
                .unwrap_or_else(tokio::time::Instant::now);
            if let Ok(mut sent) = me.sent.lock() {
                sent.push((start.elapsed(), n));
            }
            let mut busy = me.busy.lock().unwrap();
            if *busy > 0 {
                *busy -= 1;
                return Sent::Retry {
                    why: "busy".into(),
                    retry_after: Some(Duration::from_secs(5)),
                };
            }
            Sent::Accepted
        }
    }
}

/// One request's events: started, one attempt, finished.
fn one_request(bus: &Bus, id: &str) {
    bus.publish(request_started(id, Source::Load, &["anthropic"], None));
    bus.publish(attempt_started(id, 1, "anthropic", "m"));
    bus.publish(request_finished(
        id,
        Finished {
            provider: Some("anthropic"),
            stop_reason: Some("end_turn"),
            attempts: 1,
            ..Finished::default()
        },
    ));
}

/// Under paused time: a lone request's spans wait for the interval; a full batch goes at once;
/// a busy answer is honoured (`Retry-After` 5 s) and the batch then delivered.
#[tokio::test(start_paused = true)]
async fn batches_wait_for_the_interval_or_go_when_full_and_honour_retry_after() {
    let bus = Bus::new(4096);
    let memory = Memory::default();
    *memory.start.lock().unwrap() = Some(tokio::time::Instant::now());
    let mut config = OtlpConfig::new("http://127.0.0.1:9/v1/traces".parse().unwrap());
    config.batch_spans = 4;
    config.interval = Duration::from_secs(1);
    let exporter = OtlpExporter::with_transport(&bus, config, memory.clone());
    let stats = exporter.stats();
    tokio::time::sleep(Duration::from_millis(100)).await;
    one_request(&bus, "r1");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(memory.sent().is_empty(), "{:?}", memory.sent());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(memory.sent(), vec![(Duration::from_secs(1), 2)]);

    // Two requests fill a batch of 4: sent without waiting for the tick.
    tokio::time::sleep(Duration::from_millis(200)).await;
    one_request(&bus, "r2");
    one_request(&bus, "r3");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(memory.sent().len(), 2, "{:?}", memory.sent());
    assert_eq!(memory.sent()[1], (Duration::from_millis(1300), 4));

    // Busy once: the same batch again 5 s later.
    *memory.busy.lock().unwrap() = 1;
    one_request(&bus, "r4");
    one_request(&bus, "r5");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let sent = memory.sent();
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert_eq!(sent[3].0 - sent[2].0, Duration::from_secs(5));
    assert_eq!(OtlpStats::get(&stats.exported), 10);
    assert_eq!(OtlpStats::get(&stats.dropped), 0);
    assert_eq!(OtlpStats::get(&stats.failures), 0);

    // A request still open at the stop goes out, unfinished.
    bus.publish(request_started("r6", Source::Load, &["anthropic"], None));
    tokio::time::sleep(Duration::from_millis(10)).await;
    exporter.stop(Duration::from_secs(5)).await;
    assert_eq!(OtlpStats::get(&stats.exported), 11);
}

/// The queue is bounded: with the collector never taking a batch, the oldest spans are dropped
/// and counted, whatever keeps arriving.
#[tokio::test(start_paused = true)]
async fn a_full_queue_drops_its_oldest_spans_and_counts_them() {
    let bus = Bus::new(4096);
    let memory = Memory::default();
    *memory.busy.lock().unwrap() = u32::MAX;
    let mut config = OtlpConfig::new("http://127.0.0.1:9/v1/traces".parse().unwrap());
    config.queue_spans = 10;
    config.batch_spans = 100;
    config.retries = 0;
    let exporter = OtlpExporter::with_transport(&bus, config, memory.clone());
    let stats = exporter.stats();
    tokio::time::sleep(Duration::from_millis(10)).await;
    for i in 0..50 {
        one_request(&bus, &format!("r{i}"));
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    // 100 spans into a queue of 10, before the first tick sends any.
    assert_eq!(OtlpStats::get(&stats.dropped), 90);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(OtlpStats::get(&stats.failures), 1);
    assert_eq!(OtlpStats::get(&stats.dropped), 100);
    exporter.stop(Duration::from_secs(1)).await;
}
