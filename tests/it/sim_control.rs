//! The control endpoint, scenarios (files, errors, the runner on a paused clock), start-up checks,
//! and the `breakerbox sim` command line.

use crate::support::sim::*;
use breakerbox::provider::Protocol;
use breakerbox::sim::{Fault, Scenario, SimProviderSpec, Simulator};
use serde_json::{Value, json};
use std::time::Duration;

fn control(sim: &Simulator, path: &str) -> String {
    format!("http://{}/_sim{path}", sim.addr())
}

#[tokio::test]
async fn providers_lists_faults_urls_and_counts() {
    let sim = start_fast().await;
    let health: Value = client()
        .get(control(&sim, "/healthz"))
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    assert_eq!(health["status"], "ok");

    post(
        &url(&sim, "anthropic", Protocol::Anthropic),
        &anthropic_body(false),
    )
    .await;
    let list: Value = client()
        .get(control(&sim, "/providers"))
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    let first = &list[0];
    assert_eq!(first["name"], "anthropic");
    assert_eq!(first["protocol"], "anthropic");
    assert_eq!(first["model"], "claude-sonnet-5-5");
    assert_eq!(first["fault"], "none");
    assert_eq!(first["fault_now"], "none");
    assert_eq!(
        first["base_url"],
        sim.base_url("anthropic").unwrap().as_str()
    );
    assert_eq!(
        first["direct_base_url"],
        sim.direct_base_url("anthropic").unwrap().as_str()
    );
    assert_eq!(first["direct_listening"], true);
    assert_eq!(first["requests"], 1);
    assert_eq!(first["active"], 0);
    assert_eq!(first["outcomes"], json!({"ok": 1}));
    assert_eq!(
        list[1]["base_url"],
        format!("http://{}/openai/v1", sim.addr())
    );
}

#[tokio::test]
async fn faults_change_live_through_put() {
    let sim = start_fast().await;
    let put = |name: &str, body: &str, json_body: bool| {
        let mut request = client()
            .put(control(&sim, &format!("/providers/{name}/fault")))
            .body(body.to_string());
        if json_body {
            request = request.header("content-type", "application/json");
        }
        async move { request.send().await.unwrap() }
    };

    let response = put("anthropic", "rate_limit:retry_after=4s", false).await;
    assert_eq!(response.status(), 200);
    let status: Value = response.json_body().await;
    assert_eq!(status["fault"], "rate_limit:retry_after=4s");
    let response = post(
        &url(&sim, "anthropic", Protocol::Anthropic),
        &anthropic_body(true),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "4");

    let response = put("openai", r#"{"fault": "overloaded:p=0.5"}"#, true).await;
    assert_eq!(response.status(), 200);
    assert_eq!(sim.fault("openai").unwrap().to_string(), "overloaded:p=0.5");

    let response = put("openai", "overlaoded", false).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json_body().await;
    let message = error["error"].as_str().unwrap();
    assert!(
        message.contains("unknown fault kind `overlaoded`"),
        "{message}"
    );
    assert!(
        message.contains("rate_limit"),
        "lists the valid kinds: {message}"
    );
    assert_eq!(sim.fault("openai").unwrap().to_string(), "overloaded:p=0.5");

    let response = put("openai", r#"{"fault": 3}"#, true).await;
    assert_eq!(response.status(), 400);

    let response = put("nobody", "none", false).await;
    assert_eq!(response.status(), 404);
    let error: Value = response.json_body().await;
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("anthropic, openai")
    );

    put("anthropic", "none", false).await;
    let response = post(
        &url(&sim, "anthropic", Protocol::Anthropic),
        &anthropic_body(true),
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_log_shows_recent_requests_with_outcomes() {
    let sim = start_fast().await;
    let anthropic = url(&sim, "anthropic", Protocol::Anthropic);
    post(&anthropic, &anthropic_body(true))
        .await
        .text()
        .await
        .unwrap();
    set(&sim, "anthropic", "auth");
    post(&anthropic, &anthropic_body(true)).await;
    set(&sim, "openai", "quota");
    post(
        &url(&sim, "openai", Protocol::Openai),
        &openai_body(true, true),
    )
    .await;

    let log: Value = client()
        .get(control(&sim, "/log?limit=2"))
        .send()
        .await
        .unwrap()
        .json_body()
        .await;
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["provider"], "anthropic");
    assert_eq!(log[0]["outcome"], "auth");
    assert_eq!(log[0]["status"], 401);
    assert_eq!(log[0]["model"], "claude-test-model");
    assert_eq!(log[0]["stream"], true);
    assert!(log[0]["request_id"].as_str().unwrap().starts_with("req_"));
    assert_eq!(log[1]["provider"], "openai");
    assert_eq!(log[1]["outcome"], "quota");
    assert_eq!(log[1]["status"], 429);

    let all = sim.recent_requests(100);
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].outcome, "ok");
    assert_eq!(all[0].status, Some(200));
    assert_eq!(outcome_count(&sim, "anthropic", "ok"), 1);
    assert_eq!(outcome_count(&sim, "anthropic", "auth"), 1);
}

#[tokio::test]
async fn start_rejects_bad_provider_sets() {
    let listen = "127.0.0.1:0".parse().unwrap();
    for names in [vec!["_sim"], vec!["a", "a"], vec!["with space"], vec![""]] {
        let config = breakerbox::sim::SimConfig {
            providers: names
                .iter()
                .map(|n| SimProviderSpec::new(*n, Protocol::Openai))
                .collect(),
            seed: 0,
        };
        let error = Simulator::start(config, listen).await.err().unwrap();
        assert!(
            matches!(error, breakerbox::sim::SimError::Invalid(_)),
            "{names:?}: {error}"
        );
    }
    let sim = start_fast().await;
    assert!(sim.set_fault("nobody", Fault::none()).is_err());
    assert_eq!(sim.base_url("nobody"), None);
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let sim = start_fast().await;
    let addr = sim.addr();
    sim.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

fn scenario_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/scenarios")
}

#[test]
fn shipped_scenarios_parse_and_name_the_default_providers() {
    // The pool's scenario is for the simulated providers of the pool demo config.
    let pool_demo = breakerbox::config::Config::parse(
        include_str!("../../assets/pool-demo.toml"),
        "assets/pool-demo.toml",
    )
    .unwrap();
    let pool_providers: Vec<&str> = pool_demo
        .sim
        .providers
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let mut count = 0;
    for entry in std::fs::read_dir(scenario_dir()).unwrap() {
        let path = entry.unwrap().path();
        let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let providers = if path.ends_with("pool.toml") {
            &pool_providers[..]
        } else {
            &["anthropic", "openai"]
        };
        scenario
            .check_providers(providers)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!scenario.steps.is_empty());
        assert!(!scenario.description.is_empty());
        count += 1;
    }
    assert!(count >= 2);

    let incident = Scenario::parse(breakerbox::sim::scenario::INCIDENT, "incident").unwrap();
    assert!(incident.repeat);
    assert_eq!(incident.length, Duration::from_secs(120));
    let kinds: Vec<&str> = incident
        .steps
        .iter()
        .filter(|s| s.provider == "anthropic")
        .map(|s| s.fault.kind.name())
        .collect();
    assert_eq!(kinds, ["none", "rate_limit", "overloaded", "flap", "none"]);
}

#[test]
fn scenario_errors_name_file_line_and_what_to_do() {
    let error = |text: &str| Scenario::parse(text, "bad.toml").unwrap_err().to_string();

    let e = error(
        "name = \"x\"\n[[step]]\nat = \"1s\"\nprovider = \"anthropic\"\nfault = \"overlaoded\"\n",
    );
    assert!(e.starts_with("bad.toml:5:"), "{e}");
    assert!(e.contains("unknown fault kind `overlaoded`"), "{e}");
    assert!(e.contains("--help-faults"), "{e}");

    let e = error("name = \"x\"\nloops = true\n");
    assert!(e.starts_with("bad.toml:2:") && e.contains("loops"), "{e}");

    let e = error("name = \"x\"\n[[step]]\nat = \"1\"\nprovider = \"a\"\nfault = \"none\"\n");
    assert!(e.starts_with("bad.toml:3:") && e.contains("unit"), "{e}");

    let e = error(
        "name = \"x\"\nlength = \"5s\"\n[[step]]\nat = \"10s\"\nprovider = \"a\"\nfault = \"none\"\n",
    );
    assert!(
        e.starts_with("bad.toml:2:") && e.contains("shorter than the last step"),
        "{e}"
    );

    let e = error("name = \"x\"\nloop = true\n");
    assert!(
        e.starts_with("bad.toml:2:8: ") && e.contains("needs a length"),
        "{e}"
    );

    // No step, length or fault parameter may be longer than a day.
    let e = error(
        "name = \"x\"\n[[step]]\nat = \"9300000000000000000s\"\nprovider = \"a\"\nfault = \"none\"\n",
    );
    assert!(
        e.starts_with("bad.toml:3:6: step.at: ") && e.contains("24h"),
        "{e}"
    );
    let e = error("name = \"x\"\nlength = \"25h\"\n");
    assert!(
        e.starts_with("bad.toml:2:10: length: ") && e.contains("24h"),
        "{e}"
    );
    let e =
        error("name = \"x\"\n[[step]]\nat = \"1s\"\nprovider = \"a\"\nfault = \"stall:for=2d\"\n");
    assert!(e.starts_with("bad.toml:5:9: step.fault: "), "{e}");

    let e = error("description = \"no name\"\n");
    assert!(e.contains("name"), "{e}");

    let scenario = Scenario::parse(
        "name = \"x\"\n\n[[step]]\nat = \"0s\"\nprovider = \"anthropic\"\nfault = \"none\"\n\n[[step]]\nat = \"1s\"\nprovider = \"claude\"\nfault = \"none\"\n",
        "typo.toml",
    )
    .unwrap();
    let e = scenario
        .check_providers(&["anthropic", "openai"])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("typo.toml:10:"), "{e}");
    assert!(
        e.contains("`claude`") && e.contains("anthropic, openai"),
        "{e}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_runner_applies_steps_on_tokio_time_and_loops() {
    let scenario = Scenario::parse(
        r#"
name = "t"
loop = true
length = "60s"
[[step]]
at = "30s"
provider = "b"
fault = "reset"
[[step]]
at = "0s"
provider = "a"
fault = "overloaded"
[[step]]
at = "10s"
provider = "a"
fault = "none"
"#,
        "t.toml",
    )
    .unwrap();
    let start = tokio::time::Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let runner = tokio::spawn(async move {
        scenario
            .run(|step| {
                let _ = tx.send((
                    start.elapsed().as_secs(),
                    step.provider.clone(),
                    step.fault.to_string(),
                ));
            })
            .await;
    });
    let mut applied = Vec::new();
    while applied.len() < 6 {
        applied.push(rx.recv().await.unwrap());
    }
    runner.abort();
    let expect = |s: u64, p: &str, f: &str| (s, p.to_string(), f.to_string());
    assert_eq!(
        applied,
        [
            expect(0, "a", "overloaded"),
            expect(10, "a", "none"),
            expect(30, "b", "reset"),
            expect(60, "a", "overloaded"),
            expect(70, "a", "none"),
            expect(90, "b", "reset"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_scenario_without_loop_ends_after_its_last_step() {
    let scenario = Scenario::parse(
        "name = \"once\"\n[[step]]\nat = \"5s\"\nprovider = \"a\"\nfault = \"auth\"\n",
        "once.toml",
    )
    .unwrap();
    let mut count = 0;
    let start = tokio::time::Instant::now();
    scenario.run(|_| count += 1).await;
    assert_eq!(count, 1);
    assert_eq!(start.elapsed(), Duration::from_secs(5));
}

#[tokio::test]
async fn the_simulator_plays_a_scenario() {
    let sim = start_fast().await;
    let scenario = Scenario::parse(
        "name = \"s\"\n[[step]]\nat = \"0s\"\nprovider = \"openai\"\nfault = \"stall\"\n[[step]]\nat = \"150ms\"\nprovider = \"openai\"\nfault = \"none\"\n",
        "s.toml",
    )
    .unwrap();
    sim.run_scenario(scenario, |_, _| {}).unwrap();
    eventually("the first step applies", || {
        sim.fault("openai").unwrap().kind.name() == "stall"
    })
    .await;
    eventually("the second step applies", || {
        sim.fault("openai").unwrap().is_none()
    })
    .await;

    let unknown = Scenario::parse(
        "name = \"s\"\n[[step]]\nat = \"0s\"\nprovider = \"nobody\"\nfault = \"none\"\n",
        "u.toml",
    )
    .unwrap();
    assert!(sim.run_scenario(unknown, |_, _| {}).is_err());
}

/// A session names the faults its simulated providers start with, then publishes each step of its
/// scenario as `fault_changed`, after `session_started` (so a console, a recording and a report
/// know the fault in force).
#[tokio::test]
async fn a_session_announces_its_faults_and_scenario_steps() {
    use breakerbox::cli::CommonArgs;
    use breakerbox::event::EventKind;
    let path = session_scenario_path();
    std::fs::write(
        &path,
        "name = \"drill\"\n[[step]]\nat = \"0s\"\nprovider = \"openai\"\nfault = \"stall:after=3\"\n",
    )
    .unwrap();
    let common = CommonArgs {
        demo: true,
        faults: vec!["anthropic=rate_limit:retry_after=5s,p=0.8".into()],
        scenario: Some(path),
        ..CommonArgs::default()
    };
    let mut session = breakerbox::session::Session::start(&common, &|_| None, None)
        .await
        .unwrap();
    let mut events = session.bus.subscribe();
    session.announce(breakerbox::event::Mode::Demo).unwrap();
    let started = events.recv().await.unwrap();
    let EventKind::SessionStarted { providers, .. } = &started.kind else {
        panic!("first came {:?}", started.kind);
    };
    let fault = |name: &str| {
        providers
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .fault
            .clone()
    };
    assert_eq!(
        fault("anthropic").as_deref(),
        Some("rate_limit:retry_after=5s,p=0.8")
    );
    assert_eq!(fault("openai"), None);
    let step = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    let EventKind::FaultChanged {
        provider,
        fault,
        reason,
    } = &step.kind
    else {
        panic!("then came {:?}", step.kind);
    };
    assert_eq!(
        (provider.as_str(), fault.as_str()),
        ("openai", "stall:after=3,for=10m")
    );
    assert_eq!(reason, "scenario drill, step at 0:00");
    let _ = std::fs::remove_file(session_scenario_path());
}

fn session_scenario_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("bb-scenario-{}.toml", std::process::id()))
}

fn binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_breakerbox"))
}

#[test]
fn help_faults_lists_every_kind() {
    let output = binary().args(["sim", "--help-faults"]).output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for kind in [
        "none",
        "rate_limit",
        "quota",
        "overloaded",
        "server_error",
        "bad_request",
        "context_length",
        "content_filter",
        "auth",
        "connect_refused",
        "reset",
        "no_response",
        "slow_first_event",
        "stall",
        "stream_cut",
        "mid_stream_error",
        "malformed",
        "no_done",
        "flap",
        "latency",
    ] {
        assert!(
            text.contains(&format!("\n  {kind} ")),
            "{kind} missing from:\n{text}"
        );
    }
}

#[test]
fn refuses_other_addresses_without_allow_remote_and_bad_faults() {
    let output = binary()
        .args(["sim", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--allow-remote"), "{stderr}");

    let output = binary()
        .args(["sim", "--listen", "127.0.0.1:0", "--fault", "claude=reset"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`claude`") && stderr.contains("anthropic, openai"),
        "{stderr}"
    );
}
