//! The failover engine: classification policy, retries, breakers and cost.

pub mod cost;
