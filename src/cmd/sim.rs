//! `breakerbox sim`: the simulated providers as a standalone server.

use color_eyre::eyre::{Result, bail};
use std::io::Write;

use super::stop_signal;
use crate::cli::{Cli, SimArgs};
use crate::config::Config;
use crate::provider::Protocol;
use crate::sim::{SimConfig, Simulator, fault, scenario::Scenario};

pub async fn run(cli: &Cli, args: &SimArgs) -> Result<i32> {
    let common = &cli.common;
    if args.help_faults {
        print!("{}", fault::help());
        return Ok(0);
    }
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        bail!(
            "refusing to listen on {}: the simulator has no authentication and anyone who reaches it \
             can change its faults. Listen on 127.0.0.1, or add --allow-remote if you mean it",
            args.listen
        );
    }
    let mut config = match &common.config {
        Some(path) => Config::load(path)?.sim_config()?,
        None => SimConfig::default(),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    for spec in &mut config.providers {
        spec.first_event_latency = args.first_event_latency.unwrap_or(spec.first_event_latency);
        spec.token_delay = args.token_delay.unwrap_or(spec.token_delay);
    }
    config.apply_fault_assignments(&common.faults)?;
    let scenario = common.scenario.as_deref().map(Scenario::load).transpose()?;

    let sim = Simulator::start(config, args.listen).await?;
    let scenario_line = match scenario {
        Some(s) => {
            let line = if s.repeat {
                format!("scenario: {} (loops every {}s)", s.name, s.length.as_secs())
            } else {
                format!("scenario: {}", s.name)
            };
            sim.run_scenario(s, |_, _| {})?;
            Some(line)
        }
        None => None,
    };
    let stop = stop_signal()?;
    print_banner(&sim, scenario_line)?;
    stop.await?;
    eprintln!("breakerbox sim: stopping");
    sim.shutdown().await;
    Ok(0)
}

fn print_banner(sim: &Simulator, scenario: Option<String>) -> Result<()> {
    let addr = sim.addr();
    let providers = sim.providers();
    let mut out = format!("breakerbox sim listening on http://{addr}\n");
    for p in &providers {
        out += &format!(
            "  {:<12} {:<10} {:<40} direct {:<28} fault {}\n",
            p.name, p.protocol, p.base_url, p.direct_base_url, p.fault
        );
    }
    out += &format!(
        "control: GET http://{addr}/_sim/providers, PUT http://{addr}/_sim/providers/NAME/fault, GET http://{addr}/_sim/log\n"
    );
    if let Some(line) = scenario {
        out += &format!("{line}\n");
    }
    out += "try (any API key works):\n";
    let first = |protocol| providers.iter().find(|p| p.protocol == protocol);
    if let Some(p) = first(Protocol::Anthropic) {
        out += &format!(
            "  curl -N {}/v1/messages -H 'content-type: application/json' -d '{{\"model\":\"{}\",\"max_tokens\":200,\"stream\":true,\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'\n",
            p.base_url, p.model
        );
        out += &format!("  export ANTHROPIC_BASE_URL={}\n", p.base_url);
    }
    if let Some(p) = first(Protocol::Openai) {
        out += &format!("  export OPENAI_BASE_URL={}\n", p.base_url);
    }
    if let Some(p) = providers.first() {
        out += &format!(
            "  curl -X PUT --data 'rate_limit:retry_after=5s' http://{addr}/_sim/providers/{}/fault\n",
            p.name
        );
    }
    out += "faults: breakerbox sim --help-faults. Each request is logged with BREAKERBOX_LOG=info. \
            Ctrl-C stops.\n";
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
