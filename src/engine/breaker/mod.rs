//! Circuit breakers: the pure state machine of one ([`machine`]) and the registry that requests share
//! ([`registry`]), which owns the index from a provider to its breakers.

mod machine;
mod registry;

pub use crate::event::BreakerState;
pub use machine::FLEET_PROBE_WAIT;
pub use machine::{Breaker, BreakerConfig, BreakerSnapshot, CallOutcome, Rejection, Transition};
pub use registry::{BreakerKey, Breakers, Counted, Permit, ProbeGate, WeakBreakers};
