//! The closed sets of values events carry, typed. Each serializes as the snake_case name the
//! recordings and `/events` have always carried, and a value outside the set makes the event
//! unreadable (a reader skips the line and says where) rather than a string every fold must guess at.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub use crate::protocol::{ErrorClass, LimitDimension, Protocol};
pub use crate::provider::Phase;

/// A circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
    /// Tripped by the operator: rejects everything until reset.
    ForcedOpen,
    /// Held closed by the operator: admits everything and never trips until reset.
    ForcedClosed,
}

impl BreakerState {
    pub const ALL: [BreakerState; 5] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
        BreakerState::ForcedOpen,
        BreakerState::ForcedClosed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::ForcedClosed => "forced_closed",
        }
    }

    /// Rejecting calls: open, by itself or by the operator.
    pub fn is_open(&self) -> bool {
        matches!(self, BreakerState::Open | BreakerState::ForcedOpen)
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a target was passed over without an attempt (`attempt_skipped.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Its breaker is open.
    BreakerOpen,
    /// The operator tripped its breaker.
    ForcedOpen,
    /// Its breaker is half-open and its probes are all in flight.
    HalfOpenBusy,
    /// Its context window cannot hold the request.
    ContextTooSmall,
    /// The request is bound to its own protocol (passed through untranslated) and this target speaks
    /// another.
    OtherProtocol,
    /// It cannot continue a reply already begun, under `mid_stream = "continue_or_fail"`.
    CannotContinue,
    /// Its provider is throttled (close to a rate limit before its reset) and a later target is
    /// not: the request goes there first.
    Throttled,
}

impl SkipReason {
    pub const ALL: [SkipReason; 7] = [
        SkipReason::BreakerOpen,
        SkipReason::ForcedOpen,
        SkipReason::HalfOpenBusy,
        SkipReason::ContextTooSmall,
        SkipReason::OtherProtocol,
        SkipReason::CannotContinue,
        SkipReason::Throttled,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            SkipReason::BreakerOpen => "breaker_open",
            SkipReason::ForcedOpen => "forced_open",
            SkipReason::HalfOpenBusy => "half_open_busy",
            SkipReason::ContextTooSmall => "context_too_small",
            SkipReason::OtherProtocol => "other_protocol",
            SkipReason::CannotContinue => "cannot_continue",
            SkipReason::Throttled => "throttled",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the gateway itself refused a request before any provider saw it (`request_rejected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// No route for the model it named.
    UnknownModel,
    /// The gateway's token was missing or wrong.
    Auth,
    /// Its body could not be read as a request of its protocol.
    BadRequest,
    /// One of the gateway's own headers (`x-breakerbox-…`) was wrong, or named no usable chain.
    BadHeader,
    /// Its body was larger than the gateway takes.
    TooLarge,
    /// Its body did not arrive in time (`[gateway] body_timeout`).
    BodyTimeout,
}

impl RejectReason {
    pub const ALL: [RejectReason; 6] = [
        RejectReason::UnknownModel,
        RejectReason::Auth,
        RejectReason::BadRequest,
        RejectReason::BadHeader,
        RejectReason::TooLarge,
        RejectReason::BodyTimeout,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            RejectReason::UnknownModel => "unknown_model",
            RejectReason::Auth => "auth",
            RejectReason::BadRequest => "bad_request",
            RejectReason::BadHeader => "bad_header",
            RejectReason::TooLarge => "too_large",
            RejectReason::BodyTimeout => "body_timeout",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the operator did (`operator_action.action`): the names of the control plane's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorAction {
    Trip,
    ForceClosed,
    Reset,
    SetFault,
    Load,
}

impl OperatorAction {
    pub const ALL: [OperatorAction; 5] = [
        OperatorAction::Trip,
        OperatorAction::ForceClosed,
        OperatorAction::Reset,
        OperatorAction::SetFault,
        OperatorAction::Load,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            OperatorAction::Trip => "trip",
            OperatorAction::ForceClosed => "force_closed",
            OperatorAction::Reset => "reset",
            OperatorAction::SetFault => "set_fault",
            OperatorAction::Load => "load",
        }
    }
}

impl fmt::Display for OperatorAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the engine noticed about a provider's setup (`provider_flagged.flag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderFlag {
    /// A rejected key, no access: it will not answer until its config is fixed.
    Misconfigured,
}

impl ProviderFlag {
    pub const ALL: [ProviderFlag; 1] = [ProviderFlag::Misconfigured];

    pub fn as_str(&self) -> &'static str {
        match self {
            ProviderFlag::Misconfigured => "misconfigured",
        }
    }
}

impl fmt::Display for ProviderFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a pool orders its members for each request (`[[pools]] strategy`, `session_started.pools`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolStrategy {
    /// At random, in proportion to the members' weights.
    #[default]
    Weighted,
    /// The member with the fewest attempts in flight (per unit of weight) first.
    LeastInFlight,
    /// The member with the lowest recent first-event latency first.
    LowestLatency,
}

impl PoolStrategy {
    pub const ALL: [PoolStrategy; 3] = [
        PoolStrategy::Weighted,
        PoolStrategy::LeastInFlight,
        PoolStrategy::LowestLatency,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            PoolStrategy::Weighted => "weighted",
            PoolStrategy::LeastInFlight => "least_in_flight",
            PoolStrategy::LowestLatency => "lowest_latency",
        }
    }
}

impl fmt::Display for PoolStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parsing by name, as the JSON spells it (`"half_open".parse::<BreakerState>()`), and comparing
/// with a name (`state == "open"`).
macro_rules! from_name {
    ($t:ty, $all:expr) => {
        impl PartialEq<str> for $t {
            fn eq(&self, name: &str) -> bool {
                self.as_str() == name
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, name: &&str) -> bool {
                self.as_str() == *name
            }
        }

        impl FromStr for $t {
            type Err = String;

            fn from_str(name: &str) -> Result<Self, String> {
                $all.into_iter()
                    .find(|v| v.as_str() == name)
                    .ok_or_else(|| format!("`{name}` is not a {}", stringify!($t)))
            }
        }
    };
}

from_name!(BreakerState, BreakerState::ALL);
from_name!(SkipReason, SkipReason::ALL);
from_name!(OperatorAction, OperatorAction::ALL);
from_name!(ProviderFlag, ProviderFlag::ALL);
from_name!(LimitDimension, LimitDimension::ALL);
from_name!(PoolStrategy, PoolStrategy::ALL);

#[cfg(test)]
mod tests {
    use super::*;

    fn json<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).unwrap_or_default()
    }

    #[test]
    fn every_name_is_its_json() {
        for state in BreakerState::ALL {
            assert_eq!(json(&state), format!("\"{state}\""));
        }
        for reason in SkipReason::ALL {
            assert_eq!(json(&reason), format!("\"{reason}\""));
            assert_eq!(reason.as_str().parse(), Ok(reason));
        }
        for action in OperatorAction::ALL {
            assert_eq!(json(&action), format!("\"{action}\""));
            assert_eq!(action.as_str().parse(), Ok(action));
        }
        for strategy in PoolStrategy::ALL {
            assert_eq!(json(&strategy), format!("\"{strategy}\""));
            assert_eq!(strategy.as_str().parse(), Ok(strategy));
        }
    }

    #[test]
    fn a_value_outside_the_set_is_refused() {
        assert!(serde_json::from_str::<BreakerState>("\"sideways\"").is_err());
        assert!(serde_json::from_str::<SkipReason>("\"bored\"").is_err());
        assert!("sideways".parse::<BreakerState>().is_err());
    }
}
