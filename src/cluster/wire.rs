//! What the gateways of a fleet tell each other through Redis: one JSON message per breaker change
//! or operator action, published on the fleet's channel; the latest change of each breaker is also
//! kept in a hash, for an instance that (re)connects to catch up.

use serde::{Deserialize, Serialize};

use crate::engine::breaker::BreakerKey;
use crate::event::{BreakerState, OperatorAction};

/// The message format's version; a message of another is ignored (and counted).
pub const VERSION: u32 = 1;

/// One message on the fleet's channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub v: u32,
    /// The instance that sent it.
    pub from: String,
    /// When, in milliseconds since the Unix epoch (the sender's clock).
    pub at_ms: u64,
    #[serde(flatten)]
    pub what: What,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum What {
    /// A breaker of the sender changed state.
    State {
        provider: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        to: BreakerState,
        reason: String,
        /// Its open period, when `to` is `open`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        open_ms: Option<u64>,
        /// An operator's change (trip, force closed, reset), which every instance follows even
        /// over a forced state of its own.
        #[serde(default)]
        by_operator: bool,
    },
    /// An operator acted on the sender: every instance does the same.
    Operator {
        action: OperatorAction,
        provider: String,
    },
}

impl Message {
    pub fn key(&self) -> Option<BreakerKey> {
        match &self.what {
            What::State {
                provider, model, ..
            } => Some(BreakerKey {
                provider: provider.clone(),
                model: model.clone(),
            }),
            What::Operator { .. } => None,
        }
    }
}

/// A breaker's field in the fleet's hash, and its part of Redis key names: `provider` or
/// `provider/model`.
pub fn field(key: &BreakerKey) -> String {
    key.to_string()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn messages_read_back_as_written() {
        let m = Message {
            v: VERSION,
            from: "gw-1".into(),
            at_ms: 1_765_000_000_000,
            what: What::State {
                provider: "anthropic".into(),
                model: Some("claude-sonnet-5-5".into()),
                to: BreakerState::Open,
                reason: "5 consecutive failures".into(),
                open_ms: Some(30_000),
                by_operator: false,
            },
        };
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains(r#""kind":"state""#), "{text}");
        assert_eq!(serde_json::from_str::<Message>(&text).unwrap(), m);
        assert_eq!(field(&m.key().unwrap()), "anthropic/claude-sonnet-5-5");
        let op: Message = serde_json::from_str(
            r#"{"v":1,"from":"gw-2","at_ms":1,"kind":"operator","action":"trip","provider":"openai"}"#,
        )
        .unwrap();
        assert_eq!(
            op.what,
            What::Operator {
                action: OperatorAction::Trip,
                provider: "openai".into()
            }
        );
        assert!(op.key().is_none());
    }
}
