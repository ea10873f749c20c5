//! Events reach every subscriber in `seq` order however many tasks publish at once: on the bus
//! itself, and in a gateway's recording under concurrent requests (the real binary,
//! `serve --headless --record`).

use crate::support::demo_config::FAST_SIM;
use crate::support::events::operator_action;
use crate::support::gateway::Gateway;
use std::ffi::OsStr;
use std::time::Duration;

use breakerbox::event::Bus;

/// Many threads publish at once; the subscriber sees 1, 2, 3, … with no gap, no inversion, and
/// timestamps that never go back.
#[test]
fn concurrent_publishers_are_received_in_seq_order() {
    const PUBLISHERS: u64 = 8;
    const EACH: u64 = 20_000;
    let bus = Bus::new((PUBLISHERS * EACH) as usize);
    let mut rx = bus.subscribe();
    std::thread::scope(|s| {
        for p in 0..PUBLISHERS {
            let bus = &bus;
            s.spawn(move || {
                for i in 0..EACH {
                    bus.publish(operator_action("load", None, &format!("{p}/{i}")));
                }
            });
        }
    });
    let mut last_ts = None;
    for expected in 1..=PUBLISHERS * EACH {
        let event = rx.try_recv().expect("every event, none lagged");
        assert_eq!(event.seq, expected, "received out of order");
        assert!(last_ts <= Some(event.ts), "a timestamp went back");
        last_ts = Some(event.ts);
    }
    assert!(rx.try_recv().is_err(), "nothing more than was published");
}

/// The simulated providers without their demo pacing.
fn fast_config() -> String {
    format!("[sim]\nseed = 0\n{FAST_SIM}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_recording_under_concurrent_requests_is_in_seq_order() {
    let dir = std::env::temp_dir().join(format!("bb-event-order-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("fast.toml");
    std::fs::write(&config, fast_config()).unwrap();
    let recording = dir.join("gateway.jsonl");
    let _ = std::fs::remove_file(&recording);

    let mut gateway = Gateway::start([
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("--record"),
        recording.as_os_str(),
    ]);
    let base = gateway.base.clone();

    // Both protocols, streaming and not, all at once: many tasks publish into the bus together.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let requests = (0..192).map(|i| {
        let client = client.clone();
        let (path, body) = if i % 2 == 0 {
            (
                "/v1/messages",
                serde_json::json!({"model": "default", "max_tokens": 40, "stream": i % 4 == 0,
                    "messages": [{"role": "user", "content": format!("question {i}")}]}),
            )
        } else {
            (
                "/v1/chat/completions",
                serde_json::json!({"model": "default", "max_tokens": 40, "stream": i % 4 == 1,
                    "messages": [{"role": "user", "content": format!("question {i}")}]}),
            )
        };
        let url = format!("{base}{path}");
        tokio::spawn(async move {
            let response = client.post(url).json(&body).send().await.unwrap();
            let status = response.status();
            let _ = response.bytes().await.unwrap();
            status
        })
    });
    for status in futures::future::join_all(requests).await {
        assert!(status.unwrap().is_success());
    }

    // SIGTERM: the gateway stops and closes the recording.
    gateway.terminate(Duration::from_secs(10));

    let text = std::fs::read_to_string(&recording).unwrap();
    let seqs: Vec<u64> = text
        .lines()
        .skip(1) // the header
        .map(|l| {
            let event: serde_json::Value = serde_json::from_str(l).unwrap();
            event["seq"].as_u64().unwrap()
        })
        .collect();
    let finished = text.matches(r#""type":"request_finished""#).count();
    assert_eq!(finished, 192, "every request is in the recording");
    let inversions: Vec<(u64, u64)> = seqs
        .windows(2)
        .filter(|w| w[1] <= w[0])
        .map(|w| (w[0], w[1]))
        .collect();
    assert!(
        inversions.is_empty(),
        "{} of {} events out of order: {:?}",
        inversions.len(),
        seqs.len(),
        &inversions[..inversions.len().min(10)]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
