//! Scenarios: TOML files that schedule faults over time (see `assets/scenarios/`).
//!
//! ```toml
//! name = "incident"
//! description = "…"
//! loop = true          # start over after `length`
//! length = "90s"       # optional; default = the last step's time
//! [[step]]
//! at = "0s"
//! provider = "anthropic"
//! fault = "rate_limit:retry_after=5s"
//! ```

use serde::Deserialize;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

use super::fault::{Fault, FaultString};
use crate::parse::{Dur, line_col, locate, toml_error};

/// The demo incident shipped with the program (`assets/scenarios/incident.toml`).
pub const INCIDENT: &str = include_str!("../../assets/scenarios/incident.toml");

const HINT: &str = "see assets/scenarios/incident.toml for a working scenario and \
                    `breakerbox sim --help-faults` for the fault syntax";

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// Start over after `length`.
    pub repeat: bool,
    pub length: Duration,
    /// In time order.
    pub steps: Vec<ScenarioStep>,
    /// Where the scenario came from, for messages.
    pub origin: String,
    text: String,
    provider_spans: Vec<std::ops::Range<usize>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioStep {
    /// Time from the start of the scenario (or of the current loop).
    pub at: Duration,
    pub provider: String,
    pub fault: Fault,
}

/// A scenario that cannot be used, with where and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScenarioError(String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "loop")]
    repeat: bool,
    length: Option<Spanned<Dur>>,
    #[serde(default)]
    step: Vec<StepFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    at: Dur,
    provider: Spanned<String>,
    fault: FaultString,
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ScenarioError(format!(
                "cannot read the scenario file {}: {e}",
                path.display()
            ))
        })?;
        Scenario::parse(&text, &path.display().to_string())
    }

    /// Parse scenario text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let at = |offset: usize| {
            let (line, column) = line_col(text, offset);
            format!("{origin}:{line}:{column}")
        };
        let file: ScenarioFile = toml::from_str(text)
            .map_err(|e| ScenarioError(format!("{}\n({HINT})", toml_error(text, origin, &e))))?;
        let mut steps: Vec<(ScenarioStep, std::ops::Range<usize>)> = file
            .step
            .into_iter()
            .map(|s| {
                let span = s.provider.span();
                let step = ScenarioStep {
                    at: s.at.0,
                    provider: s.provider.into_inner(),
                    fault: s.fault.0,
                };
                (step, span)
            })
            .collect();
        // Steps may be written in any order; they run in time order (ties keep file order).
        steps.sort_by_key(|(s, _)| s.at);
        let last = steps.last().map_or(Duration::ZERO, |(s, _)| s.at);
        let length = match file.length {
            Some(l) if l.get_ref().0 < last => {
                return Err(ScenarioError(format!(
                    "{}: length {} is shorter than the last step (at {}): make it at least that long",
                    at(l.span().start),
                    super::fault::format_duration(l.get_ref().0),
                    super::fault::format_duration(last),
                )));
            }
            Some(l) => l.into_inner().0,
            None => last,
        };
        if file.repeat && length.is_zero() {
            let written = locate::span_of(text, &["loop".into()]);
            return Err(ScenarioError(format!(
                "{}: a looping scenario needs a length above 0: add e.g. `length = \"60s\"`",
                at(written.start)
            )));
        }
        let (steps, provider_spans) = steps.into_iter().unzip();
        Ok(Scenario {
            name: file.name,
            description: file.description,
            repeat: file.repeat,
            length,
            steps,
            origin: origin.to_string(),
            text: text.to_string(),
            provider_spans,
        })
    }

    /// The scenario played on other providers: each step's provider is looked up in `cast`
    /// (`(from, to)` pairs) and the steps of a provider with no part are dropped. The built-in
    /// demo incident is written for `anthropic` and `openai`; a `--demo --config` whose
    /// simulator has other providers plays it on its own primary and fallback.
    pub fn recast(mut self, cast: &[(&str, &str)]) -> Scenario {
        let part = |name: &str| {
            cast.iter()
                .find(|(from, _)| *from == name)
                .map(|(_, to)| *to)
        };
        let mut steps = Vec::new();
        let mut spans = Vec::new();
        for (mut step, span) in self.steps.into_iter().zip(self.provider_spans) {
            if let Some(to) = part(&step.provider) {
                step.provider = to.to_string();
                steps.push(step);
                spans.push(span);
            }
        }
        self.steps = steps;
        self.provider_spans = spans;
        for (from, to) in cast {
            self.description = self.description.replace(from, to);
        }
        self
    }

    /// Check that every step names one of these providers.
    pub fn check_providers(&self, names: &[&str]) -> Result<(), ScenarioError> {
        for (step, span) in self.steps.iter().zip(&self.provider_spans) {
            if !names.contains(&step.provider.as_str()) {
                let (line, column) = line_col(&self.text, span.start);
                return Err(ScenarioError(format!(
                    "{}:{line}:{column}: no simulated provider is named `{}` (there are: {}): \
                     fix the step's `provider`",
                    self.origin,
                    step.provider,
                    names.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Apply the steps at their times on tokio's clock, looping if asked; returns when a
    /// non-looping scenario has applied its last step.
    pub async fn run(&self, mut apply: impl FnMut(&ScenarioStep)) {
        let mut start = tokio::time::Instant::now();
        loop {
            for step in &self.steps {
                sleep_until(start.checked_add(step.at)).await;
                apply(step);
            }
            if !self.repeat {
                return;
            }
            let Some(next) = start.checked_add(self.length) else {
                return;
            };
            start = next;
            sleep_until(Some(start)).await;
        }
    }
}

/// Sleep until `deadline`; forever when it is too far to represent (a huge `at`).
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
