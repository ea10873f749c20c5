//! The failover engine: classification policy, attempts, retries, breakers and cost.

pub mod attempt;
pub mod breaker;
pub mod classify;
pub mod cost;
pub mod failover;
pub mod retry;
