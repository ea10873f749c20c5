//! A gateway's `/metrics`, as a scraper reads it.

use std::time::{Duration, Instant};

/// The text of `{base}/metrics`.
pub async fn metrics(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `{base}/metrics` once `ready` takes it (the metrics fold on its own task), within 10 s; a
/// panic naming `what` otherwise.
pub async fn metrics_once(
    http: &reqwest::Client,
    base: &str,
    what: &str,
    ready: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics(http, base).await;
        if ready(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{base}/metrics never showed {what}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
