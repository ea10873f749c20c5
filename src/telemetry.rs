//! Live OpenTelemetry (`serve --otlp-endpoint URL`): the spans of [`crate::record::otlp`] — one per
//! request, one child per attempt — folded from the bus as requests end and sent to a collector
//! over OTLP/HTTP in its JSON encoding.
//!
//! ```text
//!  bus ─► fold task (otlp::Spans) ─► queue (bounded: the oldest span goes when full) ─► send task
//!                                                         batches of ≤ 512, every second ─┘  │
//!                                          POST {endpoint}/v1/traces (application/json) ◄────┘
//! ```
//!
//! The engine never waits for any of it: the fold reads the bus like any other consumer (falling
//! behind loses events for the spans, counted, never slows a request), and a slow or absent
//! collector only fills the queue, whose oldest spans are then dropped and counted. A batch the
//! collector refuses with 429, 502, 503 or 504 (or a connection that fails) is sent again after
//! its `Retry-After` or a backoff, a few times, then dropped and counted as a failure. No
//! redirects are followed (they would carry the headers elsewhere) and every request has a
//! timeout. The headers (`OTEL_EXPORTER_OTLP_HEADERS`, often a collector's credentials) are
//! never logged; spans carry no provider key nor the gateway's token, only what the events say.
//!
//! Hand-written rather than `opentelemetry-otlp`: that crate exports spans made by its own SDK
//! (`opentelemetry_sdk`, with prost and tonic behind it), while these are built from recorded
//! events, with their own times and ids; what remains is a bounded queue and one POST.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::event::{Bus, Fold, Received};
use crate::record::otlp::{Spans, envelope_of};

/// The path a collector takes traces at, under its base URL.
pub const TRACES_PATH: &str = "/v1/traces";

/// Where and how spans go.
#[derive(Clone)]
pub struct OtlpConfig {
    /// The URL spans are POSTed to (`…/v1/traces`).
    pub traces_url: reqwest::Url,
    /// Sent with every request (`OTEL_EXPORTER_OTLP_HEADERS`); marked sensitive.
    pub headers: HeaderMap,
    /// The most spans in one request.
    pub batch_spans: usize,
    /// How long a span waits for a batch to fill.
    pub interval: Duration,
    /// The most spans held waiting; past it the oldest are dropped.
    pub queue_spans: usize,
    /// Each request's limit, connecting included.
    pub timeout: Duration,
    /// Sends again of a batch refused as busy (429, 502, 503, 504) or not delivered.
    pub retries: u32,
    /// The longest wait before sending again, whatever `Retry-After` says.
    pub max_backoff: Duration,
}

impl std::fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("OtlpConfig")
            .field("traces_url", &self.traces_url.as_str())
            .field("headers", &names)
            .field("batch_spans", &self.batch_spans)
            .field("interval", &self.interval)
            .field("queue_spans", &self.queue_spans)
            .finish_non_exhaustive()
    }
}

impl OtlpConfig {
    /// Defaults around `traces_url`: batches of up to 512 spans at least every second, 4,096
    /// spans queued, 10 s per request, 3 sends again with at most 30 s between.
    pub fn new(traces_url: reqwest::Url) -> OtlpConfig {
        OtlpConfig {
            traces_url,
            headers: HeaderMap::new(),
            batch_spans: 512,
            interval: Duration::from_secs(1),
            queue_spans: 4096,
            timeout: Duration::from_secs(10),
            retries: 3,
            max_backoff: Duration::from_secs(30),
        }
    }

    /// The exporter's settings from `--otlp-endpoint` (a collector's base URL, `/v1/traces`
    /// added unless it ends so already), else the standard variables:
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the whole URL), `OTEL_EXPORTER_OTLP_ENDPOINT` (a base
    /// URL), and `OTEL_EXPORTER_OTLP_TRACES_HEADERS` / `OTEL_EXPORTER_OTLP_HEADERS`
    /// (`key=value,…`, values percent-decoded). `None`: no export asked for.
    pub fn resolve(
        flag: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<OtlpConfig>, String> {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let (url, source) = if let Some(flag) = flag {
            (with_traces_path(flag), "--otlp-endpoint")
        } else if let Some(url) = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            (url.trim().to_string(), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        } else if let Some(base) = set("OTEL_EXPORTER_OTLP_ENDPOINT") {
            (with_traces_path(&base), "OTEL_EXPORTER_OTLP_ENDPOINT")
        } else {
            return Ok(None);
        };
        let traces_url = parse_url(&url).map_err(|why| format!("{source}: {why}"))?;
        let mut config = OtlpConfig::new(traces_url);
        let headers = set("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .map(|h| ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", h))
            .or_else(|| {
                set("OTEL_EXPORTER_OTLP_HEADERS").map(|h| ("OTEL_EXPORTER_OTLP_HEADERS", h))
            });
        if let Some((name, text)) = headers {
            config.headers = parse_headers(&text).map_err(|why| format!("{name}: {why}"))?;
        }
        Ok(Some(config))
    }
}

/// `base` with `/v1/traces` after its path, unless it ends so already.
fn with_traces_path(base: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    if base.ends_with(TRACES_PATH) {
        base.to_string()
    } else {
        format!("{base}{TRACES_PATH}")
    }
}

fn parse_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|e| {
        format!(
            "`{}` is not a URL ({e}); e.g. http://127.0.0.1:4318",
            crate::secret::url_for_display(text)
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{}` is not an http:// or https:// URL (OTLP/HTTP only)",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "credentials in the URL are not accepted; put them in OTEL_EXPORTER_OTLP_HEADERS \
             (e.g. `Authorization=Basic …`)"
                .to_string(),
        );
    }
    Ok(url)
}

/// `key=value,key2=value2` (W3C baggage style, as the OpenTelemetry SDKs read it). The error names
/// the header, never its value.
fn parse_headers(text: &str) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (i, pair) in text.split(',').enumerate() {
        if pair.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("entry {} is not `key=value`", i + 1));
        };
        let key = key.trim();
        let name = HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| format!("`{key}` is not a header name"))?;
        let decoded = percent_decode(value.trim());
        let mut value = HeaderValue::from_str(&decoded)
            .map_err(|_| format!("the value of `{key}` is not a valid header value"))?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    Ok(headers)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let (h, l) = (hex(h).unwrap_or(0), hex(l).unwrap_or(0));
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the exporter has done, for `/metrics` (`breakerbox_otlp_*`).
#[derive(Debug, Default)]
pub struct OtlpStats {
    /// Spans the collector accepted.
    pub exported: AtomicU64,
    /// Spans lost: pushed out of a full queue, or in a batch that could not be delivered.
    pub dropped: AtomicU64,
    /// Requests to the collector that failed for good (after their sends again).
    pub failures: AtomicU64,
    /// Events the fold missed because it fell behind the bus (their spans are incomplete).
    pub events_missed: AtomicU64,
}

impl OtlpStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// How one request to the collector went.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    Accepted,
    /// Busy or unreachable: worth sending again, after `retry_after` if it said.
    Retry {
        why: String,
        retry_after: Option<Duration>,
    },
    /// Refused (a 4xx but 429, a body it cannot read): sending again would not help.
    Refused {
        why: String,
    },
}

/// Where batches go: the collector over HTTP, or a stand-in in tests.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, body: String) -> impl Future<Output = Sent> + Send;
}

/// OTLP/HTTP with reqwest: JSON bodies, no redirects, a timeout per request.
pub struct Http {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
}

impl Http {
    pub fn new(config: &OtlpConfig) -> Result<Http, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| format!("cannot make the OTLP client: {e}"))?;
        Ok(Http {
            client,
            url: config.traces_url.clone(),
            headers: config.headers.clone(),
        })
    }
}

impl Transport for Http {
    fn send(&self, body: String) -> impl Future<Output = Sent> + Send {
        let request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        async move {
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        return Sent::Accepted;
                    }
                    let retry_after = crate::provider::http::retry_after(response.headers());
                    let why = format!("the collector answered {status}");
                    match status.as_u16() {
                        429 | 502 | 503 | 504 => Sent::Retry { why, retry_after },
                        _ => Sent::Refused { why },
                    }
                }
                // Without the URL: it is the operator's own, but errors need not repeat it.
                Err(e) => Sent::Retry {
                    why: format!("cannot reach the collector: {}", e.without_url()),
                    retry_after: None,
                },
            }
        }
    }
}

/// Finished spans, serialized, waiting to be sent; bounded.
struct Queue {
    spans: Mutex<VecDeque<String>>,
    cap: usize,
    /// Told when a batch is full, and when the fold is done.
    ready: Notify,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add a span, dropping the oldest when full; whether a batch of `batch` is ready.
    fn push(&self, span: String, batch: usize, stats: &OtlpStats) -> bool {
        let mut spans = self.lock();
        while spans.len() >= self.cap.max(1) {
            spans.pop_front();
            OtlpStats::add(&stats.dropped, 1);
        }
        spans.push_back(span);
        spans.len() >= batch
    }

    fn take(&self, n: usize) -> Vec<String> {
        let mut spans = self.lock();
        let n = n.min(spans.len());
        spans.drain(..n).collect()
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A running live exporter. [`OtlpExporter::stop`] sends what is left.
pub struct OtlpExporter {
    stats: Arc<OtlpStats>,
    stop: CancellationToken,
    fold: JoinHandle<()>,
    sender: JoinHandle<()>,
    queue: Arc<Queue>,
}

impl OtlpExporter {
    /// Export the spans of the requests on `bus` to the collector `config` names. Subscribes at
    /// once: start it before the session's first event to have its providers' addresses.
    pub fn start(bus: &Bus, config: OtlpConfig) -> Result<OtlpExporter, String> {
        let http = Http::new(&config)?;
        Ok(Self::with_transport(bus, config, http))
    }

    /// [`OtlpExporter::start`] with another way of sending (tests).
    pub fn with_transport<T: Transport>(
        bus: &Bus,
        config: OtlpConfig,
        transport: T,
    ) -> OtlpExporter {
        let rx = bus.subscribe();
        let stats = Arc::new(OtlpStats::default());
        let stop = CancellationToken::new();
        let queue = Arc::new(Queue {
            spans: Mutex::new(VecDeque::new()),
            cap: config.queue_spans,
            ready: Notify::new(),
        });
        let done = CancellationToken::new();
        // Ids unique to this process's session, stable within it.
        let key = format!(
            "{}-{}",
            chrono::Utc::now().timestamp_micros(),
            std::process::id()
        );
        let fold = tokio::spawn(fold_spans(
            rx,
            Spans::new(&key, &[]),
            Arc::clone(&queue),
            config.batch_spans,
            Arc::clone(&stats),
            (stop.clone(), done.clone()),
        ));
        let sender = tokio::spawn(send_batches(
            transport,
            config,
            Arc::clone(&queue),
            Arc::clone(&stats),
            done,
        ));
        OtlpExporter {
            stats,
            stop,
            fold,
            sender,
            queue,
        }
    }

    pub fn stats(&self) -> Arc<OtlpStats> {
        Arc::clone(&self.stats)
    }

    /// Stop folding (requests still open are sent as unfinished spans, status unset), then give
    /// the sender `within` to deliver what is queued; what is left then is dropped and counted.
    pub async fn stop(self, within: Duration) {
        self.stop.cancel();
        let _ = self.fold.await;
        let mut sender = self.sender;
        if tokio::time::timeout(within, &mut sender).await.is_err() {
            sender.abort();
            let left = self.queue.take(usize::MAX).len() as u64;
            OtlpStats::add(&self.stats.dropped, left);
        }
    }
}

/// Fold the bus into spans and queue each as its request ends, until stopped (or the bus closes);
/// then the requests still open, and `done` tells the sender.
async fn fold_spans(
    mut rx: tokio::sync::broadcast::Receiver<Arc<crate::event::Event>>,
    mut spans: Spans,
    queue: Arc<Queue>,
    batch: usize,
    stats: Arc<OtlpStats>,
    (stop, done): (CancellationToken, CancellationToken),
) {
    let queue_all = |spans: &mut Spans| {
        let mut full = false;
        for span in spans.take() {
            full |= queue.push(span.to_string(), batch, &stats);
        }
        if full {
            queue.ready.notify_one();
        }
    };
    let apply = |received: Received, spans: &mut Spans| match received {
        Received::Event(event) => spans.apply(&event),
        Received::Lagged(n) => {
            OtlpStats::add(&stats.events_missed, n);
            tracing::warn!("the OTLP exporter fell behind the events: {n} missed");
        }
    };
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            received = crate::event::next(&mut rx) => match received {
                Some(received) => apply(received, &mut spans),
                None => break,
            },
        }
        queue_all(&mut spans);
    }
    // What had arrived by the stop still counts.
    while let Some(received) = crate::event::try_next(&mut rx) {
        apply(received, &mut spans);
    }
    spans.finish(chrono::Utc::now());
    queue_all(&mut spans);
    done.cancel();
    queue.ready.notify_one();
}

/// Send the queue in batches: a full batch at once, a partial one at each interval; once `done`,
/// everything left, then return.
async fn send_batches<T: Transport>(
    transport: T,
    config: OtlpConfig,
    queue: Arc<Queue>,
    stats: Arc<OtlpStats>,
    done: CancellationToken,
) {
    // The envelope around no spans, split where the spans go.
    let shell = envelope_of(env!("CARGO_PKG_VERSION"), Vec::new()).to_string();
    let at = shell
        .rfind("\"spans\":[]")
        .map_or(shell.len(), |i| i + "\"spans\":[".len());
    let (open, close) = shell.split_at(at);
    let batch_spans = config.batch_spans.max(1);
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned: Option<tokio::time::Instant> = None;
    loop {
        let finished = done.is_cancelled();
        if !finished {
            tokio::select! {
                _ = tick.tick() => {}
                () = queue.ready.notified() => {}
            }
        }
        loop {
            let batch = queue.take(batch_spans);
            if batch.is_empty() {
                break;
            }
            let n = batch.len() as u64;
            let body = format!("{open}{}{close}", batch.join(","));
            drop(batch);
            match deliver(&transport, body, &config).await {
                Ok(()) => OtlpStats::add(&stats.exported, n),
                Err(why) => {
                    OtlpStats::add(&stats.failures, 1);
                    OtlpStats::add(&stats.dropped, n);
                    // One line a minute at most: a collector that is down fails every batch.
                    let now = tokio::time::Instant::now();
                    if warned.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
                        warned = Some(now);
                        tracing::warn!(
                            "OTLP export to {} failed, {n} spans dropped: {why}",
                            config.traces_url
                        );
                    }
                }
            }
            // A partial batch waits for the next tick, unless the fold is done.
            if queue.len() < batch_spans && !done.is_cancelled() {
                break;
            }
        }
        if finished && queue.len() == 0 {
            return;
        }
    }
}

/// One batch, sent again while the collector says it is busy (honouring its `Retry-After`, at
/// most `max_backoff`) or cannot be reached, `retries` times at most.
async fn deliver<T: Transport>(
    transport: &T,
    body: String,
    config: &OtlpConfig,
) -> Result<(), String> {
    let mut backoff = Duration::from_millis(500);
    let mut tries = 0;
    loop {
        match transport.send(body.clone()).await {
            Sent::Accepted => return Ok(()),
            Sent::Refused { why } => return Err(why),
            Sent::Retry { why, retry_after } => {
                if tries >= config.retries {
                    return Err(why);
                }
                tries += 1;
                let wait = retry_after.unwrap_or(backoff).min(config.max_backoff);
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(config.max_backoff);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn the_flag_then_the_standard_variables_name_the_collector() {
        let none = env(&[]);
        assert!(matches!(OtlpConfig::resolve(None, &none), Ok(None)));
        let url = |flag: Option<&str>, e: &dyn Fn(&str) -> Option<String>| {
            OtlpConfig::resolve(flag, e)
                .ok()
                .flatten()
                .map(|c| c.traces_url.to_string())
        };
        assert_eq!(
            url(Some("http://127.0.0.1:4318"), &none).as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(
            url(Some("http://c:4318/v1/traces/"), &none).as_deref(),
            Some("http://c:4318/v1/traces")
        );
        let base = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otel.example/otlp")]);
        assert_eq!(
            url(None, &base).as_deref(),
            Some("https://otel.example/otlp/v1/traces")
        );
        let both = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otel.example/otlp"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://t.example/in"),
        ]);
        assert_eq!(url(None, &both).as_deref(), Some("https://t.example/in"));
        assert_eq!(
            url(Some("http://flag:1"), &both).as_deref(),
            Some("http://flag:1/v1/traces")
        );
    }

    #[test]
    fn bad_endpoints_and_headers_are_refused_without_echoing_secrets() {
        let none = env(&[]);
        let err = |flag: &str| {
            OtlpConfig::resolve(Some(flag), &none)
                .err()
                .unwrap_or_default()
        };
        assert!(err("not a url").contains("--otlp-endpoint"));
        assert!(err("grpc://c:4317").contains("http"));
        let creds = err("http://user:s3cret@c:4318");
        assert!(creds.contains("OTEL_EXPORTER_OTLP_HEADERS") && !creds.contains("s3cret"));
        let bad = env(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer s3cret\u{1}x",
        )]);
        let e = OtlpConfig::resolve(Some("http://c:1"), &bad)
            .err()
            .unwrap_or_default();
        assert!(e.contains("authorization") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn headers_are_read_decoded_and_kept_out_of_debug() {
        let vars = env(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "Authorization=Basic%20czNjcmV0, x-scope = tenant-1 ,",
        )]);
        let config = OtlpConfig::resolve(Some("http://c:1"), &vars)
            .ok()
            .flatten()
            .expect("a config");
        assert_eq!(
            config.headers.get("authorization").map(|v| v.as_bytes()),
            Some(&b"Basic czNjcmV0"[..])
        );
        assert_eq!(
            config.headers.get("x-scope").map(|v| v.as_bytes()),
            Some(&b"tenant-1"[..])
        );
        let debug = format!("{config:?}");
        assert!(!debug.contains("czNjcmV0"), "{debug}");
    }
}
