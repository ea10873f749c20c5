//! The failover engine: a request goes down an ordered chain of targets, with breakers, retries,
//! hedging and mid-stream recovery, and comes back complete from whichever target could answer.
//!
//! - `failover.rs`: the engine ([`failover::FailoverEngine`]) and its public face; re-exports the rest
//! - `chain.rs`: targets and the chain's settings (mid-stream policy, all-open fallback, hedge trigger)
//! - `pool.rs`: pools of equivalent targets, and the order each request tries their members in
//! - `shared.rs`: what all engines share: bus, breakers, budget, prices, latency ring, totals
//! - `decide.rs`: the pure decisions: the next step after a failure, which error tells most
//! - `run.rs`: one request's walk down the chain, the attempts on each target and their booking
//! - `tally.rs`: what one request has spent and delivered, and the error it will end with
//! - `hedge.rs`: racing a silent target against the next one
//! - `mid_stream.rs`: restart, continue (prefill) or fail when a committed stream breaks
//! - `attempt.rs`: one attempt at one provider, published on the bus
//! - `probe.rs`: active recovery probes of the providers whose breakers are open
//! - `breaker/`: the breaker state machine (`machine.rs`) and the registry that owns the keys (`registry.rs`)
//! - `classify.rs`: what each error class means for retry, failover and the breaker
//! - `retry.rs`: backoff, retry-after and the retry budget
//! - `cost.rs`: prices per model and what an attempt cost
//! - `throttle.rs`: the providers' rate limits from their headers, and who is throttled
//! - `steer.rs`: passing over a throttled target while a later one is not

pub mod attempt;
pub mod breaker;
pub mod chain;
pub mod classify;
pub mod cost;
pub mod decide;
pub mod failover;
mod hedge;
mod mid_stream;
pub mod pool;
pub mod probe;
pub mod retry;
mod run;
pub mod shared;
mod steer;
mod tally;
#[cfg(test)]
mod testkit;
pub mod throttle;
