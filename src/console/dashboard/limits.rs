//! Each provider's rate limits as its responses state them (`rate_limits`), whether it is
//! throttled (`throttle_changed`: close to a limit before its reset, so requests go to the next
//! target first; not a breaker state), and the requests steered away from it (`attempt_skipped`,
//! reason `throttled`).

use chrono::{DateTime, Utc};

use super::providers::plus_millis;
use super::{Dashboard, message};
use crate::event::{EventKind, LimitDimension, RateLimit, SkipReason};

/// Dimensions kept per provider (the set is closed: four).
const DIMENSIONS_KEPT: usize = LimitDimension::ALL.len();

/// A provider's rate limits and its throttling, as its [`super::ProviderView`] carries them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateLimitsView {
    /// What its latest response stated, one per dimension, in [`LimitDimension`] order.
    pub limits: Vec<LimitView>,
    /// While throttled: why, and until when.
    pub throttle: Option<ThrottleView>,
    /// Times it became throttled.
    pub throttled_count: u64,
    /// Requests passed over for a later target because it was throttled.
    pub steered: u64,
    /// The latest `throttle_changed` reason, lifted or not (`requests reset`).
    pub last_reason: Option<(DateTime<Utc>, bool, String)>,
}

/// One dimension of a rate limit, its reset as a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitView {
    pub dimension: LimitDimension,
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset_at: Option<DateTime<Utc>>,
}

impl LimitView {
    /// The share of the limit left, when both are known.
    pub fn share_left(&self) -> Option<f64> {
        match (self.remaining, self.limit) {
            (Some(r), Some(l)) if l > 0 => Some(r as f64 / l as f64),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ThrottleView {
    pub since: DateTime<Utc>,
    pub dimension: Option<LimitDimension>,
    pub remaining: Option<u64>,
    pub limit: Option<u64>,
    /// When the dimension resets (and the throttling with it, unless a response lifts it first).
    pub until: Option<DateTime<Utc>>,
    pub reason: String,
}

impl RateLimitsView {
    /// The dimension to show first: the throttling one, else the one with the least share left
    /// (ties: the first).
    pub fn tightest(&self) -> Option<&LimitView> {
        if let Some(d) = self.throttle.as_ref().and_then(|t| t.dimension)
            && let Some(l) = self.limits.iter().find(|l| l.dimension == d)
        {
            return Some(l);
        }
        self.limits.iter().min_by(|a, b| {
            let share = |l: &LimitView| l.share_left().unwrap_or(f64::INFINITY);
            share(a).total_cmp(&share(b))
        })
    }
}

impl Dashboard {
    /// The rate-limit part of an event: `rate_limits`, `throttle_changed`, a `throttled` skip.
    pub(super) fn fold_limits(&mut self, ts: DateTime<Utc>, kind: &EventKind) {
        match kind {
            EventKind::RateLimits {
                provider, limits, ..
            } => {
                if let Some(view) = self.provider_mut(ts, provider) {
                    view.rate_limits.limits = limits
                        .iter()
                        .take(DIMENSIONS_KEPT)
                        .map(|l| limit_view(ts, l))
                        .collect();
                }
            }
            EventKind::ThrottleChanged {
                provider,
                throttled,
                dimension,
                remaining,
                limit,
                reset_ms,
                reason,
                ..
            } => {
                let Some(view) = self.provider_mut(ts, provider) else {
                    return;
                };
                let v = &mut view.rate_limits;
                v.last_reason = Some((ts, *throttled, message(reason)));
                if !*throttled {
                    v.throttle = None;
                    return;
                }
                v.throttled_count = v.throttled_count.saturating_add(1);
                v.throttle = Some(ThrottleView {
                    since: ts,
                    dimension: *dimension,
                    remaining: *remaining,
                    limit: *limit,
                    until: reset_ms.map(|ms| plus_millis(ts, ms)),
                    reason: message(reason),
                });
            }
            EventKind::AttemptSkipped {
                provider,
                reason: SkipReason::Throttled,
                ..
            } => {
                if let Some(view) = self.provider_mut(ts, provider) {
                    let v = &mut view.rate_limits;
                    v.steered = v.steered.saturating_add(1);
                }
            }
            _ => {}
        }
    }
}

fn limit_view(ts: DateTime<Utc>, l: &RateLimit) -> LimitView {
    LimitView {
        dimension: l.dimension,
        limit: l.limit,
        remaining: l.remaining,
        reset_at: l.reset_ms.map(|ms| plus_millis(ts, ms)),
    }
}

#[cfg(test)]
mod tests {
    use crate::console::dashboard::script::*;
    use crate::event::{EventKind, LimitDimension, RateLimit, SkipReason};

    fn limits(provider: &str, remaining: u64, limit: u64, reset_ms: u64) -> EventKind {
        EventKind::RateLimits {
            provider: provider.into(),
            model: None,
            limits: vec![
                RateLimit {
                    dimension: LimitDimension::Requests,
                    limit: Some(limit),
                    remaining: Some(remaining),
                    reset_ms: Some(reset_ms),
                },
                RateLimit {
                    dimension: LimitDimension::Tokens,
                    limit: Some(100_000),
                    remaining: Some(99_000),
                    reset_ms: Some(reset_ms),
                },
            ],
        }
    }

    fn throttle(provider: &str, throttled: bool) -> EventKind {
        EventKind::ThrottleChanged {
            provider: provider.into(),
            model: None,
            throttled,
            dimension: Some(LimitDimension::Requests),
            remaining: throttled.then_some(2),
            limit: throttled.then_some(50),
            reset_ms: throttled.then_some(12_000),
            reason: if throttled {
                "requests 2/50 left, resets in 12s".into()
            } else {
                "requests reset".into()
            },
        }
    }

    #[test]
    fn limits_throttling_and_steered_requests_are_folded_per_provider() {
        let mut dash = Script::default()
            .at(0, session(&["a", "b"], None))
            .at(1_000, limits("a", 2, 50, 12_000))
            .at(1_000, throttle("a", true))
            .at(
                1_500,
                EventKind::AttemptSkipped {
                    request_id: "r2".into(),
                    provider: "a".into(),
                    reason: SkipReason::Throttled,
                },
            )
            .fold();
        let a = &dash.provider("a").unwrap().rate_limits;
        assert_eq!(a.limits.len(), 2);
        let tightest = a.tightest().unwrap();
        assert_eq!(
            (tightest.dimension, tightest.remaining, tightest.limit),
            (LimitDimension::Requests, Some(2), Some(50))
        );
        assert_eq!(tightest.reset_at, Some(at(13_000)));
        let t = a.throttle.as_ref().unwrap();
        assert_eq!((t.until, t.remaining), (Some(at(13_000)), Some(2)));
        assert_eq!((a.throttled_count, a.steered), (1, 1));
        assert!(dash.provider("b").unwrap().rate_limits.limits.is_empty());

        Script::default()
            .at(13_000, throttle("a", false))
            .at(13_100, limits("a", 49, 50, 60_000))
            .apply_to(&mut dash);
        let a = &dash.provider("a").unwrap().rate_limits;
        assert!(a.throttle.is_none());
        assert_eq!(a.tightest().unwrap().remaining, Some(49));
        assert_eq!(
            a.last_reason.as_ref().map(|(_, t, r)| (*t, r.as_str())),
            Some((false, "requests reset"))
        );
    }
}
