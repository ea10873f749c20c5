//! What each error class means for the engine: retry on the same target, fail over to the next, and
//! whether it says something about the provider's health (counts for its breaker). The defaults are
//! below; the config's `[policy.CLASS]` tables override them field by field.

use serde::Deserialize;
use std::collections::BTreeMap;

use crate::provider::ErrorClass;

/// Whether a failure may move to the next target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failover {
    No,
    Yes,
    /// Only to a target configured with a larger context window.
    LargerContext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassPolicy {
    /// Retry on the same target (with backoff, within the budgets).
    pub retry: bool,
    pub failover: Failover,
    /// Counts as a failure for the provider's circuit breaker.
    pub breaker: bool,
}

/// A config override: any field left out keeps the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassPolicyOverride {
    pub retry: Option<bool>,
    pub failover: Option<Failover>,
    pub breaker: Option<bool>,
}

/// The policy table, one entry per class.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    table: BTreeMap<ErrorClass, ClassPolicy>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            table: ErrorClass::ALL
                .iter()
                .map(|&class| (class, default_policy(class)))
                .collect(),
        }
    }
}

fn default_policy(class: ErrorClass) -> ClassPolicy {
    use ErrorClass::*;
    let p = |retry, failover, breaker| ClassPolicy {
        retry,
        failover,
        breaker,
    };
    match class {
        // Transient trouble at the provider: retry, then fail over; it is the provider's health.
        RateLimited | Overloaded | ServerError | Timeout | Connect | Stalled | StreamCut
        | Malformed | Conflict => p(true, Failover::Yes, true),
        // This provider cannot serve us (bad key, no access, no money): another one may.
        Auth | Permission | Quota | Redirect => p(false, Failover::Yes, true),
        // The request itself is at fault: the next provider would fail the same way.
        BadRequest | ContentFilter | NotFound | TooLarge => p(false, Failover::No, false),
        ContextLength => p(false, Failover::LargerContext, false),
        Unavailable | Cancelled => p(false, Failover::No, false),
    }
}

impl Policy {
    pub fn with_overrides(overrides: &BTreeMap<ErrorClass, ClassPolicyOverride>) -> Policy {
        let mut policy = Policy::default();
        for (class, o) in overrides {
            let entry = policy
                .table
                .entry(*class)
                .or_insert_with(|| default_policy(*class));
            entry.retry = o.retry.unwrap_or(entry.retry);
            entry.failover = o.failover.unwrap_or(entry.failover);
            entry.breaker = o.breaker.unwrap_or(entry.breaker);
        }
        policy
    }

    pub fn get(&self, class: ErrorClass) -> ClassPolicy {
        self.table
            .get(&class)
            .copied()
            .unwrap_or_else(|| default_policy(class))
    }

    pub fn retryable(&self, class: ErrorClass) -> bool {
        self.get(class).retry
    }

    /// Whether a failure of `class` counts for the provider's breaker (a cancelled call never does).
    pub fn counts_for_breaker(&self, class: ErrorClass) -> bool {
        class != ErrorClass::Cancelled && self.get(class).breaker
    }

    /// The classes that count for a breaker, when they are not the default ones (`session_started`
    /// carries them, so that every fold counts failures as the engine does).
    pub fn breaker_counts(&self) -> Option<Vec<ErrorClass>> {
        let counted = |policy: &Policy| -> Vec<ErrorClass> {
            ErrorClass::ALL
                .iter()
                .copied()
                .filter(|c| policy.counts_for_breaker(*c))
                .collect()
        };
        let mine = counted(self);
        (mine != counted(&Policy::default())).then_some(mine)
    }
}

/// Whether a failure of `class` counts for a breaker, given what `session_started` said
/// (`breaker_counts`; absent: the default policy).
pub fn counted_by_breaker(breaker_counts: Option<&[ErrorClass]>, class: ErrorClass) -> bool {
    match breaker_counts {
        Some(classes) => classes.contains(&class),
        None => default_policy(class).breaker && class != ErrorClass::Cancelled,
    }
}

/// The default answer to "is this class retryable?", for code that has no engine at hand.
pub fn retryable(class: ErrorClass) -> bool {
    default_policy(class).retry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_issue() {
        let p = Policy::default();
        for class in [
            ErrorClass::RateLimited,
            ErrorClass::Overloaded,
            ErrorClass::ServerError,
            ErrorClass::Timeout,
            ErrorClass::Connect,
            ErrorClass::Stalled,
            ErrorClass::StreamCut,
            ErrorClass::Malformed,
        ] {
            assert_eq!(
                p.get(class),
                ClassPolicy {
                    retry: true,
                    failover: Failover::Yes,
                    breaker: true
                },
                "{class}"
            );
        }
        for class in [
            ErrorClass::BadRequest,
            ErrorClass::ContentFilter,
            ErrorClass::NotFound,
            ErrorClass::TooLarge,
        ] {
            let c = p.get(class);
            assert!(
                !c.retry && c.failover == Failover::No && !c.breaker,
                "{class}"
            );
        }
        assert_eq!(
            p.get(ErrorClass::ContextLength).failover,
            Failover::LargerContext
        );
        for class in [ErrorClass::Auth, ErrorClass::Permission, ErrorClass::Quota] {
            let c = p.get(class);
            assert!(
                !c.retry && c.failover == Failover::Yes && c.breaker,
                "{class}"
            );
        }
    }

    #[test]
    fn overrides_change_only_the_fields_given() {
        let mut o = BTreeMap::new();
        o.insert(
            ErrorClass::RateLimited,
            ClassPolicyOverride {
                retry: Some(false),
                ..ClassPolicyOverride::default()
            },
        );
        let p = Policy::with_overrides(&o);
        let c = p.get(ErrorClass::RateLimited);
        assert!(!c.retry);
        assert_eq!(c.failover, Failover::Yes);
        assert!(c.breaker);
        assert!(p.retryable(ErrorClass::Overloaded));
    }
}
