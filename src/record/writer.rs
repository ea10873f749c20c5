//! Writing a recording: line 1 the header, then every event exactly as on the bus, one JSON line each.
//!
//! Crash safety comes from only ever handing the OS whole lines: events are serialized into a buffer
//! that always ends in `\n`, and the buffer is written with one `write_all` when it is flushed (at
//! most ~100 ms after an event arrives, at once when the bus goes idle, and on `finish`). A process
//! killed with SIGKILL therefore leaves a file whose complete lines all parse; at worst the very
//! last line is torn, which the reader reports and skips.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use toml::Spanned;

use super::reader::RecordError;
use super::{FORMAT, MAX_LINE, RECORDING_VERSION, SessionHeader};
use crate::config::{
    BreakerSection, ChainEntry, Config, ProviderEntry, RetrySection, SimEntry, TargetEntry,
};
use crate::event::{Bus, Event, EventKind, Mode, ProviderInfo, Received, next, try_next};

/// The longest an event waits in the buffer before it is written (the "about 100 ms").
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Write early when this much is buffered, so a burst never holds much in memory.
const FLUSH_BYTES: usize = 64 * 1024;

/// Starts recorders. See [`Recorder::start`].
pub struct Recorder;

/// A running recorder; [`RecorderHandle::finish`] flushes and closes the file.
pub struct RecorderHandle {
    path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<RecordSummary>>,
}

/// What a recorder wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSummary {
    /// Events written (the header not counted).
    pub events: u64,
    /// Events the recorder missed because it fell behind the bus (the file lacks them).
    pub lost: u64,
    /// Events left out because even without their text they exceed a line's limit.
    pub oversized: u64,
    /// The first write error, after which nothing more was written.
    pub error: Option<String>,
}

impl Recorder {
    /// Create (or truncate) `path`, write the header, and record every event published on `bus`
    /// from now on. The subscription is taken before this returns, so no later event is missed.
    /// With `redact`, prompt text and reply text are left out (and the header says so).
    pub fn start(
        path: &Path,
        header: &SessionHeader,
        bus: &Bus,
        redact: bool,
    ) -> Result<RecorderHandle, RecordError> {
        let rx = bus.subscribe();
        let shown = path.display().to_string();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| {
                RecordError(format!(
                    "cannot create the recording {shown}: {e} (check that its directory exists and is writable)"
                ))
            })?;
        let mut header = header.clone();
        header.redacted |= redact;
        let mut line = serde_json::to_vec(&header)
            .map_err(|e| RecordError(format!("cannot encode the recording's header: {e}")))?;
        line.push(b'\n');
        file.write_all(&line)
            .and_then(|()| file.flush())
            .map_err(|e| RecordError(format!("cannot write the recording {shown}: {e}")))?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(record(file, shown, rx, stop_rx, redact));
        Ok(RecorderHandle {
            path: path.to_path_buf(),
            stop: Some(stop_tx),
            task: Some(task),
        })
    }
}

impl RecorderHandle {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write every event already published, flush, sync and close. A lag or a write error is
    /// reported on stderr (the console has given the terminal back by then) and returned.
    pub async fn finish(mut self) -> RecordSummary {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let summary = match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|e| RecordSummary {
                error: Some(format!("the recorder stopped unexpectedly: {e}")),
                ..RecordSummary::default()
            }),
            None => RecordSummary::default(),
        };
        let path = self.path.display();
        if summary.lost > 0 {
            eprintln!(
                "breakerbox: the recording {path} is missing {} events: the recorder fell behind the event bus",
                summary.lost
            );
        }
        if summary.oversized > 0 {
            eprintln!(
                "breakerbox: the recording {path} is missing {} events larger than a line may be ({} MiB)",
                summary.oversized,
                MAX_LINE / (1024 * 1024)
            );
        }
        if let Some(e) = &summary.error {
            eprintln!("breakerbox: the recording {path} is incomplete: {e}");
        }
        summary
    }
}

impl Drop for RecorderHandle {
    /// Dropped without `finish` (an error path): still ask the task to write what it has.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The recorder's task: buffer lines, flush on idle, on the interval, when large, and at the end.
async fn record(
    file: std::fs::File,
    shown: String,
    mut rx: tokio::sync::broadcast::Receiver<std::sync::Arc<Event>>,
    mut stop: oneshot::Receiver<()>,
    redact: bool,
) -> RecordSummary {
    let mut out = LineSink {
        file,
        buf: Vec::with_capacity(FLUSH_BYTES),
        summary: RecordSummary::default(),
    };
    let mut ticker = tokio::time::interval(FLUSH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            received = next(&mut rx) => match received {
                Some(Received::Event(event)) => {
                    out.push(&event, redact);
                    // Idle: nothing else waiting, so write now rather than at the next tick.
                    if rx.is_empty() || out.buf.len() >= FLUSH_BYTES {
                        out.flush();
                    }
                }
                Some(Received::Lagged(n)) => {
                    out.summary.lost += n;
                    tracing::warn!(recording = %shown, lost = n, "the recorder fell behind the event bus; events are missing from the recording");
                }
                None => break,
            },
            _ = ticker.tick() => out.flush(),
        }
    }
    // Whatever was published before `finish` is still in the channel: write it too.
    while let Some(received) = try_next(&mut rx) {
        match received {
            Received::Event(event) => out.push(&event, redact),
            Received::Lagged(n) => out.summary.lost += n,
        }
    }
    out.flush();
    if out.summary.error.is_none()
        && let Err(e) = out.file.sync_data()
    {
        out.summary.error = Some(format!("cannot sync it to disk: {e}"));
    }
    out.summary
}

struct LineSink {
    file: std::fs::File,
    buf: Vec<u8>,
    summary: RecordSummary,
}

impl LineSink {
    fn push(&mut self, event: &Event, redact: bool) {
        if self.summary.error.is_some() {
            return;
        }
        let start = self.buf.len();
        let encoded = if redact {
            serde_json::to_writer(&mut self.buf, &redacted(event))
        } else {
            serde_json::to_writer(&mut self.buf, event)
        };
        // Events are bounded (prompt excerpts, text in pieces), so a line over the reader's limit
        // cannot be written by this breakerbox; if one ever were, it is written without its text
        // rather than as a line no reader takes.
        let encoded = match encoded {
            Ok(()) if self.buf.len() - start > MAX_LINE && !redact => {
                self.buf.truncate(start);
                tracing::warn!("an event is too large for the recording; written without its text");
                serde_json::to_writer(&mut self.buf, &redacted(event))
            }
            other => other,
        };
        match encoded {
            Ok(()) if self.buf.len() - start <= MAX_LINE => {
                self.buf.push(b'\n');
                self.summary.events += 1;
            }
            Ok(()) => {
                self.buf.truncate(start);
                self.summary.oversized += 1;
            }
            // Cannot happen for these types; never write a partial line if it somehow does.
            Err(e) => {
                self.buf.truncate(start);
                tracing::warn!("cannot encode an event for the recording: {e}");
            }
        }
    }

    /// One `write_all` of whole lines.
    fn flush(&mut self) {
        if self.buf.is_empty() || self.summary.error.is_some() {
            return;
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            tracing::warn!("cannot write the recording: {e}");
            self.summary.error = Some(format!("cannot write to it: {e}"));
        }
        self.buf.clear();
    }
}

/// The event without prompt or reply text.
fn redacted(event: &Event) -> Event {
    let mut event = event.clone();
    match &mut event.kind {
        EventKind::RequestStarted { prompt, .. } => *prompt = None,
        EventKind::TextDelta { text, .. } => text.clear(),
        _ => {}
    }
    event
}

/// The header for a session starting now: what ran and with which settings, every secret removed.
pub fn session_header(
    mode: Mode,
    providers: &[ProviderInfo],
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    redacted: bool,
) -> SessionHeader {
    SessionHeader {
        format: FORMAT.to_string(),
        format_version: RECORDING_VERSION,
        breakerbox_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: Utc::now(),
        mode,
        providers: providers.to_vec(),
        config: config_summary(mode, config, env),
        redacted,
    }
}

/// The settings that explain what a session did. Keys never appear: only the *names* of the
/// variables that hold them, and base URLs lose any user info and query (where keys hide too).
pub fn config_summary(
    mode: Mode,
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> serde_json::Value {
    let providers = if mode == Mode::Demo {
        simulated_providers(config)
    } else {
        configured_providers(config, env)
    };
    json!({
        "source": config.source.as_ref().map(|p| p.display().to_string()),
        "providers": providers,
        "chains": config.chains.iter().map(chain_summary).collect::<Vec<_>>(),
        "timeouts_ms": timeouts_summary(config),
        "breaker": breaker_summary(&config.breaker),
        "retry": retry_summary(&config.retry),
        "engine": {
            "when_all_open": format!("{:?}", config.engine.when_all_open),
            "retry_silent_timeouts": config.engine.retry_silent_timeouts,
        },
        "sim_seed": (mode == Mode::Demo).then_some(config.sim.seed),
        // Where the fleet's Redis is (host:port only: the URL may hold a password).
        "cluster": config.cluster.redis.as_ref().map(|url| json!({
            "redis": crate::cluster::address(url.get_ref()).unwrap_or_default(),
            "name": config.cluster.name.as_deref().unwrap_or("breakerbox"),
            "instance": config.cluster.instance,
        })),
    })
}

/// Demo mode's providers: the simulated ones and their faults.
fn simulated_providers(config: &Config) -> Vec<Value> {
    let provider = |p: &SimEntry| {
        json!({
            "name": p.name,
            "protocol": p.protocol.to_string(),
            "model": p.model,
            "simulated": true,
            "fault": p.fault.as_ref().map(|f| f.0.to_string()),
        })
    };
    config.sim.providers.iter().map(provider).collect()
}

/// The configured providers: where each is reached (secrets stripped) and which variable holds
/// its key.
fn configured_providers(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Vec<Value> {
    let timeouts = config.timeouts.to_timeouts();
    let provider = |p: &ProviderEntry| {
        let resolved = p.resolve(timeouts, env);
        let key_var = p
            .api_key_env
            .clone()
            .unwrap_or_else(|| default_key_var(p.protocol));
        json!({
            "name": p.name(),
            "protocol": p.protocol.to_string(),
            "model": p.model,
            "base_url": strip_url_secrets(&resolved.base_url),
            "api_key_env": key_var,
            "breaker": format!("{:?}", p.breaker).to_lowercase(),
        })
    };
    config.providers.iter().map(provider).collect()
}

fn chain_summary(chain: &ChainEntry) -> Value {
    let target = |t: &Spanned<TargetEntry>| {
        let t = t.get_ref();
        match t.model() {
            Some(m) => format!("{}/{m}", t.provider()),
            None => t.provider().to_string(),
        }
    };
    json!({
        "name": chain.name.get_ref(),
        "targets": chain.targets.iter().map(target).collect::<Vec<_>>(),
        "mid_stream": format!("{:?}", chain.mid_stream),
        "hedge": chain.hedge.0.map_or_else(|| "off".to_string(), |h| format!("{h:?}")),
    })
}

fn timeouts_summary(config: &Config) -> Value {
    let t = config.timeouts.to_timeouts();
    json!({
        "connect": ms(t.connect),
        "headers": ms(t.headers),
        "first_event": ms(t.first_event),
        "idle": ms(t.idle),
        "total": ms(t.total),
    })
}

fn breaker_summary(b: &BreakerSection) -> Value {
    json!({
        "consecutive_failures": b.consecutive_failures,
        "failure_rate": b.failure_rate,
        "window_ms": ms(b.window.0),
        "min_calls": b.min_calls,
        "recovery_ms": ms(b.recovery.0),
        "recovery_growth": b.recovery_growth,
        "recovery_max_ms": ms(b.recovery_max.0),
        "half_open_probes": b.half_open_probes,
        "open_on_retry_after_ms": b.open_on_retry_after.0.map(ms),
    })
}

fn retry_summary(r: &RetrySection) -> Value {
    json!({
        "max_retries": r.max_retries,
        "max_attempts": r.max_attempts,
        "min_delay_ms": ms(r.min_delay.0),
        "max_delay_ms": ms(r.max_delay.0),
        "factor": r.factor,
        "jitter": r.jitter,
        "retry_after_cap_ms": ms(r.retry_after_cap.0),
        "budget_capacity": r.budget_capacity,
        "budget_refill_per_sec": r.budget_refill_per_sec,
    })
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn default_key_var(protocol: crate::provider::Protocol) -> String {
    match protocol {
        crate::provider::Protocol::Anthropic => "ANTHROPIC_API_KEY",
        crate::provider::Protocol::Openai | crate::provider::Protocol::OpenaiResponses => {
            "OPENAI_API_KEY"
        }
        crate::provider::Protocol::Gemini => "GEMINI_API_KEY",
        crate::provider::Protocol::Bedrock => "AWS_BEARER_TOKEN_BEDROCK",
        crate::provider::Protocol::Azure => crate::protocol::azure::API_KEY_ENV,
    }
    .to_string()
}

/// `https://user:key@host/v1?key=…#x` → `https://host/v1`: user info, query and fragment can carry
/// credentials, and the host and path are all a reader of the recording needs.
pub fn strip_url_secrets(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or("");
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match scheme {
        Some(s) => format!("{s}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

/// Where the console records by default: `breakerbox/sessions` in the platform's data directory
/// (the `dirs` crate: `$XDG_DATA_HOME`, else `~/.local/share` — the home directory from `HOME`,
/// else the password database —; `~/Library/Application Support` on macOS).
pub fn default_sessions_dir() -> Result<PathBuf, String> {
    dirs::data_dir()
        .map(|data| data.join("breakerbox").join("sessions"))
        .ok_or_else(|| {
            "there is no data directory (no XDG_DATA_HOME, HOME or home directory in the \
             password database): record with --record FILE, or --no-record"
                .to_string()
        })
}

/// `session-YYYYMMDD-HHMMSS.jsonl`, UTC.
pub fn session_file_name(at: chrono::DateTime<Utc>) -> String {
    format!("session-{}.jsonl", at.format("%Y%m%d-%H%M%S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_secrets_are_stripped() {
        assert_eq!(
            strip_url_secrets("https://u:sk-x@api.example.com/v1?key=sk-y#f"),
            "https://api.example.com/v1"
        );
        assert_eq!(
            strip_url_secrets("http://127.0.0.1:9/anthropic"),
            "http://127.0.0.1:9/anthropic"
        );
        assert_eq!(strip_url_secrets("host:1@x"), "x");
    }

    #[test]
    fn session_files_are_named_by_their_start() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .map(|t| t.with_timezone(&Utc));
        assert_eq!(
            t.map(session_file_name).ok().as_deref(),
            Some("session-20260102-030405.jsonl")
        );
    }
}
