//! The gateway's cost, measured from outside with real processes on loopback:
//!
//! - two `breakerbox sim` processes, no jitter: one at zero latency, one pacing tokens
//!   `BENCH_GATEWAY_PACE` apart (default 10ms), like a model;
//! - `breakerbox serve --headless`, its providers on both simulators: the models `default`
//!   (anthropic → openai) and `oai` (openai → anthropic), and `default-paced` / `oai-paced`;
//! - `breakerbox serve --demo --headless` with a zero-latency `[sim]` (the simulator in-process);
//! - a bare pass-through proxy (this binary re-run: hyper + reqwest, no parsing): what one extra
//!   HTTP hop costs on this machine, the floor any gateway starts from;
//! - optionally another gateway serving the same four model names (LiteLLM's proxy, for example):
//!   `bench/gateway-compare.sh` starts one, with the simulators, and passes them in.
//!
//! Measured, each against the simulator called directly with the same protocol (first byte, first
//! token, last byte; p50 / p99 of each side, of their difference, and of paired differences):
//! - sequential pairs (direct, then through the gateway, or the other way round), zero latency;
//! - sequential pairs on the paced simulator with 2-token replies: each token arrives on its own;
//! - sequential pairs while the gateway carries `BENCH_GATEWAY_CLIENTS` paced streams;
//! - `BENCH_GATEWAY_CLIENTS` clients at once at zero latency (saturates 2 cores: queueing);
//! - `BENCH_GATEWAY_STREAMS` concurrent streaming clients for `BENCH_GATEWAY_SECS`, on each
//!   simulator: requests/s, events/s, errors, resident memory (sampled peak), CPU per process.
//!
//! Run: `cargo bench --bench gateway` (about 2 minutes). Knobs (environment, `0` turns a part
//! off): `BENCH_GATEWAY_N` (pairs, 2000), `BENCH_GATEWAY_PACED_N` (200),
//! `BENCH_GATEWAY_CLIENTS` (64), `BENCH_GATEWAY_STREAMS` (1000), `BENCH_GATEWAY_SECS` (10),
//! `BENCH_GATEWAY_PACE` (10ms), `BENCH_GATEWAY_PACED`, `BENCH_GATEWAY_DEMO`, `BENCH_GATEWAY_BARE`,
//! `BENCH_GATEWAY_WORKERS` (TOKIO_WORKER_THREADS for the breakerbox processes, an experiment);
//! passed in by the compare script: `BENCH_GATEWAY_SIM` / `BENCH_GATEWAY_PACED_SIM` (URLs, with
//! `_PID`), `BENCH_GATEWAY_OTHER=NAME=URL` with `BENCH_GATEWAY_OTHER_PID`, `BENCH_GATEWAY_OTHER_N`
//! and `BENCH_GATEWAY_OTHER_LOADED_N` (fewer pairs for a slow gateway).
//!
//! Client, gateways and simulators all share this machine's cores: the numbers are a floor.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark stops when its setup fails

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MAX_TOKENS: u32 = 50;
/// Tokens a reply of the paced probe asks for: a short reply, each token on its own.
const PACED_PROBE_TOKENS: u32 = 2;
/// Warm-up requests per path before measuring (connections, allocators, JIT-less caches).
const WARMUP: usize = 50;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Read `stream` until a line contains `marker`, return the first `http://` word on it, and keep
/// draining the stream in a thread so the child never blocks on a full pipe.
fn banner_url(stream: impl Read + Send + 'static, marker: &str) -> String {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("the banner");
        assert!(n > 0, "the process exited before printing `{marker}`");
        if line.contains(marker) {
            break;
        }
    }
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the banner names the address")
        .to_string();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    url
}

/// `breakerbox sim --config CONFIG` (see [`sim_config`]).
fn start_sim(config: &std::path::Path) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_breakerbox"))
        .arg("--config")
        .arg(config)
        .args(["sim", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the breakerbox binary starts");
    let out = child.stdout.take().expect("stdout is piped");
    (Proc(child), banner_url(out, "listening on"))
}

/// Simulated providers with no time to the first event, `token_delay` between tokens and no
/// jitter, so that a paced reply takes the same time on every path.
fn sim_config(token_delay: &str) -> String {
    let provider = |name: &str, protocol: &str, model: &str| {
        format!(
            "[[sim.providers]]\nname = \"{name}\"\nprotocol = \"{protocol}\"\nmodel = \"{model}\"\n\
             first_event_latency = \"0ms\"\ntoken_delay = \"{token_delay}\"\njitter = 0.0\n\n"
        )
    };
    format!(
        "[sim]\nseed = 0\n\n{}{}",
        provider("anthropic", "anthropic", "claude-sonnet-4-5"),
        provider("openai", "openai", "gpt-5"),
    )
}

/// `serve --headless` with `config`; its per-request log lines go to a drained pipe.
fn start_gateway(config: &std::path::Path, demo: bool) -> (Proc, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_breakerbox"));
    command.arg("--config").arg(config);
    if demo {
        command.arg("--demo");
    }
    command
        .args(["serve", "--headless", "--listen", "127.0.0.1:0"])
        .env("BENCH_SIM_KEY", "sim-key")
        .env_remove("BREAKERBOX_TOKEN");
    // An experiment: the gateway's tokio worker threads (tokio reads TOKIO_WORKER_THREADS).
    if let Ok(workers) = std::env::var("BENCH_GATEWAY_WORKERS") {
        command.env("TOKIO_WORKER_THREADS", workers);
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the breakerbox binary starts");
    let err = child.stderr.take().expect("stderr is piped");
    (Proc(child), banner_url(err, "gateway listening on"))
}

/// The routes every gateway under test serves: `default` (Anthropic first) and `oai` (OpenAI
/// first), so each inbound protocol can be measured without translation; with a paced simulator
/// also `default-paced` and `oai-paced`, the same on it.
fn chains(paced: bool) -> String {
    let mut out = String::new();
    let suffixes: &[&str] = if paced { &["", "-paced"] } else { &[""] };
    for suffix in suffixes {
        for (name, first, second) in [
            ("default", "anthropic", "openai"),
            ("oai", "openai", "anthropic"),
        ] {
            out.push_str(&format!(
                "[[chains]]\nname = \"{name}{suffix}\"\ntargets = [\"{first}{suffix}\", \"{second}{suffix}\"]\n\n\
                 [[routes]]\nmodel = \"{name}{suffix}\"\nchain = \"{name}{suffix}\"\n\n"
            ));
        }
    }
    out
}

/// breakerbox's providers on the simulator at `sim` (and `anthropic-paced` / `openai-paced` on
/// `paced`), with the routes of [`chains`].
fn live_config(sim: &str, paced: Option<&str>) -> String {
    let mut out = String::new();
    let sims = [(sim, ""), (paced.unwrap_or_default(), "-paced")];
    for (url, suffix) in sims.iter().take(if paced.is_some() { 2 } else { 1 }) {
        out.push_str(&format!(
            "[[providers]]\nname = \"anthropic{suffix}\"\nprotocol = \"anthropic\"\n\
             model = \"claude-sonnet-4-5\"\nbase_url = \"{url}/anthropic\"\n\
             api_key_env = \"BENCH_SIM_KEY\"\n\n\
             [[providers]]\nname = \"openai{suffix}\"\nprotocol = \"openai\"\nmodel = \"gpt-5\"\n\
             base_url = \"{url}/openai/v1\"\napi_key_env = \"BENCH_SIM_KEY\"\n\n"
        ));
    }
    out.push_str(&chains(paced.is_some()));
    out.push_str(GATEWAY_LIMITS);
    out
}

/// The floods open more client connections than `[gateway] max_connections`' default (512).
const GATEWAY_LIMITS: &str = "[gateway]\nmax_connections = 4096\n\n";

fn demo_config() -> String {
    format!("{}\n{}{GATEWAY_LIMITS}", chains(false), sim_config("0ms"))
}

/// `pid` and its descendants (a Python server may fork workers).
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(fields) = stat_fields(p)
                && let Some(ppid) = fields.get(1).and_then(|f| f.parse().ok())
            {
                parents.push((p, ppid));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    tree
}

/// The fields of `/proc/PID/stat` after the command name (index 0 is the state).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// A `kB` field of `/proc/PID/status`, in MiB, summed over `pids`.
fn status_mib(pids: &[u32], field: &str) -> f64 {
    pids.iter()
        .map(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        })
        .sum()
}

/// User + system CPU ticks of `pids`.
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|&pid| stat_fields(pid))
        .map(|f| {
            let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            tick(11) + tick(12)
        })
        .sum()
}

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Anthropic,
    Openai,
}

/// One place a client sends streaming requests.
#[derive(Clone)]
struct Endpoint {
    url: String,
    proto: Proto,
    model: &'static str,
    max_tokens: u32,
}

impl Endpoint {
    fn anthropic(base: &str, model: &'static str) -> Self {
        Endpoint {
            url: format!("{base}/v1/messages"),
            proto: Proto::Anthropic,
            model,
            max_tokens: MAX_TOKENS,
        }
    }
    fn openai(base: &str, model: &'static str) -> Self {
        Endpoint {
            url: format!("{base}/v1/chat/completions"),
            proto: Proto::Openai,
            model,
            max_tokens: MAX_TOKENS,
        }
    }

    fn request(&self, client: &reqwest::Client, i: usize) -> reqwest::RequestBuilder {
        // Distinct prompts, so replies differ as in real traffic; the same `i` gives the same
        // prompt on both paths of a pair.
        let prompt = format!("Question number {i}: why is the sky blue?");
        let builder = client
            .post(&self.url)
            .header("content-type", "application/json");
        match self.proto {
            Proto::Anthropic => builder
                .header("x-api-key", "sim-key")
                .header("anthropic-version", "2023-06-01")
                .body(
                    serde_json::json!({
                        "model": self.model, "max_tokens": self.max_tokens, "stream": true,
                        "messages": [{"role": "user", "content": prompt}],
                    })
                    .to_string(),
                ),
            Proto::Openai => builder.bearer_auth("sim-key").body(
                serde_json::json!({
                    "model": self.model, "max_tokens": self.max_tokens, "stream": true,
                    "stream_options": {"include_usage": true},
                    "messages": [{"role": "user", "content": prompt}],
                })
                .to_string(),
            ),
        }
    }
}

#[derive(Clone, Copy)]
struct Sample {
    /// Send → first body byte, µs.
    first: f64,
    /// Send → the first chunk carrying reply text, µs. A gateway holds its first bytes until
    /// there is content (so that a failover before then stays invisible); a paced upstream sends
    /// its `message_start` at once and the first token later, so this is the fair comparison.
    token: f64,
    /// Send → end of the body, µs.
    last: f64,
    events: usize,
}

async fn one(client: &reqwest::Client, ep: &Endpoint, i: usize) -> Result<Sample, String> {
    let started = Instant::now();
    let mut response = ep
        .request(client, i)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        return Err(format!(
            "status {status}: {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    let mut first = None;
    let mut token = None;
    let mut carry = Vec::new();
    let mut events = 0;
    // Every SSE event ends with a blank line: count "\n\n", also when a read splits it.
    let mut last = 0u8;
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("{e:?}"))? {
        let now = started.elapsed();
        first.get_or_insert(now);
        if token.is_none() {
            // The tail of the previous chunk too, in case a marker straddles two reads.
            carry.extend_from_slice(&chunk);
            if has_text(&carry) {
                token = Some(now);
            }
            let keep = carry.len().saturating_sub(32);
            carry.drain(..keep);
        }
        for &byte in chunk.iter() {
            if byte == b'\n' && last == b'\n' {
                events += 1;
                last = 0;
            } else if byte != b'\r' {
                last = byte;
            }
        }
    }
    let first = first.ok_or("an empty body")?;
    let token = token.ok_or("a reply without text")?;
    Ok(Sample {
        first: first.as_secs_f64() * 1e6,
        token: token.as_secs_f64() * 1e6,
        last: started.elapsed().as_secs_f64() * 1e6,
        events,
    })
}

/// Whether SSE bytes carry reply text: an Anthropic `text_delta`, or an OpenAI delta whose
/// `content` is not empty.
fn has_text(bytes: &[u8]) -> bool {
    const OPENAI: &[u8] = b"\"content\":\"";
    if bytes.windows(10).any(|w| w == b"text_delta") {
        return true;
    }
    bytes
        .windows(OPENAI.len())
        .enumerate()
        .any(|(i, w)| w == OPENAI && bytes.get(i + OPENAI.len()).is_some_and(|&b| b != b'"'))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .expect("an HTTP client")
}

// ---------------------------------------------------------------------------------------------
// Added latency
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Pairs {
    direct: Vec<Sample>,
    via: Vec<Sample>,
    errors: usize,
    first_error: Option<String>,
}

impl Pairs {
    fn merge(&mut self, other: Pairs) {
        self.direct.extend(other.direct);
        self.via.extend(other.via);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// `n` pairs one after the other: direct then via, or via then direct, alternately.
async fn pairs(
    direct_client: reqwest::Client,
    via_client: reqwest::Client,
    direct: Endpoint,
    via: Endpoint,
    n: usize,
    offset: usize,
) -> Pairs {
    let mut out = Pairs::default();
    for k in 0..n {
        let i = offset + k;
        let (d, v) = if k % 2 == 0 {
            let d = one(&direct_client, &direct, i).await;
            (d, one(&via_client, &via, i).await)
        } else {
            let v = one(&via_client, &via, i).await;
            (one(&direct_client, &direct, i).await, v)
        };
        match (d, v) {
            (Ok(d), Ok(v)) => {
                out.direct.push(d);
                out.via.push(v);
            }
            (Err(e), _) | (_, Err(e)) => {
                out.errors += 1;
                out.first_error.get_or_insert(e);
            }
        }
    }
    out
}

/// `n` pairs spread over `clients` concurrent clients (1: sequential).
async fn added(direct: &Endpoint, via: &Endpoint, n: usize, clients: usize) -> Pairs {
    let (dc, vc) = (client(), client());
    // Warm-up: open the connections both paths will reuse.
    let warm: Vec<_> = (0..clients.max(1))
        .map(|c| {
            let per = if clients == 1 { WARMUP } else { 2 };
            tokio::spawn(pairs(
                dc.clone(),
                vc.clone(),
                direct.clone(),
                via.clone(),
                per,
                1_000_000 + c * 10,
            ))
        })
        .collect();
    for w in warm {
        let _ = w.await;
    }
    let per = n.div_ceil(clients);
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            tokio::spawn(pairs(
                dc.clone(),
                vc.clone(),
                direct.clone(),
                via.clone(),
                per,
                c * per,
            ))
        })
        .collect();
    let mut out = Pairs::default();
    for t in tasks {
        out.merge(t.await.expect("a client task"));
    }
    out
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn ms(us: f64) -> String {
    format!("{:.3}", us / 1000.0)
}

/// Two table rows (first byte, last byte) for one comparison.
fn report_pairs(label: &str, p: &Pairs) {
    if let Some(e) = &p.first_error {
        println!("<!-- {label}: {} pairs failed, e.g. {e} -->", p.errors);
    }
    for (what, get) in [
        ("first byte", (|s: &Sample| s.first) as fn(&Sample) -> f64),
        ("first token", |s: &Sample| s.token),
        ("last byte", |s: &Sample| s.last),
    ] {
        let d = sorted(p.direct.iter().map(get).collect());
        let v = sorted(p.via.iter().map(get).collect());
        let diff = sorted(
            p.direct
                .iter()
                .zip(&p.via)
                .map(|(d, v)| get(v) - get(d))
                .collect(),
        );
        println!(
            "| {label} | {what} | {} | {} / {} | {} / {} | **{} / {}** | {} / {} | {} |",
            p.via.len(),
            ms(pct(&d, 0.5)),
            ms(pct(&d, 0.99)),
            ms(pct(&v, 0.5)),
            ms(pct(&v, 0.99)),
            ms(pct(&v, 0.5) - pct(&d, 0.5)),
            ms(pct(&v, 0.99) - pct(&d, 0.99)),
            ms(pct(&diff, 0.5)),
            ms(pct(&diff, 0.99)),
            p.errors,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1,000 concurrent streaming clients
// ---------------------------------------------------------------------------------------------

struct Flood {
    requests: u64,
    events: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    /// Times to the first token and to the last byte, sorted.
    first: Vec<f64>,
    last: Vec<f64>,
    rss_before: f64,
    rss_peak: f64,
    rss_after: f64,
    hwm: f64,
    cpu_target: f64,
    cpu_sim: f64,
    cpu_client: f64,
}

/// `streams` clients, each sending streaming requests back to back for `secs`, to `endpoints` in
/// turn (client `i` uses `endpoints[i % len]`). `target` and `sim` are watched for memory and CPU.
async fn flood(
    endpoints: &[Endpoint],
    streams: usize,
    secs: u64,
    target: &[u32],
    sim: &[u32],
    tck: f64,
) -> Flood {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .expect("an HTTP client");
    let rss_before = status_mib(target, "VmRSS:");
    let me = [std::process::id()];
    let (t0, s0, c0) = (cpu_ticks(target), cpu_ticks(sim), cpu_ticks(&me));
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(rss_before.to_bits()));
    let sampler = {
        let (stop, peak, target) = (Arc::clone(&stop), Arc::clone(&peak), target.to_vec());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let rss = status_mib(&target, "VmRSS:");
                if rss > f64::from_bits(peak.load(Ordering::Relaxed)) {
                    peak.store(rss.to_bits(), Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..streams)
        .map(|c| {
            let (http, ep) = (http.clone(), endpoints[c % endpoints.len()].clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut errors = 0u64;
                let mut first_error = None;
                let mut i = c * 1_000_000;
                while Instant::now() < deadline {
                    match one(&http, &ep, i).await {
                        Ok(s) => samples.push(s),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e);
                            // Don't spin on a refusing server.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    i += 1;
                }
                (samples, errors, first_error)
            })
        })
        .collect();
    let (mut samples, mut errors, mut first_error) = (Vec::new(), 0, None);
    for t in tasks {
        let (s, e, fe) = t.await.expect("a client task");
        samples.extend(s);
        errors += e;
        if first_error.is_none() {
            first_error = fe;
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let (t1, s1, c1) = (cpu_ticks(target), cpu_ticks(sim), cpu_ticks(&me));
    Flood {
        requests: samples.len() as u64,
        events: samples.iter().map(|s| s.events as u64).sum(),
        errors,
        first_error,
        elapsed,
        first: sorted(samples.iter().map(|s| s.token).collect()),
        last: sorted(samples.iter().map(|s| s.last).collect()),
        rss_before,
        rss_peak: f64::from_bits(peak.load(Ordering::Relaxed)),
        rss_after: status_mib(target, "VmRSS:"),
        hwm: status_mib(target, "VmHWM:"),
        cpu_target: (t1 - t0) as f64 / tck,
        cpu_sim: (s1 - s0) as f64 / tck,
        cpu_client: (c1 - c0) as f64 / tck,
    }
}

fn report_flood(label: &str, f: &Flood, same_process_as_sim: bool) {
    if let Some(e) = &f.first_error {
        println!("<!-- {label}: {} errors, e.g. {e} -->", f.errors);
    }
    let secs = f.elapsed.as_secs_f64();
    let mem = if f.rss_before == 0.0 && f.hwm == 0.0 {
        "n/a".to_string()
    } else {
        format!(
            "{:.1} → {:.1} (after {:.1}, VmHWM {:.1})",
            f.rss_before, f.rss_peak, f.rss_after, f.hwm
        )
    };
    let cpu = |s: f64| format!("{s:.1} s ({:.0} %)", s / secs * 100.0);
    println!(
        "| {label} | {} | {:.0} | {:.0} | {} | {} / {} | {} / {} | {mem} | {} | {} | {} |",
        f.requests,
        f.requests as f64 / secs,
        f.events as f64 / secs,
        f.errors,
        ms(pct(&f.first, 0.5)),
        ms(pct(&f.first, 0.99)),
        ms(pct(&f.last, 0.5)),
        ms(pct(&f.last, 0.99)),
        if f.cpu_target == 0.0 && f.rss_before == 0.0 {
            "n/a".to_string()
        } else {
            cpu(f.cpu_target)
        },
        if same_process_as_sim {
            "(in the gateway)".to_string()
        } else {
            cpu(f.cpu_sim)
        },
        cpu(f.cpu_client),
    );
}

// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// A bare pass-through proxy: the floor for one extra HTTP hop on this machine
// ---------------------------------------------------------------------------------------------

/// Set in the environment of this binary re-run as the bare proxy: the simulator's URL, and the
/// paced simulator's after a space.
const PROXY_ENV: &str = "BENCH_GATEWAY_BARE_PROXY_UPSTREAM";

/// A hyper server that forwards each request to the simulator with reqwest and streams the reply
/// back as it arrives: no parsing, no engine, no events. Paths under `/paced` go to the paced
/// simulator. Run in its own process (this binary, re-executed), on a tokio runtime like the
/// gateway's.
fn bare_proxy_main(upstreams: String) {
    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::response::Response;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;

    async fn forward(
        State(st): State<Arc<(reqwest::Client, String, String)>>,
        req: Request,
    ) -> Response {
        let (upstream, path) = match req.uri().path().strip_prefix("/paced") {
            Some(path) => (&st.2, path),
            None => (&st.1, req.uri().path()),
        };
        let path = match path {
            "/v1/messages" => "/anthropic/v1/messages",
            _ => "/openai/v1/chat/completions",
        };
        let headers = req.headers().clone();
        let body = axum::body::to_bytes(req.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        let mut up = st.0.post(format!("{upstream}{path}")).body(body);
        for name in [
            "content-type",
            "x-api-key",
            "authorization",
            "anthropic-version",
        ] {
            if let Some(v) = headers.get(name) {
                up = up.header(name, v.clone());
            }
        }
        match up.send().await {
            Ok(resp) => {
                let mut out = Response::builder().status(resp.status());
                if let Some(ct) = resp.headers().get("content-type") {
                    out = out.header("content-type", ct.clone());
                }
                out.body(Body::from_stream(resp.bytes_stream()))
                    .unwrap_or_default()
            }
            Err(e) => Response::builder()
                .status(502)
                .body(Body::from(e.to_string()))
                .unwrap_or_default(),
        }
    }

    let (zero, paced) = upstreams
        .split_once(' ')
        .unwrap_or((upstreams.as_str(), upstreams.as_str()));
    let (zero, paced) = (zero.to_string(), paced.to_string());
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .build()
            .expect("an HTTP client");
        let router = axum::Router::new()
            .fallback(forward)
            .with_state(Arc::new((client, zero, paced)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        println!(
            "bare proxy listening on http://{}",
            listener.local_addr().expect("an address")
        );
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// This binary again, as the bare proxy in front of `sim` (and `paced`).
fn start_bare_proxy(sim: &str, paced: Option<&str>) -> (Proc, String) {
    let upstreams = match paced {
        Some(paced) => format!("{sim} {paced}"),
        None => sim.to_string(),
    };
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .env(PROXY_ENV, upstreams)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the bare proxy starts");
    let out = child.stdout.take().expect("stdout is piped");
    (Proc(child), banner_url(out, "bare proxy listening on"))
}

/// A gateway under test.
struct Gateway {
    name: String,
    base: String,
    pids: Vec<u32>,
    /// The simulator runs inside it (`--demo`): its direct baseline is another process, and it
    /// has no paced routes.
    demo: bool,
    /// Sequential pairs per path.
    n: usize,
    /// The model names that route Anthropic-first and OpenAI-first.
    models: (&'static str, &'static str),
    /// The base URL and model names that reach the paced simulator.
    paced: Option<(String, (&'static str, &'static str))>,
    /// Answers an OpenAI client from an Anthropic provider.
    translates: bool,
    /// Passed in (`BENCH_GATEWAY_OTHER`), not one of ours.
    external: bool,
}

impl Gateway {
    /// Where its clients send Anthropic and OpenAI requests (on the paced simulator or not).
    fn endpoints(&self, paced: bool) -> Option<(Endpoint, Endpoint)> {
        let (base, (a, o)) = if paced {
            let (base, models) = self.paced.as_ref()?;
            (base.as_str(), *models)
        } else {
            (self.base.as_str(), self.models)
        };
        Some((Endpoint::anthropic(base, a), Endpoint::openai(base, o)))
    }
}

/// A simulator: ours (killed at the end) or one passed in.
struct Sim {
    _proc: Option<Proc>,
    url: String,
    pids: Vec<u32>,
}

impl Sim {
    fn from_env_or_start(var: &str, config: &std::path::Path) -> Sim {
        match std::env::var(var) {
            Ok(url) => {
                let pid = env_usize(&format!("{var}_PID"), 0) as u32;
                Sim {
                    _proc: None,
                    url: url.trim_end_matches('/').to_string(),
                    pids: if pid == 0 { Vec::new() } else { vec![pid] },
                }
            }
            Err(_) => {
                let (p, url) = start_sim(config);
                let pids = vec![p.0.id()];
                Sim {
                    _proc: Some(p),
                    url,
                    pids,
                }
            }
        }
    }

    fn endpoints(&self) -> (Endpoint, Endpoint) {
        (
            Endpoint::anthropic(&format!("{}/anthropic", self.url), "claude-sonnet-4-5"),
            Endpoint::openai(&format!("{}/openai", self.url), "gpt-5"),
        )
    }
}

/// How the pairs of a latency section are sent.
#[derive(Clone, Copy)]
struct Probe {
    /// Clients at once.
    conc: usize,
    /// Paced streams each gateway carries meanwhile.
    load: usize,
    /// On the paced simulator with short replies, so each token arrives on its own; `sim` is
    /// then the paced simulator.
    paced: bool,
}

/// Added latency of every gateway over `sim`.
fn latency_section(
    runtime: &tokio::runtime::Runtime,
    sim: &Sim,
    gateways: &[&Gateway],
    probe: Probe,
) {
    let Probe { conc, load, paced } = probe;
    let short = |(mut a, mut o): (Endpoint, Endpoint)| {
        if paced {
            a.max_tokens = PACED_PROBE_TOKENS;
            o.max_tokens = PACED_PROBE_TOKENS;
        }
        (a, o)
    };
    let (direct_anthropic, direct_openai) = short(sim.endpoints());
    for g in gateways {
        let Some((via_anthropic, via_openai)) = g.endpoints(paced).map(short) else {
            continue;
        };
        let background = if load == 0 {
            None
        } else {
            let Some((a, o)) = g.endpoints(true) else {
                continue;
            };
            Some(runtime.block_on(async { Background::start(vec![a, o], load).await }))
        };
        let n = if paced {
            env_usize("BENCH_GATEWAY_PACED_N", 200)
        } else {
            g.n
        };
        // A gateway that queues under load would take minutes for the full count.
        let n = if (load > 0 || paced) && g.external {
            n.min(env_usize("BENCH_GATEWAY_OTHER_LOADED_N", 40))
        } else {
            n
        };
        let mut comparisons = vec![(
            format!(
                "{}: Anthropic → anthropic{}",
                g.name,
                if g.demo { " (sim in-process)" } else { "" }
            ),
            &direct_anthropic,
            via_anthropic.clone(),
            if g.demo { n / 2 } else { n },
        )];
        if !g.demo {
            comparisons.push((
                format!("{}: OpenAI → openai", g.name),
                &direct_openai,
                via_openai.clone(),
                n,
            ));
            if g.translates {
                let mut translated = via_openai;
                translated.model = via_anthropic.model;
                comparisons.push((
                    format!(
                        "{}: OpenAI → anthropic (translated; vs direct Anthropic)",
                        g.name
                    ),
                    &direct_anthropic,
                    translated,
                    n / 2,
                ));
            }
        }
        for (label, direct, via, n) in comparisons {
            let p = runtime.block_on(added(direct, &via, n, conc));
            report_pairs(&label, &p);
        }
        if let Some(bg) = background {
            let (requests, errors) = runtime.block_on(bg.stop());
            println!(
                "<!-- {}: {requests} background streams completed, {errors} errors -->",
                g.name
            );
        }
    }
    println!();
}

/// Paced streams sent back to back through a gateway while something else is measured.
struct Background {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(u64, u64)>>,
}

impl Background {
    async fn start(endpoints: Vec<Endpoint>, streams: usize) -> Background {
        let http = client();
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..streams)
            .map(|c| {
                let (http, ep, stop) = (
                    http.clone(),
                    endpoints[c % endpoints.len()].clone(),
                    Arc::clone(&stop),
                );
                tokio::spawn(async move {
                    let (mut ok, mut errors) = (0, 0);
                    let mut i = 2_000_000 + c * 100_000;
                    while !stop.load(Ordering::Relaxed) {
                        match one(&http, &ep, i).await {
                            Ok(_) => ok += 1,
                            Err(_) => {
                                errors += 1;
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                        }
                        i += 1;
                    }
                    (ok, errors)
                })
            })
            .collect();
        // Let every stream get going.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Background { stop, tasks }
    }

    async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = (0, 0);
        for t in self.tasks {
            let (ok, errors) = t.await.expect("a background task");
            total = (total.0 + ok, total.1 + errors);
        }
        total
    }
}

/// `streams` clients for `secs` against `sim` directly and each gateway (half per protocol).
fn flood_section(
    runtime: &tokio::runtime::Runtime,
    sim: &Sim,
    gateways: &[&Gateway],
    paced: bool,
    streams: usize,
    secs: u64,
    tck: f64,
) {
    println!(
        "| target | requests | req/s | events/s | errors | first token p50 / p99 | last byte p50 / p99 | target RSS: idle → peak | target CPU | sim CPU | client CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let (a, o) = sim.endpoints();
    let direct = runtime.block_on(flood(&[a, o], streams, secs, &[], &sim.pids, tck));
    report_flood("simulator directly", &direct, false);
    for g in gateways {
        let Some((a, o)) = g.endpoints(paced) else {
            continue;
        };
        // A moment for the previous run's connections to close.
        std::thread::sleep(Duration::from_secs(1));
        let f = runtime.block_on(flood(&[a, o], streams, secs, &g.pids, &sim.pids, tck));
        report_flood(&g.name, &f, g.demo);
    }
    println!(
        "\nsimulator RSS after: {:.1} MiB (VmHWM {:.1})\n",
        status_mib(&sim.pids, "VmRSS:"),
        status_mib(&sim.pids, "VmHWM:")
    );
}

fn header_latency(title: &str) {
    println!("## Added latency, {title}\n");
    println!(
        "Times in ms. direct = the simulator; via = through the gateway; added = via − direct of \
         each percentile; paired Δ = percentiles of (via − direct) over pairs sent back to back \
         with the same prompt.\n"
    );
    println!(
        "| path | to | pairs | direct p50 / p99 | via p50 / p99 | added p50 / p99 | paired Δ p50 / p99 | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|");
}

fn main() {
    // reqwest is built without a default TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Ok(upstreams) = std::env::var(PROXY_ENV) {
        return bare_proxy_main(upstreams);
    }
    let n = env_usize("BENCH_GATEWAY_N", 2000);
    let clients = env_usize("BENCH_GATEWAY_CLIENTS", 64);
    let streams = env_usize("BENCH_GATEWAY_STREAMS", 1000);
    let secs = env_usize("BENCH_GATEWAY_SECS", 10) as u64;
    let pace = std::env::var("BENCH_GATEWAY_PACE").unwrap_or_else(|_| "10ms".to_string());
    let off = |var: &str| std::env::var(var).as_deref() == Ok("0");
    let tck = clock_ticks_per_sec();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");

    let dir = std::env::temp_dir().join(format!("breakerbox-bench-gateway-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write a config");
        path
    };
    let sim = Sim::from_env_or_start("BENCH_GATEWAY_SIM", &write("sim.toml", sim_config("0ms")));
    let paced = (!off("BENCH_GATEWAY_PACED")).then(|| {
        Sim::from_env_or_start(
            "BENCH_GATEWAY_PACED_SIM",
            &write("paced-sim.toml", sim_config(&pace)),
        )
    });
    let paced_url = paced.as_ref().map(|p| p.url.as_str());

    // The gateways, each in its own process, each reaching both simulators.
    let mut procs = Vec::new();
    let mut gateways = Vec::new();
    if !off("BENCH_GATEWAY_BARE") {
        let (proc, base) = start_bare_proxy(&sim.url, paced_url);
        gateways.push(Gateway {
            name: "bare proxy (reference)".into(),
            paced: paced_url.map(|_| (format!("{base}/paced"), ("claude-sonnet-4-5", "gpt-5"))),
            base,
            pids: vec![proc.0.id()],
            demo: false,
            n,
            models: ("claude-sonnet-4-5", "gpt-5"),
            translates: false,
            external: false,
        });
        procs.push(proc);
    }
    let (proc, base) = start_gateway(&write("live.toml", live_config(&sim.url, paced_url)), false);
    gateways.push(Gateway {
        name: "breakerbox".into(),
        paced: paced_url.map(|_| (base.clone(), ("default-paced", "oai-paced"))),
        base,
        pids: vec![proc.0.id()],
        demo: false,
        n,
        models: ("default", "oai"),
        translates: true,
        external: false,
    });
    procs.push(proc);
    if !off("BENCH_GATEWAY_DEMO") {
        let (proc, base) = start_gateway(&write("demo.toml", demo_config()), true);
        gateways.push(Gateway {
            name: "breakerbox --demo".into(),
            base,
            pids: vec![proc.0.id()],
            demo: true,
            n,
            models: ("default", "oai"),
            paced: None,
            translates: true,
            external: false,
        });
        procs.push(proc);
    }
    if let Ok(other) = std::env::var("BENCH_GATEWAY_OTHER") {
        let (name, url) = other
            .split_once('=')
            .expect("BENCH_GATEWAY_OTHER is NAME=URL");
        let base = url.trim_end_matches('/').to_string();
        let pid = env_usize("BENCH_GATEWAY_OTHER_PID", 0) as u32;
        gateways.push(Gateway {
            name: name.to_string(),
            paced: paced_url.map(|_| (base.clone(), ("default-paced", "oai-paced"))),
            base,
            pids: if pid == 0 {
                Vec::new()
            } else {
                process_tree(pid)
            },
            demo: false,
            n: env_usize("BENCH_GATEWAY_OTHER_N", n).min(n),
            models: ("default", "oai"),
            translates: true,
            external: true,
        });
    }
    let all: Vec<&Gateway> = gateways.iter().collect();

    println!("# breakerbox gateway benchmark\n");
    println!(
        "{} cores; load average at start {}. Simulators: {} (zero latency) and {} (tokens {pace} \
         apart, no jitter); {MAX_TOKENS} max tokens, ~48 SSE events a reply. Client, gateways and \
         simulators share the cores.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        sim.url,
        paced_url.unwrap_or("-"),
    );
    println!("Idle resident memory (MiB):\n");
    for g in &all {
        println!("- {}: {:.1}", g.name, status_mib(&g.pids, "VmRSS:"));
    }
    println!("- simulator: {:.1}\n", status_mib(&sim.pids, "VmRSS:"));

    if n > 0 {
        header_latency(&format!(
            "sequential ({n} pairs, one request at a time, zero-latency simulator)"
        ));
        latency_section(
            &runtime,
            &sim,
            &all,
            Probe {
                conc: 1,
                load: 0,
                paced: false,
            },
        );
    }
    if let (Some(paced), true) = (&paced, n > 0) {
        header_latency(&format!(
            "sequential, simulator pacing tokens {pace} apart ({PACED_PROBE_TOKENS}-token replies)"
        ));
        println!(
            "Like a real model: the first token arrives on its own, so it is forwarded as soon as it \
             is seen (with the zero-latency simulator the whole reply arrives in one read, and a \
             gateway that encodes everything ready before its first write shows that here). \
             Timer granularity (~1 ms) is common to both paths.\n"
        );
        latency_section(
            &runtime,
            paced,
            &all,
            Probe {
                conc: 1,
                load: 0,
                paced: true,
            },
        );
    }
    if n > 0 && clients > 0 && paced.is_some() {
        header_latency(&format!(
            "sequential, while the gateway carries {clients} paced streams (tokens {pace} apart)"
        ));
        println!(
            "The same one-at-a-time pairs, while {clients} other clients stream from the paced \
             simulator through the same gateway back to back (about {} events/s when nothing \
             queues): the gateway under a steady load that leaves CPU to spare. (LiteLLM and the \
             like: at most BENCH_GATEWAY_OTHER_LOADED_N pairs, default 40.)\n",
            clients * 1000 / humantime_ms(&pace).max(1)
        );
        latency_section(
            &runtime,
            &sim,
            &all,
            Probe {
                conc: 1,
                load: clients,
                paced: false,
            },
        );
    }
    if n > 0 && clients > 1 {
        header_latency(&format!(
            "{clients} concurrent clients, zero-latency simulator, saturated ({n} pairs)"
        ));
        println!(
            "Every client sends its next request at once: the two cores are saturated (client, \
             gateway and simulator), so these times are mostly queueing for CPU.\n"
        );
        latency_section(
            &runtime,
            &sim,
            &all,
            Probe {
                conc: clients,
                load: 0,
                paced: false,
            },
        );
    }

    if streams > 0 {
        println!(
            "## {streams} concurrent streaming clients for {secs} s, zero-latency simulator\n"
        );
        println!(
            "Half Anthropic → anthropic, half OpenAI → openai; each client sends its next request \
             as soon as its last one ends. Times in ms; memory in MiB (sampled every 50 ms; \
             summed over the process tree); CPU in user + system seconds over the run (% of one \
             core).\n"
        );
        flood_section(&runtime, &sim, &all, false, streams, secs, tck);
    }
    if let (Some(paced), true) = (&paced, streams > 0) {
        println!(
            "## {streams} concurrent streaming clients for {secs} s, simulator pacing tokens {pace} apart\n"
        );
        println!(
            "Every stream stays open for its whole reply (~48 × {pace}), so all {streams} are open \
             at once: the memory held per open stream. The bare proxy and breakerbox are fresh \
             processes here (their idle RSS is a clean start); another gateway is the same process \
             as above.\n"
        );
        // Fresh processes: the memory before is a clean start, not what earlier runs left.
        let mut fresh_procs = Vec::new();
        let fresh: Vec<Gateway> = all
            .iter()
            .filter_map(|g| {
                if g.external || g.demo {
                    return None;
                }
                let (proc, base) = if g.translates {
                    start_gateway(&dir.join("live.toml"), false)
                } else {
                    start_bare_proxy(&sim.url, Some(&paced.url))
                };
                let paced_base = if g.translates {
                    base.clone()
                } else {
                    format!("{base}/paced")
                };
                let pids = vec![proc.0.id()];
                fresh_procs.push(proc);
                Some(Gateway {
                    name: g.name.clone(),
                    base,
                    pids,
                    demo: false,
                    n: g.n,
                    models: g.models,
                    paced: g.paced.as_ref().map(|(_, m)| (paced_base, *m)),
                    translates: g.translates,
                    external: false,
                })
            })
            .collect();
        let lineup: Vec<&Gateway> = all
            .iter()
            .filter(|g| !g.demo)
            .map(|g| fresh.iter().find(|f| f.name == g.name).unwrap_or(g))
            .collect();
        flood_section(&runtime, paced, &lineup, true, streams, secs, tck);
        drop(fresh_procs);
    }
    drop(procs);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `"10ms"` → 10 (only the forms this bench takes: `Nms` or `Ns`).
fn humantime_ms(text: &str) -> usize {
    if let Some(ms) = text.strip_suffix("ms") {
        ms.trim().parse().unwrap_or(0)
    } else if let Some(s) = text.strip_suffix('s') {
        s.trim().parse::<usize>().unwrap_or(0) * 1000
    } else {
        0
    }
}
