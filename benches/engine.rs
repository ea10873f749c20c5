//! The failover engine's own cost, measured against the simulator on loopback:
//! - overhead: time to first event and total time through a one-target engine against the same
//!   provider called directly (p50 / p99 over many sequential requests);
//! - failover decision: the primary refuses the connection → the request to the fallback is sent;
//! - breaker admission: one `admit` + `record` on the shared registry (criterion);
//! - 1,000 concurrent streams through one engine.
//!
//! Run: `cargo bench --bench engine`. Client, engine and simulator share the machine's cores.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark stops when its setup fails

mod support;
use support::{histogram, measure, shared};

use futures::StreamExt;
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::time::{Duration, Instant};

use breakerbox::engine::breaker::{BreakerConfig, Breakers, CallOutcome};
use breakerbox::engine::failover::{EngineSettings, FailoverEngine, RequestMeta, Target};
use breakerbox::event::{Bus, Source};
use breakerbox::provider::{self, ApiKey, Protocol, Provider, ProviderConfig, Request};
use breakerbox::sim::{SimConfig, SimProviderSpec, Simulator};

const SEQUENTIAL: usize = 2_000;
const CONCURRENT: usize = 1_000;

fn client(name: &str, protocol: Protocol, base: String) -> Arc<dyn Provider> {
    let mut cfg = ProviderConfig::new(name, protocol, base);
    cfg.api_key = ApiKey::new("bench");
    provider::build(cfg).expect("client")
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64
}

async fn overhead(sim: &Simulator) {
    // Separate clients (and connection pools) for the two paths, so neither reuses the other's.
    let base = sim.direct_base_url("openai").unwrap();
    let direct = client("openai", Protocol::Openai, base.clone());
    let through = client("openai", Protocol::Openai, base);
    let engine = FailoverEngine::new(
        "bench",
        vec![Target::new(through)],
        EngineSettings::default(),
        shared(),
    );
    let (mut d_first, mut d_total, mut e_first, mut e_total) =
        (histogram(), histogram(), histogram(), histogram());
    let record =
        |first: &mut Histogram<u64>, total: &mut Histogram<u64>, (f, t): (Duration, Duration)| {
            first.record(f.as_micros() as u64).unwrap();
            total.record(t.as_micros() as u64).unwrap();
        };
    // Alternate which path goes first so drift on the machine affects both alike.
    for i in 0..SEQUENTIAL {
        let request = Request {
            max_tokens: 20,
            ..Request::prompt(format!("overhead {i}"))
        };
        if i % 2 == 0 {
            record(
                &mut d_first,
                &mut d_total,
                measure(direct.stream(request.clone())).await,
            );
            record(
                &mut e_first,
                &mut e_total,
                measure(engine.send(request, RequestMeta::new(Source::Ask)).1).await,
            );
        } else {
            record(
                &mut e_first,
                &mut e_total,
                measure(
                    engine
                        .send(request.clone(), RequestMeta::new(Source::Ask))
                        .1,
                )
                .await,
            );
            record(
                &mut d_first,
                &mut d_total,
                measure(direct.stream(request)).await,
            );
        }
    }
    println!(
        "engine overhead over a direct call ({SEQUENTIAL} sequential requests, 20 tokens, loopback)"
    );
    println!(
        "  {:<22} {:>8} {:>8} {:>11} {:>11}",
        "", "p50 µs", "p99 µs", "added p50", "added p99"
    );
    for (what, d, e) in [
        ("time to first event", &d_first, &e_first),
        ("total", &d_total, &e_total),
    ] {
        println!(
            "  {what:<22} {:>8.0} {:>8.0} {:>8.0} µs {:>8.0} µs   (direct {:.0} / {:.0})",
            us(e, 0.5),
            us(e, 0.99),
            us(e, 0.5) - us(d, 0.5),
            us(e, 0.99) - us(d, 0.99),
            us(d, 0.5),
            us(d, 0.99),
        );
    }
}

/// The failover decision: time to first event through [refusing primary → fallback], minus the time
/// the refusal itself takes, minus the fallback's own time to first event (p50s of 500 runs each).
async fn failover_decision(sim: &Simulator) {
    // A port nobody listens on: take one, then close it.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("http://127.0.0.1:{port}/v1")
    };
    let base = sim.direct_base_url("openai").unwrap();
    let refusing = client("primary", Protocol::Openai, refused);
    let direct = client("openai", Protocol::Openai, base.clone());
    let mut settings = EngineSettings::default();
    settings.retry.max_retries = 0;
    let shared = shared();
    let targets = vec![
        Target::new(Arc::clone(&refusing)),
        Target::new(client("openai", Protocol::Openai, base)),
    ];
    let engine = FailoverEngine::new("bench", targets, settings, shared.clone());
    let (mut chain, mut refusal, mut fallback) = (histogram(), histogram(), histogram());
    for i in 0..500 {
        let request = Request {
            max_tokens: 5,
            ..Request::prompt(format!("f {i}"))
        };
        let start = Instant::now();
        let mut s = refusing.stream(request.clone());
        assert!(s.next().await.unwrap().is_err());
        refusal.record(start.elapsed().as_nanos() as u64).unwrap();
        fallback
            .record(measure(direct.stream(request.clone())).await.0.as_nanos() as u64)
            .unwrap();
        // Keep the primary's breaker closed so every request meets the refusal.
        shared.breakers.reset("primary");
        chain
            .record(
                measure(engine.send(request, RequestMeta::new(Source::Ask)).1)
                    .await
                    .0
                    .as_nanos() as u64,
            )
            .unwrap();
    }
    let p50 = |h: &Histogram<u64>| h.value_at_quantile(0.5) as f64 / 1000.0;
    println!(
        "failover decision (refused → fallback request sent), p50 of 500: {:.1} µs  (chain first event {:.1} − refusal {:.1} − fallback first event {:.1})",
        p50(&chain) - p50(&refusal) - p50(&fallback),
        p50(&chain),
        p50(&refusal),
        p50(&fallback),
    );
}

fn breaker_admission() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let breakers = Breakers::new(BreakerConfig::default(), Bus::new(16));
    let n = 1_000_000;
    // The engine's targets hold their key; so does this loop.
    let key = "anthropic".into();
    let start = Instant::now();
    for _ in 0..n {
        let permit = breakers.admit(&key).unwrap();
        permit.record(CallOutcome::Success);
    }
    let per = start.elapsed().as_nanos() as f64 / n as f64;
    println!("breaker admission (admit + record success, one thread): {per:.0} ns");
}

async fn concurrent(sim: &Simulator) {
    let direct = client(
        "openai",
        Protocol::Openai,
        sim.direct_base_url("openai").unwrap(),
    );
    let engine = FailoverEngine::new(
        "bench",
        vec![Target::new(direct)],
        EngineSettings::default(),
        shared(),
    );
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let request = Request {
                    max_tokens: 50,
                    ..Request::prompt(format!("c {i}"))
                };
                measure(engine.send(request, RequestMeta::new(Source::Load)).1).await
            })
        })
        .collect();
    let mut total = histogram();
    for t in tasks {
        let (_, t) = t.await.unwrap();
        total.record(t.as_micros() as u64).unwrap();
    }
    let wall = start.elapsed();
    println!(
        "{CONCURRENT} concurrent streams through one engine (50 tokens each): all done in {:.2} s, per stream p50 {:.0} ms, p99 {:.0} ms, {:.0} streams/s",
        wall.as_secs_f64(),
        total.value_at_quantile(0.5) as f64 / 1000.0,
        total.value_at_quantile(0.99) as f64 / 1000.0,
        CONCURRENT as f64 / wall.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and wants a quick run.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    breaker_admission();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // On a worker thread, as the engine's own tasks are: `block_on`'s future runs on the main thread,
    // where every I/O wake-up is a cross-thread hand-off that would penalise the direct path.
    rt.block_on(async { tokio::spawn(measure_all()).await.unwrap() });
}

async fn measure_all() {
    {
        let fast = |name: &str, protocol| SimProviderSpec {
            first_event_latency: Duration::ZERO,
            token_delay: Duration::ZERO,
            jitter: 0.0,
            ..SimProviderSpec::new(name, protocol)
        };
        let config = SimConfig {
            providers: vec![fast("openai", Protocol::Openai)],
            seed: 1,
        };
        let sim = Simulator::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        overhead(&sim).await;
        failover_decision(&sim).await;
        concurrent(&sim).await;
        sim.shutdown().await;
    }
}
