//! Pools of equivalent providers against the simulator over real sockets, with the shipped
//! `assets/pool-demo.toml`: a member answering 429 hands the request to the other member at once,
//! and the chain fails over to its next target only when no member answers.

use futures::StreamExt;
use std::time::Duration;

use breakerbox::cli::CommonArgs;
use breakerbox::config::{Config, Dur, TargetEntry};
use breakerbox::engine::breaker::{BreakerKey, BreakerState};
use breakerbox::engine::failover::{FailoverEngine, RequestMeta};
use breakerbox::event::{Bus, EventKind, Mode, Outcome, PoolStrategy, Source};
use breakerbox::provider::{Request, StreamEvent};
use breakerbox::session::setup::{self, Setup};

const POOL_DEMO: &str = include_str!("../../assets/pool-demo.toml");

/// The shipped pool demo, its simulated providers at zero latency and its retries quick.
fn config(text: &str) -> Config {
    let mut config = Config::parse(text, "assets/pool-demo.toml").expect("the demo config parses");
    for p in &mut config.sim.providers {
        p.first_event_latency = Some(Dur(Duration::ZERO));
        p.token_delay = Some(Dur(Duration::ZERO));
        p.jitter = Some(0.0);
    }
    config.retry.min_delay = Dur(Duration::from_millis(10));
    config.retry.max_delay = Dur(Duration::from_millis(20));
    // A 429's retry-after (the simulator's is 1 s) is worth waiting for on a plain target.
    config.retry.retry_after_cap = Dur(Duration::from_secs(5));
    config
}

async fn demo(config: &Config) -> Setup {
    let common = CommonArgs {
        demo: true,
        ..CommonArgs::default()
    };
    setup::build(&common, config, Bus::new(1 << 16), &|_| None)
        .await
        .expect("demo setup")
}

/// One request's events, and who answered it.
struct Seen {
    events: Vec<EventKind>,
    outcome: Outcome,
    answered: Option<String>,
}

impl Seen {
    fn attempts_on(&self, provider: &str) -> Vec<Option<&str>> {
        self.events
            .iter()
            .filter_map(|k| match k {
                EventKind::AttemptStarted {
                    provider: p, pool, ..
                } if p == provider => Some(pool.as_deref()),
                _ => None,
            })
            .collect()
    }

    fn failed(&self, provider: &str, class: &str) -> bool {
        self.events.iter().any(|k| {
            matches!(k, EventKind::AttemptFailed { provider: p, class: c, .. }
                if p == provider && c.as_str() == class)
        })
    }

    fn chain(&self) -> Vec<String> {
        self.events
            .iter()
            .find_map(|k| match k {
                EventKind::RequestStarted { chain, .. } => Some(chain.clone()),
                _ => None,
            })
            .expect("request_started")
    }
}

async fn ask(engine: &FailoverEngine) -> Seen {
    let mut rx = engine.shared().bus.subscribe();
    let (id, mut stream) =
        engine.send(Request::prompt("Why pools?"), RequestMeta::new(Source::Ask));
    let mut done = false;
    while let Some(item) = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("the engine never hangs")
    {
        done |= matches!(item, Ok(StreamEvent::Done { .. }));
    }
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if serde_json::to_value(&*e).unwrap()["request_id"].as_str() == Some(id.as_str()) {
            events.push(e.kind.clone());
        }
    }
    let (outcome, answered) = events
        .iter()
        .find_map(|k| match k {
            EventKind::RequestFinished {
                outcome, provider, ..
            } => Some((*outcome, provider.clone())),
            _ => None,
        })
        .expect("request_finished");
    assert_eq!(done, outcome == Outcome::Ok);
    Seen {
        events,
        outcome,
        answered,
    }
}

#[tokio::test]
async fn a_member_answering_429_hands_the_request_to_the_other_member_not_to_the_next_target() {
    let config = config(POOL_DEMO);
    let setup = demo(&config).await;
    let sim = setup.sim.as_ref().unwrap();
    // A retry-after under the cap: on a plain target the engine would wait it out and retry.
    sim.set_fault("anthropic-us", "rate_limit:retry_after=1s".parse().unwrap())
        .unwrap();
    let EventKind::SessionStarted { pools, .. } = setup.session_started(Mode::Demo) else {
        panic!("session_started");
    };
    assert_eq!(pools.len(), 1);
    assert_eq!(
        (pools[0].name.as_str(), pools[0].strategy),
        ("claude", PoolStrategy::Weighted)
    );
    let members: Vec<(&str, u32)> = pools[0]
        .members
        .iter()
        .map(|m| (m.provider.as_str(), m.weight))
        .collect();
    assert_eq!(members, [("anthropic-us", 3), ("anthropic-eu", 1)]);

    let engine = setup.engine(None).unwrap();
    let mut moved = 0;
    for _ in 0..8 {
        let seen = ask(&engine).await;
        assert_eq!(seen.outcome, Outcome::Ok);
        assert_eq!(
            seen.answered.as_deref(),
            Some("anthropic-eu"),
            "the other member answers"
        );
        assert!(
            seen.attempts_on("openai").is_empty(),
            "the chain did not fail over"
        );
        let us = seen.attempts_on("anthropic-us");
        assert!(us.len() <= 1, "no retry on the rate-limited member: {us:?}");
        assert!(us.iter().all(|pool| *pool == Some("claude")));
        assert_eq!(seen.attempts_on("anthropic-eu"), [Some("claude")]);
        let chain = seen.chain();
        assert_eq!(
            chain.last().map(String::as_str),
            Some("openai"),
            "{chain:?}"
        );
        if seen.failed("anthropic-us", "rate_limited") {
            assert_eq!(chain[0], "anthropic-us", "tried first, as the pool chose");
            moved += 1;
        }
    }
    // Weighted 3 to 1, most requests start on anthropic-us until its breaker opens (5 failures).
    assert!(
        (2..=5).contains(&moved),
        "{moved} requests moved from anthropic-us"
    );
    let breakers = &engine.shared().breakers;
    let state = |name: &str| breakers.state(&BreakerKey::provider(name));
    assert_eq!(state("anthropic-eu"), BreakerState::Closed);
    assert_eq!(state("openai"), BreakerState::Closed);
    if moved == 5 {
        assert_eq!(state("anthropic-us"), BreakerState::Open, "its own breaker");
    }
    setup.sim.unwrap().shutdown().await;
}

#[tokio::test]
async fn the_chain_fails_over_when_no_member_answers() {
    let config = config(POOL_DEMO);
    let setup = demo(&config).await;
    let sim = setup.sim.as_ref().unwrap();
    sim.set_fault("anthropic-us", "rate_limit:retry_after=1s".parse().unwrap())
        .unwrap();
    sim.set_fault("anthropic-eu", "overloaded".parse().unwrap())
        .unwrap();
    let engine = setup.engine(None).unwrap();
    let seen = ask(&engine).await;
    assert_eq!(seen.answered.as_deref(), Some("openai"));
    assert_eq!(seen.attempts_on("openai"), [None], "openai is no member");
    assert!(seen.failed("anthropic-us", "rate_limited"));
    assert!(seen.failed("anthropic-eu", "overloaded"));
    // Every member was tried before the chain's next target.
    let order: Vec<&str> = seen
        .events
        .iter()
        .filter_map(|k| match k {
            EventKind::AttemptStarted { provider, .. } => Some(provider.as_str()),
            _ => None,
        })
        .collect();
    let first_openai = order.iter().position(|p| *p == "openai").unwrap();
    assert!(order[..first_openai].contains(&"anthropic-us"), "{order:?}");
    assert!(order[..first_openai].contains(&"anthropic-eu"), "{order:?}");
    setup.sim.unwrap().shutdown().await;
}

#[tokio::test]
async fn without_chains_the_default_chain_takes_a_pool_where_its_first_member_stands() {
    let text = POOL_DEMO.replace(
        "[[chains]]\nname = \"default\"\ntargets = [\"claude\", \"openai\"]\n",
        "",
    );
    assert!(!text.contains("[[chains]]"));
    let setup = demo(&config(&text)).await;
    let chain = setup.chain(None).unwrap();
    assert_eq!(
        chain.entries,
        [
            TargetEntry::Name("claude".into()),
            TargetEntry::Name("openai".into())
        ]
    );
    let engine = setup.engine(None).unwrap();
    let names: Vec<(&str, Option<&str>)> = engine
        .targets()
        .iter()
        .map(|t| (t.provider.name(), t.pool_name()))
        .collect();
    assert_eq!(
        names,
        [
            ("anthropic-us", Some("claude")),
            ("anthropic-eu", Some("claude")),
            ("openai", None)
        ]
    );
    setup.sim.unwrap().shutdown().await;
}
