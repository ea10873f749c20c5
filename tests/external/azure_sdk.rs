//! The official `openai.AzureOpenAI` client against the simulator's Azure provider and through a
//! gateway in front of it (tests/sdk/check_azure.py).

const TOKEN: &str = "gw-token-azure";

/// Azure first, Anthropic behind it, no retries and short timeouts.
const CONFIG: &str = r#"
[timeouts]
connect = "500ms"
headers = "500ms"
first_event = "500ms"
idle = "500ms"
total = "10s"

[retry]
max_retries = 0

[sim]
seed = 3

[[sim.providers]]
name = "anthropic"
protocol = "anthropic"
model = "claude-sonnet-5-5"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0

[[sim.providers]]
name = "azure"
protocol = "azure"
model = "gpt-6.2-sol"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0
"#;

pub fn the_official_azure_client_accepts_the_simulator_and_the_gateway(python: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let text = format!(
            "{CONFIG}\n[[chains]]\nname = \"az\"\ntargets = [\"azure\", \"anthropic\"]\n\n\
             [[routes]]\nmodel = \"prod-4o\"\nchain = \"az\"\n"
        );
        let config = breakerbox::config::Config::parse(&text, "azure gateway config").unwrap();
        let (gw, sim, _) = breakerbox::gateway::start_demo(&config, &[], Some(TOKEN.to_string()))
            .await
            .unwrap();
        let args = [
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/check_azure.py").to_string(),
            format!("http://{}", sim.addr()),
            format!("http://{}", gw.addr),
            TOKEN.to_string(),
        ];
        let python = python.to_string();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(python)
                .args(args)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        println!("{stdout}");
        assert!(
            output.status.success(),
            "the Azure SDK check failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        gw.stop().await;
    });
}
