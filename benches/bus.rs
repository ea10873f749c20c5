//! What publishing an event costs: one publisher with and without a subscriber, and two or four
//! publishers at once (the gateway under concurrent requests), per event.
#![allow(clippy::unwrap_used)]

use breakerbox::event::{Bus, EventKind};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The most frequent event: a few words of a streamed reply.
fn delta() -> EventKind {
    EventKind::TextDelta {
        request_id: "r1234".into(),
        provider: "anthropic".into(),
        text: " circuit breaker".into(),
    }
}

fn publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("bus_publish");
    group.throughput(Throughput::Elements(1));

    let bus = Bus::new(1 << 16);
    group.bench_function("1_publisher_no_subscriber", |b| {
        b.iter(|| black_box(bus.publish(delta())))
    });

    // A subscriber that never reads: the ring overwrites its oldest event, as for a slow console.
    let bus = Bus::new(1 << 16);
    let _rx = bus.subscribe();
    group.bench_function("1_publisher_1_subscriber", |b| {
        b.iter(|| black_box(bus.publish(delta())))
    });

    for publishers in [2u64, 4] {
        let bus = Bus::new(1 << 16);
        let _rx = bus.subscribe();
        group.bench_with_input(
            BenchmarkId::new("concurrent_publishers", publishers),
            &publishers,
            |b, &publishers| {
                // `iters` events in all, shared out among the threads; the time is wall time.
                b.iter_custom(|iters| {
                    let each = iters.div_ceil(publishers);
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for _ in 0..publishers {
                            s.spawn(|| {
                                for _ in 0..each {
                                    black_box(bus.publish(delta()));
                                }
                            });
                        }
                    });
                    let elapsed = start.elapsed();
                    // Per event published, whatever the rounding up added.
                    Duration::from_secs_f64(
                        elapsed.as_secs_f64() * iters as f64 / (each * publishers) as f64,
                    )
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, publish);
criterion_main!(benches);
