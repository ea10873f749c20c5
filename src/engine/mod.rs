//! The failover engine: classification policy, attempts, retries, breakers and cost.

pub mod attempt;
pub mod classify;
pub mod cost;
