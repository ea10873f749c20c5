//! Facts several folds derive from the same events, written once: the token counts a `usage`
//! carries, what was spent (and whether some of it is unknown), and whether a finished request
//! failed over (was answered by a provider other than its primary, the first target of its chain).
//!
//! The report, the metrics, the OTLP export and the console each fold these; they differ in what
//! they do with them, not in what they mean.

use std::collections::{HashMap, VecDeque};

use super::{EventKind, Outcome};
use crate::text::cut;

/// The four token counts of a `usage` event (or a sum of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCounts {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl TokenCounts {
    /// The kinds' names, in the order of [`TokenCounts::by_kind`].
    pub const KINDS: [&'static str; 4] = ["input", "output", "cache_read", "cache_write"];

    /// The counts a `usage` event carries; `None` for any other event.
    pub fn from_usage(kind: &EventKind) -> Option<TokenCounts> {
        match kind {
            EventKind::Usage {
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                ..
            } => Some(TokenCounts {
                input: *input_tokens,
                output: *output_tokens,
                cache_read: *cache_read_tokens,
                cache_write: *cache_write_tokens,
            }),
            _ => None,
        }
    }

    /// Add `other` to these counts, each saturating (a hostile file cannot make them wrap).
    pub fn accumulate(&mut self, other: TokenCounts) {
        self.input = self.input.saturating_add(other.input);
        self.output = self.output.saturating_add(other.output);
        self.cache_read = self.cache_read.saturating_add(other.cache_read);
        self.cache_write = self.cache_write.saturating_add(other.cache_write);
    }

    /// Each count with its kind's name (`input`, `output`, `cache_read`, `cache_write`).
    pub fn by_kind(&self) -> [(&'static str, u64); 4] {
        let [input, output, cache_read, cache_write] = Self::KINDS;
        [
            (input, self.input),
            (output, self.output),
            (cache_read, self.cache_read),
            (cache_write, self.cache_write),
        ]
    }
}

/// Dollars spent, and how many usages of a model without a price are left out of them. Such usage
/// costs something nobody here knows: never show it as $0.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spend {
    /// The priced part, USD.
    pub usd: f64,
    /// Usages (or attempts, or requests: whatever the fold counts) that had no price.
    pub unpriced: u64,
}

impl Spend {
    /// `usd` of priced usage, or one unpriced usage (whose `usd` is 0 by contract).
    pub fn of(usd: f64, unpriced: bool) -> Spend {
        Spend {
            usd: if usd.is_finite() { usd } else { 0.0 },
            unpriced: u64::from(unpriced),
        }
    }

    /// Add `other` to this spend.
    pub fn add(&mut self, other: Spend) {
        self.usd += other.usd;
        self.unpriced = self.unpriced.saturating_add(other.unpriced);
    }

    /// Every part of it was priced.
    pub fn known(&self) -> bool {
        self.unpriced == 0
    }

    /// For people: `$0.0123`, `cost unknown` (only unpriced usage), or `≥ $0.0123 (+ unpriced)`
    /// (a lower bound), with `dollars` writing the amount the way the caller writes money.
    pub fn describe(&self, dollars: impl Fn(f64) -> String) -> String {
        match (self.known(), self.usd > 0.0) {
            (true, _) => dollars(self.usd),
            (false, false) => "cost unknown".to_string(),
            (false, true) => format!("≥ {} (+ unpriced)", dollars(self.usd)),
        }
    }

    /// [`Spend::describe`] for a narrow table cell: `$0.0123`, `unknown`, `≥$0.0123`.
    pub fn cell(&self, dollars: impl Fn(f64) -> String) -> String {
        match (self.known(), self.usd > 0.0) {
            (true, _) => dollars(self.usd),
            (false, false) => "unknown".to_string(),
            (false, true) => format!("≥{}", dollars(self.usd)),
        }
    }
}

/// A request answered by a provider other than its primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failover<'a> {
    /// The primary: the first target of the request's chain.
    pub from: &'a str,
    /// The provider that answered.
    pub to: &'a str,
}

/// Whether a request whose primary was `primary` failed over, given its `request_finished`'s
/// outcome and answering provider: it finished ok, from a provider other than its primary.
pub fn failover<'a>(
    primary: Option<&'a str>,
    outcome: Outcome,
    answered: Option<&'a str>,
) -> Option<Failover<'a>> {
    match (outcome, primary, answered) {
        (Outcome::Ok, Some(from), Some(to)) if from != to => Some(Failover { from, to }),
        _ => None,
    }
}

/// Requests whose primary a [`FailoverTracker`] remembers by default until they finish.
pub const REQUESTS_TRACKED: usize = 100_000;

/// Longest request id, and longest primary name, a [`FailoverTracker`] keeps (in bytes, cut on a
/// character boundary): names and ids come from events, which a recording can make any size.
pub const KEY_BYTES: usize = 256;

/// Each running request's primary, remembered from its `request_started` until its
/// `request_finished`, to say whether it failed over. Bounded: past its capacity the oldest request
/// is forgotten (its failover, if any, goes unseen).
#[derive(Debug, Clone)]
pub struct FailoverTracker {
    /// request id → (insertion number, primary)
    primary: HashMap<String, (u64, String)>,
    /// Insertion order; entries whose number no longer matches the map are stale.
    order: VecDeque<(u64, String)>,
    next: u64,
    capacity: usize,
}

impl Default for FailoverTracker {
    fn default() -> Self {
        FailoverTracker::with_capacity(REQUESTS_TRACKED)
    }
}

impl FailoverTracker {
    /// A tracker of up to [`REQUESTS_TRACKED`] requests at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker of up to `capacity` requests at once (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        FailoverTracker {
            primary: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
            capacity: capacity.max(1),
        }
    }

    /// Feed one event: a `request_started` with a chain remembers its primary; a
    /// `request_finished` forgets it and says whether the request failed over, and from which
    /// provider to which. Names are compared up to [`KEY_BYTES`].
    pub fn apply<'a>(&mut self, kind: &'a EventKind) -> Option<FailedOver<'a>> {
        match kind {
            EventKind::RequestStarted {
                request_id, chain, ..
            } => {
                if let Some(first) = chain.first() {
                    self.insert(request_id, first);
                }
                None
            }
            EventKind::RequestFinished {
                request_id,
                outcome,
                provider,
                ..
            } => {
                let from = self.remove(request_id)?;
                let to = provider.as_deref()?;
                failover(Some(from.as_str()), *outcome, Some(cut(to, KEY_BYTES)))?;
                Some(FailedOver { from, to })
            }
            _ => None,
        }
    }

    /// The primary of a running request, if it is remembered.
    pub fn primary(&self, request_id: &str) -> Option<&str> {
        let id = cut(request_id, KEY_BYTES);
        self.primary.get(id).map(|(_, p)| p.as_str())
    }

    /// Requests remembered now.
    pub fn len(&self) -> usize {
        self.primary.len()
    }

    pub fn is_empty(&self) -> bool {
        self.primary.is_empty()
    }

    fn insert(&mut self, request_id: &str, primary: &str) {
        let id = cut(request_id, KEY_BYTES).to_owned();
        let n = self.next;
        self.next = self.next.wrapping_add(1);
        let primary = cut(primary, KEY_BYTES).to_owned();
        self.primary.insert(id.clone(), (n, primary));
        self.order.push_back((n, id));
        while self.primary.len() > self.capacity {
            let Some((n, id)) = self.order.pop_front() else {
                break;
            };
            if self.primary.get(&id).is_some_and(|(m, _)| *m == n) {
                self.primary.remove(&id);
            }
        }
        // Finished requests leave stale entries behind: compact once they dominate.
        if self.order.len() > 2 * self.capacity {
            let primary = &self.primary;
            self.order
                .retain(|(n, id)| primary.get(id).is_some_and(|(m, _)| m == n));
        }
    }

    fn remove(&mut self, request_id: &str) -> Option<String> {
        let id = cut(request_id, KEY_BYTES);
        self.primary.remove(id).map(|(_, primary)| primary)
    }
}

/// What [`FailoverTracker::apply`] says of a request that failed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedOver<'a> {
    /// The primary (cut to [`KEY_BYTES`]).
    pub from: String,
    /// The provider that answered, as the event names it.
    pub to: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Source;

    fn started(id: &str, chain: &[&str]) -> EventKind {
        EventKind::RequestStarted {
            request_id: id.into(),
            source: Source::Load,
            chain: chain.iter().map(|s| s.to_string()).collect(),
            prompt: None,
            prompt_chars: None,
            chain_name: None,
            failover: None,
            max_tokens: None,
            stream: None,
        }
    }

    fn finished(id: &str, outcome: Outcome, provider: Option<&str>) -> EventKind {
        EventKind::RequestFinished {
            request_id: id.into(),
            outcome,
            provider: provider.map(str::to_string),
            stop_reason: None,
            class: None,
            message: None,
            total_ms: 0,
            cost_usd: 0.0,
            attempts: 1,
            failed_cost_usd: 0.0,
            primary_cost_usd: None,
            unpriced: false,
        }
    }

    #[test]
    fn unknown_spend_is_never_written_as_zero() {
        let dollars = |usd: f64| format!("${usd:.4}");
        let mut spend = Spend::default();
        assert_eq!(
            spend.describe(dollars),
            "$0.0000",
            "nothing spent is known: $0"
        );
        spend.add(Spend::of(0.0, true));
        assert_eq!(spend.describe(dollars), "cost unknown");
        assert_eq!(spend.cell(dollars), "unknown");
        spend.add(Spend::of(0.0123, false));
        assert_eq!(spend.describe(dollars), "≥ $0.0123 (+ unpriced)");
        assert_eq!(spend.cell(dollars), "≥$0.0123");
        assert_eq!(Spend::of(f64::NAN, false).usd, 0.0);
        // The event log says which model has no price.
        let mut usage = EventKind::Usage {
            request_id: "r1".into(),
            provider: "local".into(),
            model: "llama-3.3-70b".into(),
            input_tokens: 1,
            output_tokens: 2,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            cost_usd: 0.0,
            estimated: false,
            unpriced: true,
            response_id: None,
        };
        let line = crate::event::describe::describe(&usage);
        assert!(
            line.ends_with("cost unknown (no price for llama-3.3-70b)"),
            "{line}"
        );
        if let EventKind::Usage { unpriced, .. } = &mut usage {
            *unpriced = false;
        }
        assert!(crate::event::describe::describe(&usage).ends_with("$0.000000"));
    }

    #[test]
    fn token_counts_come_from_usage_and_add_up_saturating() {
        let usage = EventKind::Usage {
            request_id: "r".into(),
            provider: "p".into(),
            model: "m".into(),
            input_tokens: 1,
            output_tokens: 2,
            cache_read_tokens: 3,
            cache_write_tokens: u64::MAX,
            cost_usd: 0.0,
            estimated: false,
            unpriced: false,
            response_id: None,
        };
        let one = TokenCounts::from_usage(&usage).unwrap_or_default();
        let mut sum = TokenCounts::default();
        sum.accumulate(one);
        sum.accumulate(one);
        assert_eq!(
            sum.by_kind(),
            [
                ("input", 2),
                ("output", 4),
                ("cache_read", 6),
                ("cache_write", u64::MAX)
            ]
        );
        assert_eq!(TokenCounts::from_usage(&started("r", &[])), None);
    }

    #[test]
    fn a_request_answered_by_another_than_its_primary_failed_over() {
        let mut t = FailoverTracker::new();
        assert_eq!(t.apply(&started("r1", &["a", "b"])), None);
        assert_eq!(t.apply(&started("r2", &["a", "b"])), None);
        assert_eq!(t.apply(&started("r3", &["a", "b"])), None);
        assert_eq!(t.primary("r1"), Some("a"));
        let fin = finished("r1", Outcome::Ok, Some("b"));
        assert_eq!(
            t.apply(&fin),
            Some(FailedOver {
                from: "a".into(),
                to: "b"
            })
        );
        assert_eq!(t.apply(&finished("r2", Outcome::Ok, Some("a"))), None);
        assert_eq!(t.apply(&finished("r3", Outcome::Error, Some("b"))), None);
        assert!(t.is_empty());
        assert_eq!(t.apply(&finished("r1", Outcome::Ok, Some("b"))), None);
        assert_eq!(
            failover(Some("a"), Outcome::Ok, Some("b")),
            Some(Failover { from: "a", to: "b" })
        );
        assert_eq!(failover(None, Outcome::Ok, Some("b")), None);
        assert_eq!(failover(Some("a"), Outcome::Ok, None), None);
    }

    #[test]
    fn the_tracker_stays_bounded() {
        let mut t = FailoverTracker::new();
        for i in 0..(REQUESTS_TRACKED + 10) {
            t.apply(&started(&format!("r{i}"), &["a"]));
        }
        assert_eq!(t.len(), REQUESTS_TRACKED);
        assert_eq!(t.remove("r0"), None);
        assert_eq!(
            t.remove(&format!("r{}", REQUESTS_TRACKED + 9)).as_deref(),
            Some("a")
        );
        // Finished requests do not let the order queue grow without bound.
        for i in 0..(5 * REQUESTS_TRACKED) {
            let id = format!("s{i}");
            t.apply(&started(&id, &["a"]));
            t.remove(&id);
        }
        assert!(t.order.len() <= 2 * REQUESTS_TRACKED + 1);
    }
}
