//! Recordings: a session as JSON Lines — a header line, then every event exactly as on the bus —
//! written crash-safe by `writer.rs`, read back by `reader.rs` (streamed, bounded memory, every bad
//! line reported with its number), and turned into an incident report (`report/`) or
//! OpenTelemetry spans (`otlp.rs`).

pub mod otlp;
pub mod reader;
pub mod report;
pub mod writer;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{Mode, ProviderInfo};

/// The `format` of line 1.
pub const FORMAT: &str = "breakerbox-session";
/// The recording format's version. A reader accepts the same major version.
pub const RECORDING_VERSION: u32 = 1;

/// The longest line of a recording: the writer never writes a longer one, and the reader skips a
/// longer one without holding it. Events are a few hundred bytes; the largest (an excerpt of a
/// prompt, a piece of reply text, every character escaped) stay far below it.
pub const MAX_LINE: usize = 8 * 1024 * 1024;

/// Line 1 of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionHeader {
    /// Always `breakerbox-session`.
    pub format: String,
    pub format_version: u32,
    /// The breakerbox that wrote it.
    pub breakerbox_version: String,
    pub started_at: DateTime<Utc>,
    pub mode: Mode,
    pub providers: Vec<ProviderInfo>,
    /// A summary of the config in force, with every secret removed (no keys, no key values).
    #[serde(default)]
    pub config: serde_json::Value,
    /// Prompt and reply text were left out (`--redact-content`).
    #[serde(default)]
    pub redacted: bool,
}
