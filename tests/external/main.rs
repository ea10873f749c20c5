//! The checks that drive software from outside the project against the real binary: the official
//! SDKs (Python, JS/TS) against the simulator and the gateway, and real agents (Claude Code, Codex
//! CLI, the OpenAI Agents SDK) against `breakerbox serve --demo`.
//!
//! `.ci/run` installs that software (the Python packages into `target/sdk-venv`, which these
//! checks find on their own; the npm packages under tests/). This binary has its own harness
//! (libtest-mimic) so that a check whose software is missing is reported as **ignored**, in the
//! summary `cargo test` prints, and named after it with why and how to install it — never as a
//! pass. With `BREAKERBOX_REQUIRE_SDK=1` (CI) such a check fails instead.
//!
//! Run them alone with `cargo test --test external` (a filter narrows them as usual, e.g.
//! `cargo test --test external agents::`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agents;
mod azure_sdk;
mod bedrock_sdk;
mod cluster;
#[allow(dead_code)] // the integration tests' gateway helper, shared as it is
#[path = "../it/support/gateway.rs"]
mod gateway;
mod gemini_sdk;
mod needs;
#[path = "../it/support/scrape.rs"]
mod scrape;
mod sdk;
mod sdk_gateway;
mod sim;

use libtest_mimic::{Arguments, Failed, Trial};
use needs::Missing;
use std::process::ExitCode;

/// How the official Python clients get installed.
pub const PIP_SDKS: &str = "bash .ci/run, or: python3 -m venv target/sdk-venv && \
                            target/sdk-venv/bin/pip install -r tests/sdk/requirements.txt";

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let python = needs::python_sdks();
    let agents_sdk = needs::agents_sdk();
    let js = needs::js_sdks();
    let claude = needs::agent("claude");
    let codex = needs::agent("codex");
    let mut checks = Checks::default();
    checks.add("sdk::official_sdks_accept_the_simulator", &python, |py| {
        sdk::official_sdks_accept_the_simulator(&py)
    });
    checks.add(
        "sdk_gateway::official_python_sdks_work_through_the_gateway",
        &python,
        |py| sdk_gateway::official_python_sdks_work_through_the_gateway(&py),
    );
    checks.add(
        "sdk_gateway::official_js_sdks_work_through_the_gateway",
        &js,
        |dir| sdk_gateway::official_js_sdks_work_through_the_gateway(&dir),
    );
    let genai = needs::python_importing(&["google.genai"], PIP_SDKS);
    checks.add(
        "gemini_sdk::google_genai_accepts_the_simulator",
        &genai,
        |py| gemini_sdk::google_genai_accepts_the_simulator(&py),
    );
    checks.add(
        "gemini_sdk::google_genai_works_through_the_gateway",
        &genai,
        |py| gemini_sdk::google_genai_works_through_the_gateway(&py),
    );
    checks.add(
        "azure_sdk::the_official_azure_client_accepts_the_simulator_and_the_gateway",
        &python,
        |py| azure_sdk::the_official_azure_client_accepts_the_simulator_and_the_gateway(&py),
    );
    let boto3 = needs::python_importing(&["boto3"], PIP_SDKS);
    checks.add(
        "bedrock_sdk::boto3_bedrock_runtime_accepts_the_simulator",
        &boto3,
        |py| bedrock_sdk::boto3_bedrock_runtime_accepts_the_simulator(&py),
    );
    checks.add(
        "bedrock_sdk::boto3_bedrock_runtime_works_through_the_gateway",
        &boto3,
        |py| bedrock_sdk::boto3_bedrock_runtime_works_through_the_gateway(&py),
    );
    agents::register(&mut checks, &claude, &codex, &agents_sdk);
    let redis = needs::redis_server();
    checks.add(
        "cluster::a_trip_on_one_gateway_refuses_on_the_others",
        &redis,
        |r| cluster::a_trip_on_one_gateway_refuses_on_the_others(&r),
    );
    checks.add(
        "cluster::failures_on_several_instances_add_up_to_one_breaker",
        &redis,
        |r| cluster::failures_on_several_instances_add_up_to_one_breaker(&r),
    );
    checks.add(
        "cluster::only_one_instance_probes_for_the_fleet",
        &redis,
        |r| cluster::only_one_instance_probes_for_the_fleet(&r),
    );
    checks.add(
        "cluster::one_instances_rate_limit_headers_steer_the_whole_fleet",
        &redis,
        |r| cluster::one_instances_rate_limit_headers_steer_the_whole_fleet(&r),
    );
    checks.add(
        "cluster::a_redis_that_goes_silent_is_noticed_and_rejoined",
        &redis,
        |r| cluster::a_redis_that_goes_silent_is_noticed_and_rejoined(&r),
    );
    checks.add(
        "cluster::with_redis_gone_every_instance_serves_then_resynchronizes",
        &redis,
        |r| cluster::with_redis_gone_every_instance_serves_then_resynchronizes(&r),
    );

    let listing = args.list;
    let selected: Vec<&(String, Missing)> = checks
        .skipped
        .iter()
        .filter(|(name, _)| selected(&args, name))
        .collect();
    let notes: Vec<String> = selected
        .iter()
        .map(|(name, m)| format!("SKIPPED {name}: {}.\n        install: {}", m.why, m.install))
        .collect();
    let conclusion = libtest_mimic::run(&args, checks.trials);
    if !listing && !notes.is_empty() {
        println!(
            "{} check(s) did not run — their software is not installed (ignored above, not \
             passed):",
            notes.len()
        );
        for note in notes {
            println!("  {note}");
        }
        println!();
    }
    conclusion.exit_code()
}

/// Whether the command line's filter selects `name` (as libtest reads it: a substring, or the
/// whole name with `--exact`; `--skip` patterns leave it out).
fn selected(args: &Arguments, name: &str) -> bool {
    let matches = |pattern: &str| {
        if args.exact {
            name == pattern
        } else {
            name.contains(pattern)
        }
    };
    args.filter.as_deref().is_none_or(matches) && !args.skip.iter().any(|s| matches(s))
}

/// The trials, and the ones ignored because what they need is missing.
#[derive(Default)]
pub struct Checks {
    trials: Vec<Trial>,
    skipped: Vec<(String, Missing)>,
}

impl Checks {
    /// A check that runs `check` with what `need` found; when it found nothing, the check is
    /// ignored (or, where the software is required, fails saying what is missing).
    pub fn add<T: Clone + Send + 'static>(
        &mut self,
        name: &str,
        need: &Result<T, Missing>,
        check: impl FnOnce(T) + Send + 'static,
    ) {
        let trial = match need.clone() {
            Ok(found) => Trial::test(name, move || {
                check(found);
                Ok(())
            }),
            Err(missing) if needs::required() => Trial::test(name, move || {
                Err(Failed::from(format!(
                    "BREAKERBOX_REQUIRE_SDK=1 but {} (install: {})",
                    missing.why, missing.install
                )))
            }),
            Err(missing) => {
                self.skipped.push((name.to_string(), missing.clone()));
                Trial::test(name, move || {
                    Err(Failed::from(format!(
                        "cannot run: {} (install: {})",
                        missing.why, missing.install
                    )))
                })
                .with_ignored_flag(true)
            }
        };
        self.trials.push(trial);
    }
}
