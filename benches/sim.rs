//! The simulator under load, measured from outside: the real `breakerbox sim` binary in its own
//! process, 1,000 concurrent streaming clients on loopback (half Anthropic, half OpenAI), no
//! latency, about 50 tokens each. Reports events per second seen by the clients, time to first
//! byte, and the server's resident memory (current and peak, from /proc).
//!
//! Run: `cargo bench --bench sim` (optionally `-- STREAMS ROUNDS`). Client and server share the
//! machine's cores, so the numbers are a floor for the server alone.
#![allow(clippy::expect_used)] // a benchmark has nothing to do but stop when its setup fails

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const STREAMS: usize = 1000;
const ROUNDS: usize = 3;
const MAX_TOKENS: u32 = 50;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `VmRSS` and `VmHWM` (peak) of a process, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

struct StreamResult {
    events: usize,
    first_byte: Duration,
}

async fn one_stream(
    client: reqwest::Client,
    base: Arc<String>,
    i: usize,
) -> Result<StreamResult, String> {
    // Distinct prompts, so replies differ as they would in real traffic.
    let prompt = format!("Question number {i}: why is the sky blue?");
    let (url, body) = if i.is_multiple_of(2) {
        (
            format!("{base}/anthropic/v1/messages"),
            serde_json::json!({
                "model": "claude-sonnet-4-5", "max_tokens": MAX_TOKENS, "stream": true,
                "messages": [{"role": "user", "content": prompt}],
            }),
        )
    } else {
        (
            format!("{base}/openai/v1/chat/completions"),
            serde_json::json!({
                "model": "gpt-5", "max_tokens": MAX_TOKENS, "stream": true,
                "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": prompt}],
            }),
        )
    };
    let started = Instant::now();
    let mut response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let mut first_byte = None;
    let mut events = 0;
    // Every event ends with a blank line: count "\n\n", also when a read splits it.
    let mut last = 0u8;
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        first_byte.get_or_insert_with(|| started.elapsed());
        for &byte in chunk.iter() {
            if byte == b'\n' && last == b'\n' {
                events += 1;
                last = 0;
            } else {
                last = byte;
            }
        }
    }
    Ok(StreamResult {
        events,
        first_byte: first_byte.unwrap_or_default(),
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn round(
    client: &reqwest::Client,
    base: &Arc<String>,
    streams: usize,
) -> (Duration, Vec<StreamResult>) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|i| tokio::spawn(one_stream(client.clone(), Arc::clone(base), i)))
        .collect();
    let mut results = Vec::with_capacity(streams);
    let mut errors = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let elapsed = started.elapsed();
    if !errors.is_empty() {
        eprintln!("{} streams failed, e.g. {}", errors.len(), errors[0]);
    }
    (elapsed, results)
}

/// Start the binary with this token delay; measure `rounds` rounds of `streams` streams.
fn measure(runtime: &tokio::runtime::Runtime, token_delay: &str, streams: usize, rounds: usize) {
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_breakerbox"))
            .args([
                "sim",
                "--listen",
                "127.0.0.1:0",
                "--first-event-latency",
                "0ms",
            ])
            .args(["--token-delay", token_delay])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the breakerbox binary starts"),
    );
    let pid = server.0.id();
    let mut first_line = String::new();
    BufReader::new(server.0.stdout.take().expect("stdout is piped"))
        .read_line(&mut first_line)
        .expect("the banner");
    let base = Arc::new(
        first_line
            .trim()
            .strip_prefix("breakerbox sim listening on ")
            .expect("the banner's first line names the address")
            .to_string(),
    );
    let (idle_rss, _) = memory_mib(pid);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(streams)
        .build()
        .expect("an HTTP client");

    println!(
        "{streams} concurrent streams x {rounds} rounds, max_tokens {MAX_TOKENS}, token delay {token_delay}; server idle RSS {idle_rss:.1} MiB"
    );
    runtime.block_on(round(&client, &base, 50)); // warm-up: connections, allocator
    for r in 1..=rounds {
        let (elapsed, results) = runtime.block_on(round(&client, &base, streams));
        let events: usize = results.iter().map(|r| r.events).sum();
        let mut first: Vec<Duration> = results.iter().map(|r| r.first_byte).collect();
        first.sort();
        let (rss, peak) = memory_mib(pid);
        println!(
            "  round {r}: {} streams ok in {:.0} ms, {events} events, {:.0} events/s, first byte p50 {:.1} ms p99 {:.1} ms, server RSS {rss:.1} MiB (peak {peak:.1} MiB)",
            results.len(),
            elapsed.as_secs_f64() * 1000.0,
            events as f64 / elapsed.as_secs_f64(),
            percentile(&first, 0.5).as_secs_f64() * 1000.0,
            percentile(&first, 0.99).as_secs_f64() * 1000.0,
        );
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let streams = args.first().copied().unwrap_or(STREAMS);
    let rounds = args.get(1).copied().unwrap_or(ROUNDS);
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let _ = rustls::crypto::ring::default_provider().install_default();

    println!("breakerbox sim under load (client and server share this machine's cores)");
    // Flat out: how many events the server can push.
    measure(&runtime, "0ms", streams, rounds);
    // Paced like a real model (10 ms a token), so all streams are open at once: memory held.
    measure(&runtime, "10ms", streams, 1);
}
