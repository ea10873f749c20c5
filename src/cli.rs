//! The command line (docs/cli.md). Each command has one entry point; see `main.rs`.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "breakerbox",
    version,
    about = "Keeps LLM agents answering when a provider fails, and shows the on-call operator what is happening.",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub log: LogArgs,

    #[command(flatten)]
    pub record: RecordArgs,

    /// Draw the console without colour (states are always written as words). `NO_COLOR` does the same.
    #[arg(long)]
    pub no_color: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Send a prompt through the failover engine and stream the reply to stdout.
    Ask(AskArgs),
    /// Run the simulated providers as a standalone HTTP server for any client to use.
    Sim(SimArgs),
    /// Replay a recording in the console, report on it, export it, or re-drive its prompts.
    Replay(ReplayArgs),
    /// Run a local gateway that agents point their OpenAI or Anthropic base URL at; the console
    /// watches its traffic.
    Serve(ServeArgs),
    /// Open the console on a gateway running elsewhere (its `/events` and `/control`), or on
    /// several: one console over the fleet.
    Attach(AttachArgs),
    /// Print a shell completion script: `breakerbox completions bash > ~/.local/share/bash-completion/completions/breakerbox`.
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a directory.
    Man(ManArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write breakerbox.1 and breakerbox-COMMAND.1 for each command here instead of printing
    /// breakerbox.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The shared secret of a gateway's `/events` and `/control` (and, when set, its `/v1` routes).
/// Its `Debug` never shows the token.
#[derive(Clone, Args, Default)]
pub struct TokenArgs {
    /// The token (visible to other local users in the process list: prefer --token-file or
    /// BREAKERBOX_TOKEN).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "BREAKERBOX_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// Read the token from this file (its first line).
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
}

impl std::fmt::Debug for TokenArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenArgs")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_file", &self.token_file)
            .finish()
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback requires a token.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// No console: serve until SIGINT or SIGTERM, logging to stderr.
    #[arg(long)]
    pub headless: bool,

    /// Export spans live (one per request, one per attempt) to this OpenTelemetry collector over
    /// OTLP/HTTP with JSON: its base URL, e.g. `http://127.0.0.1:4318` (spans go to `/v1/traces`
    /// under it). Without it, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT;
    /// OTEL_EXPORTER_OTLP_HEADERS adds headers (`key=value,…`).
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,

    #[command(flatten)]
    pub token: TokenArgs,
}

#[derive(Debug, Clone, Args)]
pub struct AttachArgs {
    /// The gateway's base URL, e.g. `http://127.0.0.1:8080`; several for one console over the
    /// fleet, each `URL` or `NAME=URL` (`gw-a=http://10.0.0.5:8080`). None: the config's
    /// `[fleet] gateways`.
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,

    #[command(flatten)]
    pub token: TokenArgs,
}

/// Recording, for the commands that run sessions (the console, `ask`).
#[derive(Debug, Clone, Args, Default)]
pub struct RecordArgs {
    /// Record the session (JSON Lines) to this file. The console records by default into the
    /// sessions directory under the user's data directory.
    #[arg(long, global = true, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Do not record (the console records by default).
    #[arg(long, global = true, conflicts_with = "record")]
    pub no_record: bool,

    /// Leave prompt and reply text out of the recording.
    #[arg(long, global = true)]
    pub redact_content: bool,
}

/// What `replay --report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ReportFormat {
    #[default]
    Md,
    Json,
    /// One self-contained page (inline CSS and SVG charts; no scripts, nothing fetched).
    Html,
}

/// What `replay --export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// OpenTelemetry spans as OTLP/JSON (one span per request and per attempt, `gen_ai.*` attributes).
    OtlpJson,
}

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// The recording.
    pub file: PathBuf,

    /// Print an incident report instead of opening the console.
    #[arg(long, conflicts_with_all = ["export", "redrive"])]
    pub report: bool,

    /// The report's format.
    #[arg(long, value_enum, default_value = "md", requires = "report")]
    pub format: ReportFormat,

    /// Print the recording as OpenTelemetry spans instead of opening the console.
    #[arg(long, value_enum, conflicts_with = "redrive")]
    pub export: Option<ExportFormat>,

    /// Send the recorded prompts again through the current configuration (with --demo, the
    /// simulated providers), to see what other breaker or timeout settings would have done.
    #[arg(long)]
    pub redrive: bool,

    /// With --redrive: send as fast as possible instead of with the recorded timing.
    #[arg(long, requires = "redrive")]
    pub asap: bool,

    /// Start at this speed: 0.5, 1, 2, 10, or `max`.
    #[arg(long, default_value = "1", value_name = "SPEED")]
    pub speed: String,
}

/// Flags shared by the commands that choose providers.
#[derive(Debug, Clone, Args, Default)]
pub struct CommonArgs {
    /// Use the built-in simulated providers instead of real ones.
    #[arg(long, global = true)]
    pub demo: bool,

    /// A TOML config file (providers, simulated providers, timeouts).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "BREAKERBOX_CONFIG",
        hide_env_values = true
    )]
    pub config: Option<PathBuf>,

    /// A steady fault on a simulated provider, as NAME=KIND[:PARAM=VALUE,...] (repeatable),
    /// e.g. `anthropic=rate_limit:retry_after=2s`. See `breakerbox sim --help-faults`.
    #[arg(long = "fault", global = true, value_name = "NAME=KIND[:PARAMS]")]
    pub faults: Vec<String>,

    /// A scenario file scheduling faults over time on the simulated providers.
    #[arg(long, global = true, value_name = "FILE")]
    pub scenario: Option<PathBuf>,

    /// Share breakers with the other gateways of a fleet through this Redis
    /// (`redis://[:PASSWORD@]HOST[:PORT][/DB]`; over the config's `[cluster] redis`).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "BREAKERBOX_REDIS",
        hide_env_values = true
    )]
    pub redis: Option<String>,
}

#[derive(Debug, Clone, Args, Default)]
pub struct LogArgs {
    /// Write diagnostics to this file (filter with BREAKERBOX_LOG, e.g. `debug`).
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct AskArgs {
    /// The prompt to send.
    pub prompt: String,

    /// Send to this provider only, with no failover (a name from the config, or `anthropic` / `openai`).
    #[arg(long, value_name = "NAME", conflicts_with = "chain")]
    pub provider: Option<String>,

    /// Use this chain from the config (default: the chain named `default`, else every provider in order).
    #[arg(long, value_name = "NAME")]
    pub chain: Option<String>,

    /// Send the prompt this many times through one engine, to watch breakers from the command line.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,

    /// Time between the starts of the requests of --count: milliseconds, or a duration like `2s`.
    #[arg(long, default_value = "1000", value_name = "MS", value_parser = parse_interval)]
    pub interval: std::time::Duration,

    /// Override the provider's model.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,

    /// A system prompt.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,

    /// The most tokens the reply may have.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_tokens: u32,

    /// Print the event stream as JSON lines instead of the reply text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Address to listen on; port 0 picks a free port and prints it.
    #[arg(long, default_value = "127.0.0.1:8765", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Allow listening on an address other than loopback (the simulator has no authentication).
    #[arg(long)]
    pub allow_remote: bool,

    /// Seed for the generated replies and the jitter.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Print the fault kinds and their parameters, then exit.
    #[arg(long)]
    pub help_faults: bool,

    /// Time to the first event for every provider (e.g. `0ms` for load tests), instead of the
    /// config's.
    #[arg(long, value_name = "DURATION", value_parser = crate::parse::parse_duration)]
    pub first_event_latency: Option<std::time::Duration>,

    /// Time between tokens for every provider (e.g. `0ms`), instead of the config's.
    #[arg(long, value_name = "DURATION", value_parser = crate::parse::parse_duration)]
    pub token_delay: Option<std::time::Duration>,
}

fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    match text.trim().parse::<u64>() {
        // A bare number is milliseconds, within the bounds of any duration.
        Ok(ms) => crate::parse::parse_duration(&format!("{ms}ms")),
        Err(_) => crate::parse::parse_duration(text),
    }
}
