//! The operator's commands: one type for the console's keys, the gateway's `/control` and `attach`.
//! Its JSON is `/control`'s body (`{"action": "trip", "provider": "anthropic"}`); the [`Controller`]
//! carries it out, and its effects come back as events like everything else.
//!
//! [`Controller`]: super::control::Controller

use serde::{Deserialize, Serialize};

use crate::event::OperatorAction;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Force a provider's breaker(s) open.
    Trip { provider: String },
    /// Hold a provider's breaker(s) closed.
    ForceClosed { provider: String },
    /// Give a provider's breaker(s) back to automatic.
    Reset { provider: String },
    /// Set a simulated provider's fault (`KIND[:PARAMS]`, as `--fault` takes it).
    SetFault { provider: String, fault: String },
    /// Send a prompt through the engine; the reply arrives as events.
    Prompt { text: String },
    /// Turn the background load on or off, or step its rate.
    Load { change: LoadChange },
}

/// How the operator changes the background load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadChange {
    Toggle,
    Faster,
    Slower,
}

/// What a `/control` body looks like, for the error that answers a malformed one.
pub const USAGE: &str = "send {\"action\": \"trip\"|\"force_closed\"|\"reset\", \"provider\": NAME}, \
     {\"action\": \"set_fault\", \"provider\": NAME, \"fault\": KIND}, \
     {\"action\": \"prompt\", \"text\": TEXT} or \
     {\"action\": \"load\", \"change\": \"toggle\"|\"faster\"|\"slower\"}";

impl Command {
    /// The `operator_action` it is recorded as (a prompt is recorded as its request).
    pub fn action(&self) -> Option<OperatorAction> {
        match self {
            Command::Trip { .. } => Some(OperatorAction::Trip),
            Command::ForceClosed { .. } => Some(OperatorAction::ForceClosed),
            Command::Reset { .. } => Some(OperatorAction::Reset),
            Command::SetFault { .. } => Some(OperatorAction::SetFault),
            Command::Load { .. } => Some(OperatorAction::Load),
            Command::Prompt { .. } => None,
        }
    }

    /// The provider it acts on, if any.
    pub fn provider(&self) -> Option<&str> {
        match self {
            Command::Trip { provider }
            | Command::ForceClosed { provider }
            | Command::Reset { provider }
            | Command::SetFault { provider, .. } => Some(provider),
            Command::Prompt { .. } | Command::Load { .. } => None,
        }
    }

    /// A few words for the status bar: `trip anthropic`, `fault overloaded on openai`, `prompt`.
    pub fn summary(&self) -> String {
        match self {
            Command::Trip { provider } => format!("trip {provider}"),
            Command::ForceClosed { provider } => format!("force_closed {provider}"),
            Command::Reset { provider } => format!("reset {provider}"),
            Command::SetFault { provider, fault } => format!("fault {fault} on {provider}"),
            Command::Prompt { .. } => "prompt".to_string(),
            Command::Load { change } => format!("load {change:?}").to_lowercase(),
        }
    }

    /// What a breaker command does, for the status bar and the confirmation.
    pub fn breaker_effect(&self) -> Option<&'static str> {
        match self {
            Command::Trip { .. } => Some("trip (force open)"),
            Command::ForceClosed { .. } => Some("force closed"),
            Command::Reset { .. } => Some("reset to automatic"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_is_the_control_body() {
        let cases = [
            (
                Command::Trip {
                    provider: "a".into(),
                },
                r#"{"action":"trip","provider":"a"}"#,
            ),
            (
                Command::ForceClosed {
                    provider: "a".into(),
                },
                r#"{"action":"force_closed","provider":"a"}"#,
            ),
            (
                Command::SetFault {
                    provider: "a".into(),
                    fault: "overloaded".into(),
                },
                r#"{"action":"set_fault","provider":"a","fault":"overloaded"}"#,
            ),
            (
                Command::Prompt { text: "hi".into() },
                r#"{"action":"prompt","text":"hi"}"#,
            ),
            (
                Command::Load {
                    change: LoadChange::Faster,
                },
                r#"{"action":"load","change":"faster"}"#,
            ),
        ];
        for (command, json) in cases {
            assert_eq!(serde_json::to_string(&command).ok().as_deref(), Some(json));
            assert_eq!(serde_json::from_str::<Command>(json).ok(), Some(command));
        }
    }

    #[test]
    fn unknown_actions_and_fields_are_refused() {
        for body in [
            r#"{"action":"explode","provider":"a"}"#,
            r#"{"action":"trip","provider":"a","force":true}"#,
            r#"{"action":"trip"}"#,
        ] {
            assert!(serde_json::from_str::<Command>(body).is_err(), "{body}");
        }
    }

    #[test]
    fn each_command_names_its_recorded_action() {
        let trip = Command::Trip {
            provider: "a".into(),
        };
        assert_eq!(trip.action(), Some(OperatorAction::Trip));
        assert_eq!(trip.provider(), Some("a"));
        assert_eq!(Command::Prompt { text: "x".into() }.action(), None);
        assert_eq!(
            Command::Load {
                change: LoadChange::Toggle
            }
            .summary(),
            "load toggle"
        );
    }
}
