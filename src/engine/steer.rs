//! Steering ahead of rate limits: a target whose provider is throttled (see `throttle`) is passed
//! over (`attempt_skipped`, reason `throttled`) while a later target could take the request, so
//! requests move on before the provider's 429 arrives. When every target left is throttled the
//! first is used anyway, and one passed over is still tried when nothing after it answered: a
//! throttled provider may still answer. Breakers never hear of any of it.

use crate::engine::attempt::AttemptReport;
use crate::engine::breaker::Rejection;
use crate::engine::chain::Target;
use crate::engine::run::{Run, TargetEnd, unsuitable};
use crate::engine::tally::Tally;
use crate::provider::{ProviderError, Request};

impl Run {
    /// Whether to pass over `target` for now: it is throttled, and one of `later` is not and could
    /// take `request` (suitable for it, its breaker not open).
    pub(super) fn steer_past(
        &self,
        target: &Target,
        later: &[Target],
        request: &Request,
        min_context: Option<u64>,
    ) -> bool {
        let shared = &self.engine.shared;
        shared.throttle.throttled(&target.breaker_key)
            && later.iter().any(|t| {
                unsuitable(t, request, min_context).is_none()
                    && !shared.breakers.state(&t.breaker_key).is_open()
                    && !shared.throttle.throttled(&t.breaker_key)
            })
    }

    /// The targets passed over as throttled (`steered`, indices into the chain), tried in order
    /// once nothing after them answered. `Some`: how the request ends; a target refused by its
    /// breaker joins `skipped`.
    pub(super) async fn try_steered<'t>(
        &self,
        targets: &'t [Target],
        steered: &[usize],
        request: &Request,
        tally: &mut Tally,
        skipped: &mut Vec<(&'t Target, Rejection)>,
    ) -> Option<Result<AttemptReport, ProviderError>> {
        tally.steered = false;
        for &i in steered {
            match self
                .on_target(&targets[i], request, tally, &targets[i + 1..], false)
                .await
            {
                TargetEnd::Answered(report) => return Some(Ok(*report)),
                TargetEnd::Rejected(rejection) => skipped.push((&targets[i], rejection)),
                TargetEnd::NextTarget(_) => {}
                TargetEnd::Stop(err) => return Some(Err(err)),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use crate::engine::chain::MidStreamPolicy;
    use crate::engine::testkit::*;
    use crate::event::LimitDimension;
    use crate::provider::{Allowance, ErrorClass, Phase, RateLimits, StreamEvent};

    /// A response's headers saying `remaining` of 20 requests are left, for `reset_s` more seconds.
    fn headers(remaining: u64, reset_s: u64) -> Play {
        Play::Emit(Ok(StreamEvent::RateLimits(RateLimits {
            allowances: vec![Allowance {
                dimension: LimitDimension::Requests,
                limit: Some(20),
                remaining: Some(remaining),
                reset: Some(Duration::from_secs(reset_s)),
            }],
        })))
    }

    fn limited(remaining: u64, reset_s: u64, words: &[&str]) -> Vec<Play> {
        let mut script = vec![headers(remaining, reset_s)];
        script.extend(reply(words));
        script
    }

    fn skips(seen: &Seen) -> Vec<(&str, &str)> {
        seen.skips
            .iter()
            .map(|(p, r)| (p.as_str(), r.as_str()))
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_primary_is_passed_over_until_its_reset() {
        let a = Scripted::new(
            "a",
            vec![limited(1, 60, &["from a"]), limited(19, 60, &["a again"])],
        );
        let b = Scripted::new("b", vec![reply(&["from b"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        );
        let first = ask(&e).await;
        assert_eq!(first.text, "from a");
        assert!(first.types.contains(&"rate_limits") && first.types.contains(&"throttle_changed"));
        let second = ask(&e).await;
        assert_eq!(second.text, "from b");
        assert_eq!(skips(&second), [("a", "throttled")]);
        assert_eq!((a.calls(), b.calls()), (1, 1));
        // Throttling is not a breaker state: a's breaker heard nothing of it.
        let snapshot = e.shared().breakers.snapshot(&"a".into());
        assert_eq!(snapshot.state, crate::event::BreakerState::Closed);

        tokio::time::sleep(Duration::from_secs(61)).await;
        let third = ask(&e).await;
        assert_eq!(third.text, "a again");
        assert!(third.skips.is_empty());
        assert_eq!((a.calls(), b.calls()), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_target_is_throttled_the_first_is_used_anyway() {
        let a = Scripted::new(
            "a",
            vec![limited(0, 60, &["a"]), reply(&["a, throttled, answers"])],
        );
        let b = Scripted::new("b", vec![limited(0, 60, &["b"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        );
        ask(&e).await;
        // b is asked directly once, so that both are throttled.
        let only_b = e.with_targets(vec![target(&b, false)]);
        assert_eq!(ask(&only_b).await.text, "b");
        let seen = ask(&e).await;
        assert_eq!(seen.text, "a, throttled, answers");
        assert!(seen.skips.is_empty());
        assert_eq!((a.calls(), b.calls()), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_passed_over_is_still_tried_when_the_later_ones_fail() {
        let a = Scripted::new("a", vec![limited(1, 60, &["a"]), reply(&["a after all"])]);
        let b = Scripted::new(
            "b",
            vec![vec![fail("b", ErrorClass::ServerError, Phase::Headers)]],
        );
        let mut s = settings(MidStreamPolicy::Restart);
        s.retry.max_retries = 0;
        let e = engine(vec![target(&a, false), target(&b, false)], s);
        ask(&e).await;
        let seen = ask(&e).await;
        assert_eq!(seen.text, "a after all");
        assert_eq!(skips(&seen), [("a", "throttled")]);
        assert_eq!((a.calls(), b.calls()), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_target_whose_breaker_is_open_is_nowhere_to_go() {
        let a = Scripted::new(
            "a",
            vec![limited(1, 60, &["a"]), reply(&["a, nothing else open"])],
        );
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        );
        ask(&e).await;
        e.shared().breakers.force_open("b");
        let seen = ask(&e).await;
        assert_eq!(seen.text, "a, nothing else open");
        assert!(seen.skips.is_empty(), "{:?}", seen.skips);
        assert_eq!(b.calls(), 0);
    }

    /// A 429 carries headers too (nothing left): the next request goes elsewhere at once
    /// instead of meeting the same 429, and the breaker counts only the one it saw.
    #[tokio::test(start_paused = true)]
    async fn the_headers_of_a_429_steer_the_next_request() {
        let a = Scripted::new(
            "a",
            vec![vec![
                headers(0, 30),
                answer("a", ErrorClass::RateLimited, 429, Some(30)),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["b1"]), reply(&["b2"])]);
        let mut s = settings(MidStreamPolicy::Restart);
        s.retry.retry_after_cap = Duration::from_secs(1);
        let e = engine(vec![target(&a, false), target(&b, false)], s);
        assert_eq!(ask(&e).await.text, "b1");
        let second = ask(&e).await;
        assert_eq!(second.text, "b2");
        assert_eq!(skips(&second), [("a", "throttled")]);
        assert_eq!(a.calls(), 1);
    }
}
