//! The simulated providers without their demo pacing (no time to the first event, no jitter), as
//! `[[sim.providers]]` config text: the one place the tests and the memory benchmark take it from.

/// `anthropic` (claude-sonnet-5-5) and `openai` (gpt-6.2-sol), the default models, at zero
/// latency: for the tests that check what happens, not how long it takes.
pub const FAST_SIM: &str = r#"
[[sim.providers]]
name = "anthropic"
protocol = "anthropic"
model = "claude-sonnet-5-5"
first_event_latency = "0ms"
token_delay = "0ms"
jitter = 0.0

[[sim.providers]]
name = "openai"
protocol = "openai"
model = "gpt-6.2-sol"
first_event_latency = "0ms"
token_delay = "0ms"
jitter = 0.0
"#;

/// [`FAST_SIM`] with a token every millisecond: a reply lasts long enough for a fault, a hedge or
/// a timeout to act on it mid-stream.
#[allow(dead_code)] // the memory benchmark takes this file for `FAST_SIM` alone
pub fn paced_sim() -> String {
    FAST_SIM.replace("token_delay = \"0ms\"", "token_delay = \"1ms\"")
}
