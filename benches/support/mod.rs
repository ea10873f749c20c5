//! What the engine's benchmarks share: an engine's shared state with a retry budget that never
//! runs out, one stream timed to its first event and its end, and the histograms they fill.

use futures::StreamExt;
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

use breakerbox::engine::breaker::{BreakerConfig, Breakers};
use breakerbox::engine::cost::Pricing;
use breakerbox::engine::failover::Shared;
use breakerbox::engine::retry::{BudgetConfig, RetryBudget};
use breakerbox::event::Bus;
use breakerbox::provider::{self, StreamEvent};

pub fn shared() -> Shared {
    let bus = Bus::new(1 << 16);
    let breakers = Breakers::new(BreakerConfig::default(), bus.clone());
    let budget = RetryBudget::new(&BudgetConfig {
        capacity: 1e9,
        refill_per_sec: 1e9,
    });
    Shared::new(bus, breakers, budget, Pricing::built_in())
}

/// Time to the first event and to the end of one stream.
pub async fn measure(stream: provider::ProviderStream) -> (Duration, Duration) {
    let start = Instant::now();
    let mut stream = stream;
    let mut first = None;
    while let Some(item) = stream.next().await {
        let item = item.expect("a healthy stream");
        first.get_or_insert_with(|| start.elapsed());
        if matches!(item, StreamEvent::Done { .. }) {
            break;
        }
    }
    (first.expect("an event"), start.elapsed())
}

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram")
}
