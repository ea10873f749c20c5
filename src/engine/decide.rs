//! The engine's decisions as pure functions of the facts, testable alone: what to do after a failed
//! attempt ([`next_step`]), and how much an error tells the caller ([`informativeness`], which picks
//! the error a request ends with).

use std::time::Duration;

use crate::engine::chain::EngineSettings;
use crate::engine::classify::Failover;
use crate::engine::retry::{self, Backoff, RetryBudget, RetryDecision};
use crate::provider::{ErrorClass, Phase, ProviderError};

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Try the same target again after this delay.
    Retry(Duration),
    /// Move on to the next target.
    NextTarget,
    /// End the request with this error.
    Fail,
}

/// The failover decision for one failed attempt, as a pure function of the facts.
pub struct Facts<'a> {
    pub error: &'a ProviderError,
    /// The attempt had committed (its first event was healthy) before it failed.
    pub committed: bool,
    pub has_next_target: bool,
    /// The next target is another member of this target's pool: an equivalent deployment that
    /// can be asked at once, rather than waiting to retry this one.
    pub next_in_pool: bool,
    /// Retries already made on this target.
    pub retries: u32,
    /// How long the attempt ran before it failed.
    pub elapsed: Duration,
}

/// A connection that carried the request and then closed without a byte of answer after this long
/// was silence, not a blip: waiting on the same route again costs as much again. A prompt reset
/// (a stale pooled connection, a restarting proxy) is still worth an immediate retry.
pub const SILENT_CLOSE: Duration = Duration::from_secs(2);

/// The attempt got no byte from the target and waited for it: it timed out, or the connection
/// closed after [`SILENT_CLOSE`] of silence.
fn silent(facts: &Facts<'_>) -> bool {
    let before_a_byte = matches!(facts.error.phase, Phase::Headers | Phase::FirstEvent);
    match facts.error.class {
        ErrorClass::Timeout | ErrorClass::Stalled => before_a_byte,
        ErrorClass::Connect => {
            facts.error.status.is_none()
                && facts.elapsed >= SILENT_CLOSE
                && matches!(facts.error.phase, Phase::Connect | Phase::Headers)
        }
        _ => false,
    }
}

/// What to do after a failed attempt, and why in a few words.
pub fn next_step(
    settings: &EngineSettings,
    facts: &Facts<'_>,
    backoff: &mut Backoff,
    budget: &RetryBudget,
) -> (Step, &'static str) {
    let class = facts.error.class;
    let policy = settings.policy.get(class);
    let may_fail_over = policy.failover != Failover::No && facts.has_next_target;
    // A target that said nothing at all is not worth another wait on the same route.
    if silent(facts) && !settings.retry_silent_timeouts {
        return if may_fail_over {
            (Step::NextTarget, "timed out in silence")
        } else {
            (Step::Fail, "timed out in silence and no target is left")
        };
    }
    // A mid-stream failure restarts on the next target when there is one.
    if facts.committed && may_fail_over {
        return (Step::NextTarget, "failed mid-stream");
    }
    if facts.next_in_pool && may_fail_over {
        return (Step::NextTarget, "the pool's next member");
    }
    if policy.retry {
        match retry::decide(
            &settings.retry,
            backoff,
            facts.error.retry_after,
            facts.retries,
            budget,
        ) {
            RetryDecision::RetryAfter(delay) => return (Step::Retry(delay), "retryable"),
            RetryDecision::GiveUp(why) if may_fail_over => return (Step::NextTarget, why),
            RetryDecision::GiveUp(why) => return (Step::Fail, why),
        }
    }
    if may_fail_over {
        (Step::NextTarget, "not retryable on this target")
    } else if policy.failover == Failover::No {
        (Step::Fail, "the next provider would fail the same way")
    } else {
        (Step::Fail, "no target is left")
    }
}

/// How much an error tells the caller, for [`Tally::keep`](super::tally::Tally::keep): higher is more. The rank, then a
/// `retry-after` as a tie-break within rank 2.
///
/// - 3: the request itself is at fault and the caller can fix it (`bad_request`, `context_length`,
///   `content_filter`, `too_large`, `not_found`);
/// - 2: a provider answered: an HTTP error status, or an error it named in the stream
///   (`rate_limited`, `overloaded`, `server_error`, `auth`, `quota`, …); one with a `retry-after`
///   (a 429 that says when) beats one without (a plain 500);
/// - 1: the transport failed without a word from the provider (`connect`, `timeout`, `stalled`,
///   `stream_cut`, `malformed`);
/// - 0: the engine's own verdicts (`unavailable`, `cancelled`).
pub(super) fn informativeness(err: &ProviderError) -> (u8, bool) {
    use ErrorClass::*;
    match err.class {
        BadRequest | ContextLength | ContentFilter | TooLarge | NotFound => (3, false),
        Unavailable | Cancelled => (0, false),
        Connect | Timeout | Stalled | StreamCut | Malformed
            if err.status.is_none() && err.error_type.is_none() =>
        {
            (1, false)
        }
        _ => (2, err.retry_after.is_some()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::chain::MidStreamPolicy;
    use crate::engine::retry::BudgetConfig;
    use crate::engine::testkit::settings;

    #[test]
    fn next_step_decisions() {
        let s = settings(MidStreamPolicy::Restart);
        let budget = RetryBudget::new(&BudgetConfig {
            capacity: 10.0,
            refill_per_sec: 0.0,
        });
        let decide_after = |class, phase, committed, has_next, retries, elapsed| {
            let err = ProviderError::new("a", class, phase, "x");
            let facts = Facts {
                error: &err,
                committed,
                has_next_target: has_next,
                next_in_pool: false,
                retries,
                elapsed,
            };
            let mut backoff = Backoff::new(&s.retry);
            next_step(&s, &facts, &mut backoff, &budget).0
        };
        let decide = |class, phase, committed, has_next, retries| {
            decide_after(class, phase, committed, has_next, retries, Duration::ZERO)
        };
        use ErrorClass::*;
        assert!(matches!(
            decide(Overloaded, Phase::Headers, false, true, 0),
            Step::Retry(_)
        ));
        assert_eq!(
            decide(Overloaded, Phase::Headers, false, true, 1),
            Step::NextTarget,
            "retries spent"
        );
        assert_eq!(
            decide(Overloaded, Phase::Headers, false, false, 1),
            Step::Fail
        );
        assert_eq!(
            decide(StreamCut, Phase::MidStream, true, true, 0),
            Step::NextTarget,
            "restart elsewhere"
        );
        assert!(
            matches!(
                decide(StreamCut, Phase::MidStream, true, false, 0),
                Step::Retry(_)
            ),
            "last target: again"
        );
        assert_eq!(
            decide(Timeout, Phase::Headers, false, true, 0),
            Step::NextTarget,
            "silent"
        );
        // A connection closed before a byte: retried when it was prompt, passed over when it came
        // after a long silence (the same wait again is not worth it).
        assert!(matches!(
            decide_after(
                Connect,
                Phase::Headers,
                false,
                true,
                0,
                Duration::from_millis(30)
            ),
            Step::Retry(_)
        ));
        assert_eq!(
            decide_after(
                Connect,
                Phase::Headers,
                false,
                true,
                0,
                Duration::from_secs(15)
            ),
            Step::NextTarget,
            "closed after 15 s of silence"
        );
        assert_eq!(
            decide_after(Connect, Phase::Connect, false, false, 0, SILENT_CLOSE),
            Step::Fail,
            "silent and no target is left"
        );
        assert_eq!(
            decide(BadRequest, Phase::Headers, false, true, 0),
            Step::Fail
        );
        assert_eq!(
            decide(Quota, Phase::Headers, false, true, 0),
            Step::NextTarget
        );
    }

    #[test]
    fn a_pools_next_member_is_asked_at_once_instead_of_a_retry() {
        let s = settings(MidStreamPolicy::Restart);
        let budget = RetryBudget::new(&BudgetConfig {
            capacity: 10.0,
            refill_per_sec: 0.0,
        });
        let decide = |class, next_in_pool| {
            let err = ProviderError::new("a", class, Phase::Headers, "x");
            let facts = Facts {
                error: &err,
                committed: false,
                has_next_target: true,
                next_in_pool,
                retries: 0,
                elapsed: Duration::ZERO,
            };
            let mut backoff = Backoff::new(&s.retry);
            next_step(&s, &facts, &mut backoff, &budget).0
        };
        use ErrorClass::*;
        for class in [RateLimited, Overloaded, ServerError, Connect] {
            assert!(matches!(decide(class, false), Step::Retry(_)), "{class}");
            assert_eq!(decide(class, true), Step::NextTarget, "{class}");
        }
        // A fault of the request fails the same way on every member.
        assert_eq!(decide(BadRequest, true), Step::Fail);
    }
}
