//! The fleet's cost on the request path: the same engine on the same simulator, its breakers
//! alone or shared with a fleet through a real Redis (`redis-server`, started here on a free
//! loopback port), side by side in one run, alternating request by request. Admission never waits
//! on Redis, so the two should be equal within noise.
//!
//! Run: `cargo bench --bench cluster` (needs `redis-server`, or `$BREAKERBOX_REDIS_SERVER`).
#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark stops when its setup fails

mod support;
use support::{histogram, measure, shared};

use hdrhistogram::Histogram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use breakerbox::cluster::{self, ClusterConfig};
use breakerbox::engine::failover::{EngineSettings, FailoverEngine, RequestMeta, Shared, Target};
use breakerbox::event::{EventKind, Source};
use breakerbox::provider::{self, ApiKey, Protocol, ProviderConfig, Request};
use breakerbox::sim::{SimConfig, SimProviderSpec, Simulator};

const SEQUENTIAL: usize = 2_000;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let binary =
        std::env::var("BREAKERBOX_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Ok(mut redis) = Command::new(&binary)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .stdout(Stdio::null())
        .spawn()
    else {
        println!(
            "SKIPPED the cluster benchmark: `{binary}` cannot run (apt-get install redis-server)"
        );
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async { tokio::spawn(run(port)).await.unwrap() });
    let _ = redis.kill();
    let _ = redis.wait();
}

async fn run(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "redis-server did not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let spec = SimProviderSpec {
        first_event_latency: Duration::ZERO,
        token_delay: Duration::ZERO,
        jitter: 0.0,
        ..SimProviderSpec::new("openai", Protocol::Openai)
    };
    let sim = Simulator::start(
        SimConfig {
            providers: vec![spec],
            seed: 1,
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let engine = |shared: Shared| {
        let mut cfg = ProviderConfig::new(
            "openai",
            Protocol::Openai,
            sim.direct_base_url("openai").unwrap(),
        );
        cfg.api_key = ApiKey::new("bench");
        let target = Target::new(provider::build(cfg).expect("client"));
        FailoverEngine::new("bench", vec![target], EngineSettings::default(), shared)
    };
    let alone = engine(shared());
    let fleet_shared = shared();
    let mut events = fleet_shared.bus.subscribe();
    cluster::start(
        ClusterConfig {
            redis: format!("redis://127.0.0.1:{port}"),
            name: format!("bb-bench-{}", std::process::id()),
            instance: "bench".to_string(),
        },
        &fleet_shared,
    )
    .unwrap();
    loop {
        let event = events.recv().await.unwrap();
        if matches!(
            event.kind,
            EventKind::ClusterChanged {
                connected: true,
                ..
            }
        ) {
            break;
        }
    }
    let fleet = engine(fleet_shared);
    let mut h: [Histogram<u64>; 4] = [histogram(), histogram(), histogram(), histogram()];
    let one = |engine: &FailoverEngine, i: usize| {
        let request = Request {
            max_tokens: 20,
            ..Request::prompt(format!("cluster {i}"))
        };
        engine.send(request, RequestMeta::new(Source::Ask)).1
    };
    for i in 0..SEQUENTIAL {
        // Alternate which goes first, so drift on the machine affects both alike.
        let order = if i % 2 == 0 {
            [(&alone, 0), (&fleet, 2)]
        } else {
            [(&fleet, 2), (&alone, 0)]
        };
        for (engine, slot) in order {
            let (first, total) = measure(one(engine, i)).await;
            h[slot].record(first.as_micros() as u64).unwrap();
            h[slot + 1].record(total.as_micros() as u64).unwrap();
        }
    }
    let q = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64;
    println!(
        "the fleet's cost per request ({SEQUENTIAL} sequential requests each, 20 tokens, loopback simulator and Redis)"
    );
    println!(
        "  {:<22} {:>14} {:>14}",
        "", "alone p50/p99", "fleet p50/p99"
    );
    for (what, a, f) in [("time to first event", 0, 2), ("total", 1, 3)] {
        println!(
            "  {what:<22} {:>6.0}/{:<6.0}µs {:>6.0}/{:<6.0}µs",
            q(&h[a], 0.5),
            q(&h[a], 0.99),
            q(&h[f], 0.5),
            q(&h[f], 0.99)
        );
    }
    sim.shutdown().await;
}
