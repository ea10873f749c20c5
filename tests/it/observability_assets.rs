//! The shipped Grafana dashboard and Prometheus alert rules name only metrics that `/metrics`
//! renders, so they never go stale when a metric is renamed. (promtool checks the rules' syntax
//! and their unit tests in CI; this needs no promtool.)

use std::collections::BTreeSet;
use std::path::Path;

use breakerbox::config::Config;

use crate::support::demo_config::paced_sim;

/// Every `breakerbox_…` metric name in `text`.
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("breakerbox_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn the_dashboard_and_alerts_name_only_metrics_that_exist() {
    let config = Config::parse(&paced_sim(), "t.toml").unwrap();
    let (running, _sim, _bus) = breakerbox::gateway::start_demo(&config, &[], None)
        .await
        .unwrap();
    let metrics = reqwest::get(format!("http://{}/metrics", running.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    running.stop().await;
    // Families, and a histogram's series (`_bucket`, `_sum`, `_count`).
    let mut rendered = BTreeSet::new();
    for family in metrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = family.split_once(' ').unwrap_or((family, ""));
        rendered.insert(name.to_string());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                rendered.insert(format!("{name}{suffix}"));
            }
        }
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("assets/grafana/breakerbox.json"))
            .expect("the dashboard is JSON");
    let mut exprs = String::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push_str(target["expr"].as_str().expect("an expr"));
            exprs.push('\n');
        }
    }
    let rules = read("assets/prometheus/alerts.yml");
    for (file, used) in [
        ("the dashboard", names(&exprs)),
        ("alerts.yml", names(&rules)),
    ] {
        assert!(!used.is_empty(), "{file} names no metric");
        let missing: Vec<&String> = used.iter().filter(|n| !rendered.contains(*n)).collect();
        assert!(
            missing.is_empty(),
            "{file} uses metrics /metrics does not render: {missing:?}\nrendered: {rendered:?}"
        );
    }
    // The panels the dashboard promises.
    let titles: Vec<&str> = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["title"].as_str())
        .collect();
    for want in [
        "Breaker",
        "Failover",
        "First-event",
        "Errors",
        "Cost",
        "Rate-limit",
        "in flight",
        "Rejected",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "no {want} panel: {titles:?}"
        );
    }
}
