//! Peak memory, measured from outside on whole processes (the kernel's `VmHWM`, resident set high
//! water mark, read from /proc):
//!
//! - `serve --demo --headless` (simulator in-process, zero latency) answering one request whose
//!   body is a long conversation (`BENCH_MEMORY_MESSAGES`, 300,001 messages: 12.6 MB), once, 7
//!   times one after another, and 4 at once; each in a fresh process;
//! - `replay --export otlp-json` and `replay --report` on a synthetic recording of
//!   `BENCH_MEMORY_RECORDING_MB` (200) megabytes.
//!
//! With `BENCH_MEMORY_BASELINE=/path/to/an/older/breakerbox` the same runs are made with that
//! binary too, side by side. Linux only (it reads /proc). Run: `cargo bench --bench memory`.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark stops when its setup fails

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A field of /proc/PID/status in kB.
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Megabytes (10^6 bytes), like the body's size.
fn mb(kb: u64) -> f64 {
    kb as f64 * 1024.0 / 1e6
}

#[path = "../tests/it/support/demo_config.rs"]
mod demo_config;
use demo_config::FAST_SIM as SIM;

/// The first `http://` address on a line of `out` (without the scheme); the rest of `out` is
/// drained so the process never blocks on a full pipe.
fn banner(out: impl Read + Send + 'static) -> String {
    let mut reader = BufReader::new(out);
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).expect("the banner") > 0,
            "the process exited before its banner"
        );
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            break url
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    addr
}

/// `serve --headless`: with `--demo` on the in-process simulator (`config` holds `[sim]`), else
/// on the providers `config` names.
fn start_serve(bin: &Path, config: &Path, demo: bool) -> (Proc, String) {
    let mut command = Command::new(bin);
    command.arg("--config").arg(config);
    if demo {
        command.arg("--demo");
    }
    let mut child = command
        .args([
            "serve",
            "--headless",
            "--no-record",
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("BREAKERBOX_TOKEN")
        .env("BENCH_SIM_KEY", "sim-key")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the breakerbox binary starts");
    // The banner (and then the headless log) is on stderr.
    let addr = banner(child.stderr.take().expect("stderr is piped"));
    (Proc(child), addr)
}

/// `breakerbox sim` on its own, answering both protocols.
fn start_sim(bin: &Path, config: &Path) -> (Proc, String) {
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(["sim", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the breakerbox binary starts");
    // The simulator prints its banner on stdout.
    let addr = banner(child.stdout.take().expect("stdout is piped"));
    (Proc(child), format!("http://{addr}"))
}

/// Providers on a simulator at `url`, with no retries (the body is sent once).
fn live_config(url: &str) -> String {
    format!(
        "[[providers]]\nname = \"anthropic\"\nprotocol = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\n\
         base_url = \"{url}/anthropic\"\napi_key_env = \"BENCH_SIM_KEY\"\n\n\
         [[providers]]\nname = \"openai\"\nprotocol = \"openai\"\nmodel = \"gpt-5\"\n\
         base_url = \"{url}/openai/v1\"\napi_key_env = \"BENCH_SIM_KEY\"\n"
    )
}

/// One POST over a fresh connection; the status code.
fn post(addr: &str, path: &str, body: &[u8]) -> u16 {
    let mut socket = TcpStream::connect(addr).expect("connects");
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nanthropic-version: 2023-06-01\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).expect("sends");
    socket.write_all(body).expect("sends");
    let mut reply = Vec::new();
    socket.read_to_end(&mut reply).expect("reads");
    String::from_utf8_lossy(&reply)
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// `{"model","max_tokens","messages":[…]}` with `n` short messages, alternating roles.
fn conversation(n: usize) -> Vec<u8> {
    let mut body = String::from(r#"{"model":"default","max_tokens":20,"messages":["#);
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        body.push_str(&format!(r#"{{"role":"{role}","content":"message {i}"}}"#));
    }
    body.push_str("]}");
    body.into_bytes()
}

struct Serve {
    peak_kb: u64,
    after_kb: u64,
}

/// A fresh gateway, `rounds` rounds of `at_once` requests; its peak and its resident set after.
fn serve_run(
    bin: &Path,
    config: &Path,
    demo: bool,
    body: &[u8],
    rounds: usize,
    at_once: usize,
) -> Serve {
    let (proc, addr) = start_serve(bin, config, demo);
    let pid = proc.0.id();
    for _ in 0..rounds {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..at_once)
                .map(|_| s.spawn(|| post(&addr, "/v1/chat/completions", body)))
                .collect();
            for h in handles {
                assert_eq!(h.join().unwrap(), 200, "the gateway answers");
            }
        });
    }
    Serve {
        peak_kb: status_kb(pid, "VmHWM:").unwrap_or(0),
        after_kb: status_kb(pid, "VmRSS:").unwrap_or(0),
    }
}

/// A synthetic recording of about `megabytes`: finished requests with a few failures and replies.
fn recording(dir: &Path, megabytes: usize) -> PathBuf {
    let path = dir.join(format!("memory-{megabytes}mb.jsonl"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(out, r#"{{"format":"breakerbox-session","format_version":1,"breakerbox_version":"bench","started_at":"2026-01-01T00:00:00Z","mode":"serve","providers":[{{"name":"anthropic","protocol":"anthropic","model":"claude-sonnet-4-5"}},{{"name":"openai","protocol":"openai","model":"gpt-5"}}]}}"#).unwrap();
    let (mut written, mut seq, mut r) = (0usize, 0u64, 0u64);
    let mut line = |out: &mut std::io::BufWriter<std::fs::File>, text: String| {
        seq += 1;
        let ms = seq;
        let text = format!(
            r#"{{"ts":"2026-01-01T{:02}:{:02}:{:02}.{:03}Z","seq":{seq},{text}}}"#,
            (ms / 3_600_000) % 24,
            (ms / 60_000) % 60,
            (ms / 1000) % 60,
            ms % 1000
        );
        writeln!(out, "{text}").unwrap();
        text.len() + 1
    };
    while written < megabytes * 1024 * 1024 {
        r += 1;
        let id = format!("r{r}");
        written += line(
            &mut out,
            format!(
                r#""type":"request_started","request_id":"{id}","source":"gateway","chain":["anthropic","openai"],"prompt":"what is the state of the incident number {r}?""#
            ),
        );
        written += line(
            &mut out,
            format!(
                r#""type":"attempt_started","request_id":"{id}","attempt":1,"provider":"anthropic","model":"claude-sonnet-4-5""#
            ),
        );
        let provider = if r % 4 == 0 {
            written += line(
                &mut out,
                format!(
                    r#""type":"attempt_failed","request_id":"{id}","attempt":1,"provider":"anthropic","phase":"connect","class":"rate_limited","retryable":true,"status":429,"retry_after_ms":2000,"message":"HTTP 429: rate limited","elapsed_ms":40"#
                ),
            );
            written += line(
                &mut out,
                format!(
                    r#""type":"attempt_started","request_id":"{id}","attempt":2,"provider":"openai","model":"gpt-5""#
                ),
            );
            "openai"
        } else {
            "anthropic"
        };
        written += line(
            &mut out,
            format!(
                r#""type":"first_event","request_id":"{id}","attempt":1,"provider":"{provider}","latency_ms":310"#
            ),
        );
        for word in ["The ", "breaker ", "opened ", "and ", "traffic ", "moved."] {
            written += line(
                &mut out,
                format!(
                    r#""type":"text_delta","request_id":"{id}","provider":"{provider}","text":"{word}""#
                ),
            );
        }
        written += line(
            &mut out,
            format!(
                r#""type":"usage","request_id":"{id}","provider":"{provider}","model":"m","input_tokens":1200,"output_tokens":30,"cache_read_tokens":0,"cache_write_tokens":0,"cost_usd":0.0041"#
            ),
        );
        written += line(
            &mut out,
            format!(
                r#""type":"request_finished","request_id":"{id}","outcome":"ok","provider":"{provider}","stop_reason":"end_turn","total_ms":900,"cost_usd":0.0041,"attempts":1,"failed_cost_usd":0.0"#
            ),
        );
    }
    out.flush().unwrap();
    path
}

/// Run `bin replay FILE ARGS` to its end with stdout discarded; its peak resident set (sampled
/// every 5 ms, the last sample just before it exits) and how long it took.
fn replay_run(bin: &Path, file: &Path, args: &[&str]) -> (u64, Duration) {
    let started = std::time::Instant::now();
    let mut child = Command::new(bin)
        .arg("replay")
        .arg(file)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the breakerbox binary starts");
    let pid = child.id();
    let mut peak = 0;
    loop {
        if let Some(kb) = status_kb(pid, "VmHWM:") {
            peak = peak.max(kb);
        }
        if child.try_wait().expect("waits").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (peak, started.elapsed())
}

fn main() {
    if !Path::new("/proc/self/status").exists() {
        println!("memory: skipped (needs Linux's /proc)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("bb-bench-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("sim.toml");
    std::fs::write(&config, SIM).unwrap();
    let mut bins = vec![("this", PathBuf::from(env!("CARGO_BIN_EXE_breakerbox")))];
    if let Ok(baseline) = std::env::var("BENCH_MEMORY_BASELINE") {
        bins.push(("baseline", PathBuf::from(baseline)));
    }

    let messages = env_usize("BENCH_MEMORY_MESSAGES", 300_001);
    let body = conversation(messages);
    let body_mb = body.len() as f64 / 1e6;
    // The gateway alone, its providers a separate simulator process.
    let (_sim, sim_url) = start_sim(&bins[0].1, &config);
    let live = dir.join("live.toml");
    std::fs::write(&live, live_config(&sim_url)).unwrap();
    println!(
        "serve: a {body_mb:.1} MB body of {messages} messages (fresh gateway per row); MB = 10^6 bytes"
    );
    println!(
        "  {:<9} {:<44} {:>8} {:>9} {:>12}",
        "binary", "run", "peak MB", "after MB", "peak / body"
    );
    for (name, bin) in &bins {
        for (mode, config, demo) in [
            ("gateway alone", &live, false),
            ("--demo (simulator in it)", &config, true),
        ] {
            for (label, rounds, at_once) in [
                ("1 request", 1, 1),
                ("7 one after another", 7, 1),
                ("4 at once", 1, 4),
            ] {
                let run = serve_run(bin, config, demo, &body, rounds, at_once);
                let (peak, after) = (mb(run.peak_kb), mb(run.after_kb));
                println!(
                    "  {name:<9} {:<44} {peak:>8.0} {after:>9.0} {:>11.1}x",
                    format!("{mode}, {label}"),
                    peak / body_mb
                );
            }
        }
    }

    let size = env_usize("BENCH_MEMORY_RECORDING_MB", 200);
    let file = recording(&dir, size);
    println!("replay on a {size} MB recording");
    println!(
        "  {:<9} {:<22} {:>10} {:>10}",
        "binary", "run", "peak MB", "seconds"
    );
    for (name, bin) in &bins {
        for (label, args) in [
            ("--export otlp-json", &["--export", "otlp-json"][..]),
            ("--report", &["--report"][..]),
        ] {
            let (peak, took) = replay_run(bin, &file, args);
            println!(
                "  {name:<9} {label:<22} {:>10.0} {:>10.1}",
                mb(peak),
                took.as_secs_f64()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
