//! SSE decoding throughput (MB/s and events/s) on multi-megabyte streams built from the recorded
//! fixtures, fed in 1 KiB and 16 KiB reads; and decoding plus normalizing, as a client does.
#![allow(clippy::unwrap_used)]

use breakerbox::provider::anthropic::AnthropicParser;
use breakerbox::provider::http::SseParser;
use breakerbox::provider::openai::OpenAiParser;
use breakerbox::provider::sse::{Decoder, SseItem};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::collections::VecDeque;
use std::hint::black_box;

const TARGET_BYTES: usize = 4 << 20;

/// A fixture repeated to about 4 MiB. The Anthropic ones end without a blank line, so one is added.
fn corpus(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut one = std::fs::read(path).unwrap();
    while !one.ends_with(b"\n\n") {
        one.push(b'\n');
    }
    one.iter()
        .copied()
        .cycle()
        .take(TARGET_BYTES / one.len() * one.len())
        .collect()
}

fn decode(bytes: &[u8], read: usize, out: &mut Vec<SseItem>) -> usize {
    let mut decoder = Decoder::new(1 << 20);
    let mut events = 0;
    for chunk in bytes.chunks(read) {
        decoder.feed(chunk, out);
        events += out.len();
        black_box(&out);
        out.clear();
    }
    decoder.finish(out);
    events + out.len()
}

fn normalize<P: SseParser + Default>(bytes: &[u8], read: usize) -> usize {
    let mut decoder = Decoder::new(1 << 20);
    let mut parser = P::default();
    let (mut items, mut out) = (Vec::new(), VecDeque::new());
    let mut count = 0;
    for chunk in bytes.chunks(read) {
        decoder.feed(chunk, &mut items);
        for item in items.drain(..) {
            // The corpus repeats whole replies, so a terminal event is followed by the next reply.
            let _ = black_box(parser.event(item.unwrap(), &mut out));
            count += out.len();
            out.clear();
        }
    }
    count
}

fn benches(c: &mut Criterion) {
    let inputs = [
        ("openai", corpus("openai/basic_stream.sse")),
        ("anthropic", corpus("anthropic/tool_use_response.sse")),
    ];
    let mut group = c.benchmark_group("sse_decode");
    for (name, bytes) in &inputs {
        let events = decode(bytes, bytes.len(), &mut Vec::new()) as u64;
        group.throughput(Throughput::ElementsAndBytes {
            elements: events,
            bytes: bytes.len() as u64,
        });
        for read in [1024, 16 * 1024] {
            let mut out = Vec::new();
            group.bench_with_input(BenchmarkId::new(*name, read), &read, |b, &read| {
                b.iter(|| decode(bytes, read, &mut out))
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("sse_decode_and_normalize");
    for (name, bytes) in &inputs {
        let events = decode(bytes, bytes.len(), &mut Vec::new()) as u64;
        group.throughput(Throughput::ElementsAndBytes {
            elements: events,
            bytes: bytes.len() as u64,
        });
        let read = 16 * 1024;
        group.bench_with_input(BenchmarkId::new(*name, read), &read, |b, &read| {
            if *name == "openai" {
                b.iter(|| normalize::<OpenAiParser>(bytes, read))
            } else {
                b.iter(|| normalize::<AnthropicParser>(bytes, read))
            }
        });
    }
    group.finish();
}

criterion_group!(sse, benches);
criterion_main!(sse);
