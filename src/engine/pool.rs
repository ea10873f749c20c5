//! Pools of equivalent targets: several keys, regions or deployments of one model, standing together
//! in a chain. Each request tries a pool's members in an order its strategy picks ([`Pool::order`]),
//! and only after all of them the chain's next target; each member keeps its own breaker.
//!
//! - `weighted`: a random order, each place drawn in proportion to the weights of the members not
//!   yet placed (so a member of weight 2 comes first twice as often as one of weight 1);
//! - `least_in_flight`: fewest attempts in flight per unit of weight first (ties in weighted order);
//! - `lowest_latency`: lowest median of the latest first-event latencies first, a member not yet
//!   measured before any; one request in [`EXPLORE_ONE_IN`] goes in weighted order instead, so a
//!   member that was slow is measured again.
//!
//! The randomness is a seeded generator per pool (and each engine builds its own pools), so a run
//! is reproducible and tests can count.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::engine::chain::Target;
use crate::engine::shared::Shared;
use crate::event::PoolStrategy;

/// One request in this many of a `lowest_latency` pool goes in weighted order, to measure again
/// the members that were slow.
pub const EXPLORE_ONE_IN: u64 = 20;

/// A pool: its name, how it orders its members, and the random state its choices draw on.
#[derive(Debug)]
pub struct Pool {
    pub name: String,
    pub strategy: PoolStrategy,
    rng: SplitMix,
}

impl Pool {
    /// A pool whose random choices start from `seed`.
    pub fn new(name: impl Into<String>, strategy: PoolStrategy, seed: u64) -> Arc<Pool> {
        Arc::new(Pool {
            name: name.into(),
            strategy,
            rng: SplitMix(AtomicU64::new(seed)),
        })
    }

    /// A pool seeded from its name: the same config makes the same choices in every run.
    pub fn seeded_by_name(name: &str, strategy: PoolStrategy) -> Arc<Pool> {
        // FNV-1a: stable across builds and platforms, unlike the std hasher.
        let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        Pool::new(name, strategy, seed)
    }

    /// The order in which one request tries `members` (this pool's, as the chain lists them): their
    /// indices, best first.
    pub fn order(&self, members: &[Target], shared: &Shared) -> Vec<usize> {
        let order = self.weighted(members);
        match self.strategy {
            PoolStrategy::Weighted => order,
            PoolStrategy::LeastInFlight => sorted_by(order, |i| {
                let m = &members[i];
                f64::from(shared.in_flight(m.provider.name())) / f64::from(m.weight.max(1))
            }),
            PoolStrategy::LowestLatency => {
                if self.rng.next().is_multiple_of(EXPLORE_ONE_IN) {
                    return order;
                }
                sorted_by(order, |i| {
                    shared
                        .recent_latency(members[i].provider.name())
                        .map_or(-1.0, |d| d.as_secs_f64())
                })
            }
        }
    }

    /// A weighted random order: each member draws an exponential time at the rate of its weight,
    /// and the earliest goes first (Efraimidis and Spirakis), which places each member with
    /// probability proportional to its weight among those not yet placed.
    fn weighted(&self, members: &[Target]) -> Vec<usize> {
        let mut keyed: Vec<(f64, usize)> = members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let u = self.rng.unit();
                (-u.ln() / f64::from(m.weight.max(1)), i)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        keyed.into_iter().map(|(_, i)| i).collect()
    }
}

/// `order` sorted by `key`, lowest first, keeping `order` among equal keys.
fn sorted_by(order: Vec<usize>, key: impl Fn(usize) -> f64) -> Vec<usize> {
    let mut keyed: Vec<(f64, usize)> = order.into_iter().map(|i| (key(i), i)).collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// The chain's targets as one request tries them: each pool's members in the order the pool picks
/// for it, everything else as the chain lists it. Borrowed when the chain has no pool.
pub(super) fn ordered<'a>(targets: &'a [Target], shared: &Shared) -> Cow<'a, [Target]> {
    if targets.iter().all(|t| t.pool.is_none()) {
        return Cow::Borrowed(targets);
    }
    let mut out = Vec::with_capacity(targets.len());
    let mut rest = targets;
    while let Some(first) = rest.first() {
        let Some(pool) = &first.pool else {
            out.push(first.clone());
            rest = &rest[1..];
            continue;
        };
        let n = rest.iter().take_while(|t| t.same_pool(first)).count();
        let (members, after) = rest.split_at(n);
        out.extend(
            pool.order(members, shared)
                .into_iter()
                .map(|i| members[i].clone()),
        );
        rest = after;
    }
    Cow::Owned(out)
}

/// splitmix64 over an atomic state: lock-free, and one sequence for a pool however many requests
/// draw from it at once.
#[derive(Debug)]
struct SplitMix(AtomicU64);

impl SplitMix {
    fn next(&self) -> u64 {
        use crate::rng::GAMMA;
        crate::rng::mix(
            self.0
                .fetch_add(GAMMA, Ordering::Relaxed)
                .wrapping_add(GAMMA),
        )
    }

    /// A uniform number in (0, 1]: never 0, whose logarithm is infinite.
    fn unit(&self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::engine::chain::MidStreamPolicy;
    use crate::engine::testkit::*;
    use crate::event::EventKind;
    use crate::provider::{ErrorClass, Phase};
    use std::time::Duration;
    use tokio::time::Instant;

    fn members(pool: &Arc<Pool>, weights: &[(&str, u32)]) -> Vec<Target> {
        weights
            .iter()
            .map(|(name, weight)| {
                let mut t = target(&Scripted::new(name, vec![]), false);
                t.pool = Some(Arc::clone(pool));
                t.weight = *weight;
                t
            })
            .collect()
    }

    fn shared() -> Shared {
        engine(vec![], settings(MidStreamPolicy::Restart))
            .shared()
            .clone()
    }

    /// How often each member came first in `picks` orders.
    fn firsts(pool: &Pool, m: &[Target], shared: &Shared, picks: usize) -> Vec<usize> {
        let mut counts = vec![0; m.len()];
        for _ in 0..picks {
            let order = pool.order(m, shared);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..m.len()).collect::<Vec<_>>(), "a permutation");
            counts[order[0]] += 1;
        }
        counts
    }

    #[tokio::test(start_paused = true)]
    async fn weighted_spreads_first_picks_by_weight() {
        let pool = Pool::new("p", PoolStrategy::Weighted, 42);
        let m = members(&pool, &[("a", 1), ("b", 2), ("c", 1)]);
        let counts = firsts(&pool, &m, &shared(), 8000);
        // Expected 2000 / 4000 / 2000; a fixed seed makes the counts exact, the bounds say why.
        for (count, expected) in counts.iter().zip([2000.0, 4000.0, 2000.0]) {
            let off = (*count as f64 - expected).abs() / expected;
            assert!(off < 0.05, "{counts:?}");
        }
        // The same seed makes the same choices.
        let again = Pool::new("p", PoolStrategy::Weighted, 42);
        assert_eq!(firsts(&again, &m, &shared(), 8000), counts);
    }

    #[tokio::test(start_paused = true)]
    async fn least_in_flight_picks_the_idle_member() {
        let pool = Pool::new("p", PoolStrategy::LeastInFlight, 7);
        let m = members(&pool, &[("a", 1), ("b", 1), ("c", 1)]);
        let shared = shared();
        let _a = shared.busy("a");
        let _c = (shared.busy("c"), shared.busy("c"));
        for _ in 0..50 {
            assert_eq!(
                pool.order(&m, &shared),
                vec![1, 0, 2],
                "b idle, a busy, c busier"
            );
        }
        // Per unit of weight: two in flight on a member of weight 4 is less than one on weight 1.
        let heavy = members(&pool, &[("a", 1), ("c", 4)]);
        assert_eq!(pool.order(&heavy, &shared)[0], 1);
        drop(_a);
        // Idle again: both a and b are, and ties go by weight at random, each first at times.
        let counts = firsts(&pool, &m[..2], &shared, 200);
        assert!(counts.iter().all(|&n| n > 50), "{counts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn lowest_latency_picks_the_fast_member_once_it_has_samples() {
        let pool = Pool::new("p", PoolStrategy::LowestLatency, 3);
        let m = members(&pool, &[("slow", 1), ("fast", 1)]);
        let shared = shared();
        // Neither measured: both get tried.
        let counts = firsts(&pool, &m, &shared, 200);
        assert!(counts.iter().all(|&n| n > 50), "{counts:?}");
        for _ in 0..5 {
            shared.note_latency("slow", 900);
            shared.note_latency("fast", 120);
        }
        let counts = firsts(&pool, &m, &shared, 1000);
        // Every pick but the exploring ones (one in 20, half of which land on `slow`).
        assert!(counts[1] >= 950 && counts[0] > 0, "{counts:?}");
        // A member not yet measured is tried before any that was.
        let three = members(&pool, &[("slow", 1), ("fast", 1), ("new", 1)]);
        let counts = firsts(&pool, &three, &shared, 1000);
        assert!(counts[2] >= 950, "{counts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_recovered_member_gets_its_latency_measured_again() {
        let pool = Pool::new("p", PoolStrategy::LowestLatency, 11);
        let m = members(&pool, &[("a", 1), ("b", 1)]);
        let shared = shared();
        shared.note_latency("a", 2000);
        shared.note_latency("b", 300);
        // `a` was slow; it is still picked first now and then, so it can show it is fast now.
        let counts = firsts(&pool, &m, &shared, 1000);
        assert!((5..=60).contains(&counts[0]), "{counts:?}");
        for _ in 0..20 {
            shared.note_latency("a", 100);
        }
        assert!(firsts(&pool, &m, &shared, 100)[0] >= 90);
    }

    /// A pool of `a` and `b` (least in flight, with `b` kept busy so that `a` comes first),
    /// then `c`.
    fn pooled(a: &Arc<Scripted>, b: &Arc<Scripted>, c: &Arc<Scripted>) -> Vec<Target> {
        let pool = Pool::new("claude", PoolStrategy::LeastInFlight, 1);
        let mut targets = vec![target(a, false), target(b, false), target(c, false)];
        for t in &mut targets[..2] {
            t.pool = Some(Arc::clone(&pool));
        }
        targets
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_moves_to_the_next_member_at_once_not_to_the_next_target() {
        let a = Scripted::new(
            "a",
            vec![vec![answer("a", ErrorClass::RateLimited, 429, Some(2))]],
        );
        let b = Scripted::new("b", vec![reply(&["from ", "b"])]);
        let c = Scripted::new("c", vec![reply(&["unused"])]);
        let e = engine(pooled(&a, &b, &c), settings(MidStreamPolicy::Restart));
        let mut rx = e.shared().bus.subscribe();
        let busy = e.shared().busy("b");
        let started = Instant::now();
        let seen = ask(&e).await;
        drop(busy);
        assert_eq!(seen.text, "from b");
        assert_eq!((a.calls(), b.calls(), c.calls()), (1, 1, 0));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "waited {:?}: the retry-after is the rate-limited member's, not its sibling's",
            started.elapsed()
        );
        let mut chain = None;
        let mut pools = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            match &ev.kind {
                EventKind::RequestStarted { chain: c, .. } => chain = Some(c.clone()),
                EventKind::AttemptStarted { provider, pool, .. } => {
                    pools.push((provider.clone(), pool.clone()));
                }
                _ => {}
            }
        }
        assert_eq!(
            chain.unwrap(),
            ["a", "b", "c"],
            "members in the order chosen"
        );
        let claude = Some("claude".to_string());
        assert_eq!(
            pools,
            [("a".to_string(), claude.clone()), ("b".to_string(), claude)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_chain_moves_on_only_after_every_member() {
        let a = Scripted::new(
            "a",
            vec![vec![fail("a", ErrorClass::ServerError, Phase::Headers)]],
        );
        let b = Scripted::new(
            "b",
            vec![
                vec![fail("b", ErrorClass::ServerError, Phase::Headers)],
                vec![fail("b", ErrorClass::ServerError, Phase::Headers)],
            ],
        );
        let c = Scripted::new("c", vec![reply(&["from ", "c"])]);
        let e = engine(pooled(&a, &b, &c), settings(MidStreamPolicy::Restart));
        let busy = e.shared().busy("b");
        let seen = ask(&e).await;
        drop(busy);
        assert_eq!(seen.text, "from c");
        // The last member is retried as any target is (max_retries 1), then the chain goes on.
        assert_eq!((a.calls(), b.calls(), c.calls()), (1, 2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_member_whose_breaker_is_open_is_skipped() {
        let a = Scripted::new("a", vec![reply(&["unused"])]);
        let b = Scripted::new("b", vec![reply(&["from ", "b"])]);
        let c = Scripted::new("c", vec![reply(&["unused"])]);
        let e = engine(pooled(&a, &b, &c), settings(MidStreamPolicy::Restart));
        e.shared().breakers.force_open("a");
        let busy = e.shared().busy("b");
        let seen = ask(&e).await;
        drop(busy);
        assert_eq!(seen.text, "from b");
        assert_eq!(seen.skips, [("a".to_string(), "forced_open".to_string())]);
        assert_eq!((a.calls(), b.calls(), c.calls()), (0, 1, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_in_flight_are_counted_while_they_stream() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("slow"),
                Play::Wait(Duration::from_secs(5)),
                done(),
            ]],
        );
        let e = engine(vec![target(&a, false)], settings(MidStreamPolicy::Restart));
        let shared = e.shared().clone();
        let asked = tokio::spawn(async move { ask(&e).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(shared.in_flight("a"), 1);
        asked.await.unwrap();
        assert_eq!(shared.in_flight("a"), 0);
    }

    #[test]
    fn a_chain_without_pools_is_borrowed_as_it_is() {
        let a = Scripted::new("a", vec![]);
        let e = engine(vec![target(&a, false)], settings(MidStreamPolicy::Restart));
        assert!(matches!(ordered(e.targets(), e.shared()), Cow::Borrowed(_)));
    }
}
