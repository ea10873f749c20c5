//! The simulated providers without their demo pacing (no time to the first event, none between
//! tokens, no jitter), for the tests and benchmarks that check what happens, not how long it takes.

/// `[[sim.providers]]` `anthropic` (claude-sonnet-4-5) and `openai` (gpt-5), at zero latency.
pub const FAST_SIM: &str = r#"
[[sim.providers]]
name = "anthropic"
protocol = "anthropic"
model = "claude-sonnet-4-5"
first_event_latency = "0ms"
token_delay = "0ms"
jitter = 0.0

[[sim.providers]]
name = "openai"
protocol = "openai"
model = "gpt-5"
first_event_latency = "0ms"
token_delay = "0ms"
jitter = 0.0
"#;
