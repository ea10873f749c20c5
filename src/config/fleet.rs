//! `[fleet]`: the gateways `breakerbox attach` watches when given no URL.
//!
//! ```toml
//! [fleet]
//! gateways = ["http://10.0.0.5:8080", "gw-b=http://10.0.0.6:8080"]
//! ```
//!
//! or, with a token file per gateway (else `--token-file` / `BREAKERBOX_TOKEN` for all):
//!
//! ```toml
//! [[fleet.gateways]]
//! name = "gw-a"
//! url = "http://10.0.0.5:8080"
//! token_file = "/etc/breakerbox/gw-a.token"
//! ```

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSection {
    #[serde(default)]
    pub gateways: Vec<FleetGateway>,
}

/// One gateway of the fleet: `"URL"` or `"NAME=URL"`, or a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FleetGateway {
    Url(String),
    Table(FleetGatewayTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetGatewayTable {
    /// What the console calls it (else its `host:port`).
    #[serde(default)]
    pub name: Option<String>,
    pub url: String,
    /// Its token, on the file's first line (a relative path is the config file's directory's).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}
