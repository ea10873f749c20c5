//! A fleet of gateways on a real Redis (`redis-server`, started here on a free loopback port):
//! breakers shared between two or three gateways in one process, each with its own simulator.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use breakerbox::config::Config;
use breakerbox::event::{BreakerState, Bus, Event, EventKind};
use breakerbox::gateway::{self, server::Running};
use serde_json::json;
use tokio::sync::broadcast;

/// A `redis-server` of this test's own, stopped when dropped.
pub struct Redis {
    binary: String,
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start(binary: &str) -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis {
            binary: binary.to_string(),
            port,
            child: None,
        };
        redis.run();
        redis
    }

    fn run(&mut self) {
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One gateway of the fleet, on the simulator, and its event stream.
struct Member {
    running: Running,
    events: broadcast::Receiver<Arc<Event>>,
    _bus: Bus,
}

async fn member(redis: &Redis, fleet: &str, name: &str, extra: &str, faults: &[&str]) -> Member {
    let text = format!(
        "[cluster]\nredis = \"{}\"\nname = \"{fleet}\"\ninstance = \"{name}\"\n{extra}",
        redis.url()
    );
    let config = Config::parse(&text, "fleet.toml").unwrap();
    let faults: Vec<String> = faults.iter().map(|f| f.to_string()).collect();
    let (running, _sim, bus) = gateway::start_demo(&config, &faults, None).await.unwrap();
    Member {
        running,
        events: bus.subscribe(),
        _bus: bus,
    }
}

impl Member {
    fn base(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    /// The first event from now on that `pred` takes, within `within`.
    async fn seen(&mut self, within: Duration, pred: impl Fn(&EventKind) -> bool) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Ok(event)) if pred(&event.kind) => return Some((*event).clone()),
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => return None,
            }
        }
    }

    /// Wait until the gateway's `/metrics` say the fleet is reachable (or not).
    async fn connected(&mut self, connected: bool) {
        let want = format!("breakerbox_cluster_connected {}", u8::from(connected));
        let http = reqwest::Client::new();
        crate::scrape::metrics_once(&http, &self.base(), &want, |t| t.lines().any(|l| l == want))
            .await;
    }

    async fn control(&self, body: serde_json::Value) {
        let answer = reqwest::Client::new()
            .post(format!("{}/control", self.base()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{body}");
    }

    /// Who answered one whole chat request.
    async fn ask(&self) -> String {
        let answer = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", self.base()))
            .json(&json!({"model": "default", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        answer.headers()["x-breakerbox-provider"]
            .to_str()
            .unwrap()
            .to_string()
    }
}

fn followed(from: &'static str, to: BreakerState) -> impl Fn(&EventKind) -> bool {
    move |k| {
        matches!(k, EventKind::BreakerChanged { provider, to: t, instance: Some(i), .. }
            if provider == "anthropic" && *t == to && i == from)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn fleet_name(test: &str) -> String {
    format!("bb-test-{test}-{}", std::process::id())
}

pub fn a_trip_on_one_gateway_refuses_on_the_others(redis_server: &str) {
    let redis = Redis::start(redis_server);
    runtime().block_on(async {
        let fleet = fleet_name("trip");
        let mut a = member(&redis, &fleet, "gw-a", "", &[]).await;
        let mut b = member(&redis, &fleet, "gw-b", "", &[]).await;
        let mut c = member(&redis, &fleet, "gw-c", "", &[]).await;
        for m in [&mut a, &mut b, &mut c] {
            m.connected(true).await;
        }
        let tripped = Instant::now();
        a.control(json!({"action": "trip", "provider": "anthropic"}))
            .await;
        for m in [&mut b, &mut c] {
            let seen = m
                .seen(
                    Duration::from_secs(5),
                    followed("gw-a", BreakerState::ForcedOpen),
                )
                .await;
            assert!(seen.is_some(), "{} did not follow gw-a's trip", m.base());
        }
        println!(
            "    the trip reached both others in {:?}",
            tripped.elapsed()
        );
        // Refused there: their next requests skip anthropic.
        assert_eq!(b.ask().await, "openai");
        assert_eq!(c.ask().await, "openai");
        let action = c
            .seen(
                Duration::from_secs(5),
                |k| matches!(k, EventKind::OperatorAction { instance: Some(i), .. } if i == "gw-a"),
            )
            .await;
        // Recorded there with the gateway it was taken at (published after the change it made).
        assert!(
            action.is_some(),
            "c records gw-a's trip as an operator_action"
        );
        // A reset from another console applies fleet-wide too.
        c.control(json!({"action": "reset", "provider": "anthropic"}))
            .await;
        for m in [&mut a, &mut b] {
            let seen = m
                .seen(
                    Duration::from_secs(5),
                    followed("gw-c", BreakerState::Closed),
                )
                .await;
            assert!(seen.is_some(), "{} did not follow gw-c's reset", m.base());
        }
        assert_eq!(a.ask().await, "anthropic");
        assert_eq!(b.ask().await, "anthropic");
    });
}

pub fn failures_on_several_instances_add_up_to_one_breaker(redis_server: &str) {
    let redis = Redis::start(redis_server);
    runtime().block_on(async {
        let fleet = fleet_name("count");
        // Each instance alone would need 4 failures in a row; two see 2 each.
        let extra = "[breaker]\nconsecutive_failures = 4\nmin_calls = 100\nprobe_interval = \"off\"\n\
                     [retry]\nmax_retries = 0\n";
        let down = ["anthropic=server_error"];
        let mut a = member(&redis, &fleet, "gw-a", extra, &down).await;
        let mut b = member(&redis, &fleet, "gw-b", extra, &down).await;
        let mut c = member(&redis, &fleet, "gw-c", extra, &[]).await;
        for m in [&mut a, &mut b, &mut c] {
            m.connected(true).await;
        }
        for _ in 0..2 {
            assert_eq!(a.ask().await, "openai");
            assert_eq!(b.ask().await, "openai");
        }
        // One of a and b opened it for the fleet; c, which saw no failure, follows.
        let opened = c
            .seen(Duration::from_secs(5), |k| {
                matches!(k, EventKind::BreakerChanged { provider, to: BreakerState::Open, instance: Some(_), .. }
                    if provider == "anthropic")
            })
            .await
            .expect("c follows the fleet's opening");
        let EventKind::BreakerChanged {
            reason, instance, ..
        } = &opened.kind
        else {
            unreachable!()
        };
        assert!(reason.contains("across the fleet"), "{reason}");
        assert!(matches!(instance.as_deref(), Some("gw-a" | "gw-b")));
        assert_eq!(c.ask().await, "openai", "c skips the fleet's open breaker");
    });
}

pub fn only_one_instance_probes_for_the_fleet(redis_server: &str) {
    let redis = Redis::start(redis_server);
    runtime().block_on(async {
        let fleet = fleet_name("probe");
        let extra = "[breaker]\nconsecutive_failures = 1\nprobe_interval = \"300ms\"\n\
                     probe_interval_max = \"300ms\"\nrecovery = \"60s\"\n[retry]\nmax_retries = 0\n";
        let down = ["anthropic=overloaded"];
        let mut members = Vec::new();
        for name in ["gw-a", "gw-b", "gw-c"] {
            members.push(member(&redis, &fleet, name, extra, &down).await);
        }
        for m in &mut members {
            m.connected(true).await;
        }
        // One failure opens it on gw-a; the others follow; then every one would probe.
        assert_eq!(members[0].ask().await, "openai");
        let window = Duration::from_secs(3);
        let started = Instant::now();
        let mut probes: Vec<(Duration, usize)> = Vec::new();
        let mut streams: Vec<_> = members.iter_mut().map(|m| &mut m.events).collect();
        while started.elapsed() < window {
            for (i, events) in streams.iter_mut().enumerate() {
                while let Ok(event) = events.try_recv() {
                    if matches!(event.kind, EventKind::ProbeStarted { .. }) {
                        probes.push((started.elapsed(), i));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        probes.sort();
        println!("    probes in {window:?}: {probes:?}");
        assert!(probes.len() >= 2, "the fleet probes: {probes:?}");
        // Three instances probing alone would send three per interval; the fleet's claim leaves
        // one, so probes are at least a (jittered) interval apart.
        for pair in probes.windows(2) {
            let gap = pair[1].0 - pair[0].0;
            assert!(gap >= Duration::from_millis(200), "two probes {gap:?} apart: {probes:?}");
        }
        assert!(probes.len() <= 3 * 1000 / 240 + 1, "{probes:?}");
    });
}

pub fn with_redis_gone_every_instance_serves_then_resynchronizes(redis_server: &str) {
    let mut redis = Redis::start(redis_server);
    runtime().block_on(async {
        let fleet = fleet_name("gone");
        let mut a = member(&redis, &fleet, "gw-a", "", &[]).await;
        let mut b = member(&redis, &fleet, "gw-b", "", &[]).await;
        a.connected(true).await;
        b.connected(true).await;
        redis.kill();
        a.connected(false).await;
        b.connected(false).await;
        // Both carry on, on their own breakers.
        assert_eq!(a.ask().await, "anthropic");
        assert_eq!(b.ask().await, "anthropic");
        // A trip while the fleet is away holds here only…
        a.control(json!({"action": "trip", "provider": "anthropic"}))
            .await;
        assert_eq!(a.ask().await, "openai");
        assert_eq!(b.ask().await, "anthropic");
        // …and reaches the fleet once Redis is back.
        redis.restart();
        a.connected(true).await;
        let seen = b
            .seen(
                Duration::from_secs(10),
                followed("gw-a", BreakerState::ForcedOpen),
            )
            .await;
        assert!(
            seen.is_some(),
            "b catches up with gw-a's trip after the outage"
        );
        assert_eq!(b.ask().await, "openai");
    });
}

pub fn one_instances_rate_limit_headers_steer_the_whole_fleet(redis_server: &str) {
    let redis = Redis::start(redis_server);
    runtime().block_on(async {
        let fleet = fleet_name("limits");
        // a's anthropic states a budget of 5 requests a minute; b's says nothing of limits.
        let budget = ["anthropic=rate_limit_budget:requests=5,tokens=0,per=60s"];
        let mut a = member(&redis, &fleet, "gw-a", "", &budget).await;
        let mut b = member(&redis, &fleet, "gw-b", "", &[]).await;
        a.connected(true).await;
        b.connected(true).await;
        for _ in 0..5 {
            assert_eq!(a.ask().await, "anthropic");
        }
        // The last answer left 0 of 5: a is throttled, and so is b, which never asked.
        let seen = b
            .seen(Duration::from_secs(5), |k| {
                matches!(k, EventKind::ThrottleChanged { provider, throttled: true, .. }
                    if provider == "anthropic")
            })
            .await;
        assert!(
            seen.is_some(),
            "b takes gw-a's observation of the account's limits"
        );
        assert_eq!(
            b.ask().await,
            "openai",
            "b steers past the throttled provider"
        );
    });
}

/// A TCP proxy to Redis that can go silent without closing anything (a partition).
struct Freezer {
    port: u16,
    frozen: Arc<std::sync::atomic::AtomicBool>,
}

impl Freezer {
    async fn start(to: u16) -> Freezer {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&frozen);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(upstream) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (ur, uw) = upstream.into_split();
                for (mut from, mut to) in [(cr, uw), (ur, cw)] {
                    let flag = Arc::clone(&flag);
                    tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            // Frozen: hold what came, send nothing, close nothing.
                            while flag.load(Ordering::Acquire) {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            if to.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        });
        Freezer { port, frozen }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen
            .store(frozen, std::sync::atomic::Ordering::Release);
    }
}

pub fn a_redis_that_goes_silent_is_noticed_and_rejoined(redis_server: &str) {
    let redis = Redis::start(redis_server);
    runtime().block_on(async {
        let freezer = Freezer::start(redis.port).await;
        let through = Redis {
            binary: String::new(),
            port: freezer.port,
            child: None,
        };
        let mut a = member(&through, &fleet_name("silent"), "gw-a", "", &[]).await;
        a.connected(true).await;
        let frozen_at = Instant::now();
        freezer.freeze(true);
        a.connected(false).await;
        println!("    a silent Redis noticed in {:?}", frozen_at.elapsed());
        // Serving all the while, on its own breakers.
        assert_eq!(a.ask().await, "anthropic");
        freezer.freeze(false);
        a.connected(true).await;
    });
}
