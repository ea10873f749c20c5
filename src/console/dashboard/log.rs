//! The event log's lines (one per event but the text deltas, written for people by
//! [`describe`]) and what the log's filter keeps: one provider, or one event type.

use chrono::{DateTime, Utc};

use super::Dashboard;
use super::ring::push_ring;
use crate::event::describe::describe;
use crate::event::{Event, EventKind};
use crate::text::one_line;

/// Event-log lines kept.
pub const LOG_KEPT: usize = 5_000;

/// The event types the filter offers, in the order things happen (text deltas are too many to be
/// useful, and are not logged).
pub const LOG_KINDS: [&str; 13] = [
    "request_started",
    "attempt_started",
    "attempt_failed",
    "attempt_skipped",
    "first_event",
    "rewind",
    "request_finished",
    "breaker_changed",
    "throttle_changed",
    "rate_limits",
    "fault_changed",
    "operator_action",
    "provider_flagged",
];

#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    pub seq: u64,
    /// The event's `type`.
    pub kind: &'static str,
    pub provider: Option<String>,
    /// One line, for people.
    pub text: String,
    /// Every field of the event (`ts`, `seq` and `type` first), for its detail view; the values
    /// cut to `FIELD_CHARS_KEPT` each and `LINE_FIELDS_CHARS_KEPT` in all.
    pub fields: Vec<(String, String)>,
}

/// The most of one field's value a log line keeps for its detail.
pub const FIELD_CHARS_KEPT: usize = 2_000;
/// The most of all of a line's field values kept (`LOG_KEPT` lines of it at most).
pub const LINE_FIELDS_CHARS_KEPT: usize = 4_096;

/// What the event log shows (the one in force is UI state: `Ui::log_filter`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Only lines about this provider.
    pub provider: Option<String>,
    /// Only events of this `type`.
    pub kind: Option<String>,
    /// Only lines holding this text, in any case (the `/` search).
    pub text: Option<String>,
}

impl LogFilter {
    /// Everything, each provider, each event type: the rows of the filter popup, in the order
    /// the key handling walks them, so that `Overlay::LogFilter { selected }` means the same row
    /// to both.
    pub fn choices(dash: &Dashboard) -> Vec<LogFilter> {
        let providers = dash.providers.iter().map(|p| LogFilter {
            provider: Some(p.name.clone()),
            ..LogFilter::default()
        });
        let kinds = LOG_KINDS.iter().map(|k| LogFilter {
            kind: Some((*k).to_string()),
            ..LogFilter::default()
        });
        std::iter::once(LogFilter::default())
            .chain(providers)
            .chain(kinds)
            .collect()
    }

    /// Whether the log shows `line` under this filter.
    pub fn shows(&self, line: &LogLine) -> bool {
        self.provider
            .as_deref()
            .is_none_or(|p| line.provider.as_deref() == Some(p))
            && self.kind.as_deref().is_none_or(|k| line.kind == k)
            && self.text.as_deref().is_none_or(|t| line_holds(line, t))
    }
}

/// Whether a line's type, provider or text holds `text`, in any case.
fn line_holds(line: &LogLine, text: &str) -> bool {
    let needle = text.to_lowercase();
    [
        line.kind,
        line.provider.as_deref().unwrap_or(""),
        &line.text,
    ]
    .iter()
    .any(|hay| hay.to_lowercase().contains(&needle))
}

/// What a log view of `rows` lines shows: the matching lines ending at its anchor, oldest first.
#[derive(Debug, PartialEq)]
pub struct LogWindow<'a> {
    pub lines: Vec<&'a LogLine>,
    /// Matching lines newer than those shown (0 when following).
    pub newer: usize,
    /// Matching lines older than those shown.
    pub older: usize,
}

impl Dashboard {
    /// The log as a view anchored at `at` (the newest line shown, by `seq`; `None` follows the
    /// newest) shows it in `rows` lines: never past the oldest line into emptiness.
    pub fn log_window(&self, filter: &LogFilter, at: Option<u64>, rows: usize) -> LogWindow<'_> {
        let matching: Vec<&LogLine> = self.log.iter().filter(|l| filter.shows(l)).collect();
        let end = anchor_index(&matching, at).map_or(0, |i| i + 1).max(rows);
        let end = end.min(matching.len());
        let start = end.saturating_sub(rows);
        LogWindow {
            newer: matching.len() - end,
            older: start,
            lines: matching[start..end].to_vec(),
        }
    }

    /// Where a log view of `rows` lines anchored at `at` stands after moving `by` lines (negative:
    /// older): the anchor, or `None` once it reaches the newest line (it follows again).
    pub fn log_moved(
        &self,
        filter: &LogFilter,
        at: Option<u64>,
        by: i64,
        rows: usize,
    ) -> Option<u64> {
        let seqs: Vec<u64> = self
            .log
            .iter()
            .filter(|l| filter.shows(l))
            .map(|l| l.seq)
            .collect();
        let last = seqs.len().checked_sub(1)?;
        let lowest = rows.saturating_sub(1).min(last);
        let current = match at {
            None => last,
            Some(seq) => seqs
                .iter()
                .rposition(|s| *s == seq)
                .or_else(|| seqs.iter().rposition(|s| *s <= seq))
                .unwrap_or(0)
                .max(lowest),
        };
        let next = (current as i64 + by).clamp(lowest as i64, last as i64) as usize;
        (next < last).then(|| seqs[next])
    }
}

/// The index of the newest line at or before `at`; the last when following.
fn anchor_index(lines: &[&LogLine], at: Option<u64>) -> Option<usize> {
    match at {
        None => lines.len().checked_sub(1),
        Some(seq) => lines
            .iter()
            .rposition(|l| l.seq == seq)
            .or_else(|| lines.iter().rposition(|l| l.seq <= seq)),
    }
}

impl Dashboard {
    /// A line for the event, in time order: a fleet's members are not heard in step (a member
    /// that comes up late sends its history), so a line older than the newest goes where its
    /// time puts it, or nowhere if it is older than every line kept.
    pub(super) fn push_log(&mut self, event: &Event) {
        let fields = fields(event);
        let mut text = describe(&event.kind);
        // A fleet's line names its member: a request's id already does (`gw-a/r12`).
        if let Some(instance) = &event.gateway
            && !fields.iter().any(|(name, _)| name == "request_id")
        {
            text = format!("{instance}: {text}");
        }
        let line = LogLine {
            at: event.ts,
            seq: event.seq,
            kind: event.kind.type_name(),
            provider: event_provider(&event.kind).map(str::to_string),
            text,
            fields,
        };
        if self.log.back().is_none_or(|last| last.at <= line.at) {
            push_ring(&mut self.log, line, LOG_KEPT);
            return;
        }
        let at = self.log.partition_point(|l| l.at <= line.at);
        if at == 0 && self.log.len() >= LOG_KEPT {
            return;
        }
        self.log.insert(at, line);
        while self.log.len() > LOG_KEPT {
            self.log.pop_front();
        }
    }
}

/// Every field of an event as text: `ts`, `seq`, `type`, then the others by name. Strings are
/// kept on one line (control characters escaped) and every value is bounded.
fn fields(event: &Event) -> Vec<(String, String)> {
    // Written out through a bounded buffer first: a hostile event (a chain of a thousand huge
    // names) must cost no more than a normal one. Events that big keep only their description.
    let mut json = Bounded(Vec::new());
    if serde_json::to_writer(&mut json, event).is_err() {
        return vec![
            ("seq".into(), event.seq.to_string()),
            ("type".into(), event.kind.type_name().into()),
            (
                "fields".into(),
                format!("more than {EVENT_BYTES_READ} bytes: not kept"),
            ),
        ];
    }
    let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(&json.0) else {
        return Vec::new();
    };
    let first = ["ts", "seq", "type"];
    let ordered = first
        .iter()
        .filter_map(|k| object.get_key_value(*k))
        .chain(object.iter().filter(|(k, _)| !first.contains(&k.as_str())));
    let mut room = LINE_FIELDS_CHARS_KEPT;
    let mut out = Vec::with_capacity(object.len());
    for (name, value) in ordered {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let kept = one_line(&text, FIELD_CHARS_KEPT.min(room));
        room = room.saturating_sub(kept.chars().count());
        out.push((one_line(name, 64), kept));
    }
    out
}

/// The largest event whose fields a log line keeps.
const EVENT_BYTES_READ: usize = 256 * 1024;

/// A buffer that refuses to grow past `EVENT_BYTES_READ`.
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > EVENT_BYTES_READ {
            return Err(std::io::Error::other("event too large"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The provider an event is about, for the log's provider filter.
pub(super) fn event_provider(kind: &EventKind) -> Option<&str> {
    match kind {
        EventKind::AttemptStarted { provider, .. }
        | EventKind::AttemptFailed { provider, .. }
        | EventKind::AttemptSkipped { provider, .. }
        | EventKind::FirstEvent { provider, .. }
        | EventKind::TextDelta { provider, .. }
        | EventKind::Rewind { provider, .. }
        | EventKind::Usage { provider, .. }
        | EventKind::BreakerChanged { provider, .. }
        | EventKind::ProviderFlagged { provider, .. }
        | EventKind::FaultChanged { provider, .. }
        | EventKind::ProbeStarted { provider, .. }
        | EventKind::ProbeFinished { provider, .. }
        | EventKind::RateLimits { provider, .. }
        | EventKind::ThrottleChanged { provider, .. } => Some(provider),
        EventKind::RequestFinished { provider, .. }
        | EventKind::OperatorAction { provider, .. } => provider.as_deref(),
        EventKind::SessionStarted { .. }
        | EventKind::RequestStarted { .. }
        | EventKind::ClusterChanged { .. } => None,
        EventKind::RequestRejected { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::console::dashboard::script::*;
    use crate::event::{ErrorClass, EventKind, Outcome, Phase};
    use crate::text::{one_line, printable};

    #[test]
    fn log_lines_read_well() {
        let dash = Script::default()
            .at(0, session(&["anthropic", "openai"], Some(5)))
            .at(1, request("r12", &["anthropic", "openai"]))
            .at(2, attempt("r12", 2, "anthropic"))
            .at(
                3,
                EventKind::AttemptFailed {
                    request_id: "r12".into(),
                    attempt: 2,
                    provider: "anthropic".into(),
                    phase: Phase::Headers,
                    class: ErrorClass::RateLimited,
                    retryable: true,
                    status: Some(429),
                    retry_after_ms: Some(5_000),
                    message: "Rate limited".into(),
                    elapsed_ms: 12,
                },
            )
            .at(
                4,
                breaker(
                    "anthropic",
                    "closed",
                    "open",
                    "5 consecutive failures",
                    None,
                ),
            )
            .at(
                5,
                breaker("anthropic", "open", "half_open", "recovery elapsed", None),
            )
            .at(
                6,
                EventKind::RequestFinished {
                    request_id: "r12".into(),
                    outcome: Outcome::Ok,
                    provider: Some("openai".into()),
                    stop_reason: Some("end_turn".into()),
                    class: None,
                    message: None,
                    total_ms: 1_234,
                    cost_usd: 0.000_512,
                    attempts: 2,
                    failed_cost_usd: 0.0,
                    primary_cost_usd: None,
                    unpriced: false,
                },
            )
            .at(7, operator("trip", Some("anthropic"), ""))
            .at(8, error("r13", ErrorClass::Unavailable))
            .at(
                9,
                EventKind::ProviderFlagged {
                    provider: "anthropic".into(),
                    flag: crate::event::ProviderFlag::Misconfigured,
                    reason: "auth: invalid x-api-key".into(),
                },
            )
            .at(
                10,
                breaker("openai", "closed", "open", "retry-after 45s", Some(45_000)),
            )
            .fold();
        let lines: Vec<(&str, Option<&str>, &str)> = dash
            .log
            .iter()
            .map(|l| (l.kind, l.provider.as_deref(), l.text.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (
                    "session_started",
                    None,
                    "session started in demo mode: anthropic (anthropic-model), openai (openai-model); breakers open after 5 failures in a row"
                ),
                (
                    "request_started",
                    None,
                    "r12 started (prompt): anthropic → openai"
                ),
                (
                    "attempt_started",
                    Some("anthropic"),
                    "r12 #2 anthropic started (anthropic-model)"
                ),
                (
                    "attempt_failed",
                    Some("anthropic"),
                    "r12 #2 anthropic rate_limited in headers (HTTP 429, retry after 5.0 s, retryable): Rate limited"
                ),
                (
                    "breaker_changed",
                    Some("anthropic"),
                    "anthropic breaker closed → open (5 consecutive failures)"
                ),
                (
                    "breaker_changed",
                    Some("anthropic"),
                    "anthropic breaker open → half_open (recovery elapsed)"
                ),
                (
                    "request_finished",
                    Some("openai"),
                    "r12 answered by openai in 1.23 s, $0.000512 (2 attempts)"
                ),
                (
                    "operator_action",
                    Some("anthropic"),
                    "operator trip anthropic"
                ),
                (
                    "request_finished",
                    None,
                    "r13 failed in 0.50 s, $0.000000 (1 attempt): unavailable: it was unavailable"
                ),
                (
                    "provider_flagged",
                    Some("anthropic"),
                    "anthropic flagged misconfigured: auth: invalid x-api-key"
                ),
                (
                    "breaker_changed",
                    Some("openai"),
                    "openai breaker closed → open (retry-after 45s), half-open in 45.0 s"
                ),
            ]
        );
        assert_eq!(dash.log[3].seq, 4);
        assert_eq!(dash.log[3].at, at(3));
    }

    fn numbered(n: u64) -> crate::console::dashboard::Dashboard {
        let mut s = Script::default();
        s.at(0, session(&["a", "b"], Some(5)));
        for i in 1..n {
            let provider = if i % 2 == 0 { "a" } else { "b" };
            s.at(i as i64, operator("trip", Some(provider), &format!("n{i}")));
        }
        s.fold()
    }

    /// A scrolled log is anchored to a line: newer lines arriving do not move it, and moving
    /// stops at the oldest page and follows again at the newest.
    #[test]
    fn a_scrolled_log_stays_put_and_follows_again_at_the_newest() {
        use super::LogFilter;
        let all = LogFilter::default();
        let dash = numbered(20);
        assert_eq!(dash.log.len(), 20);
        let window = dash.log_window(&all, None, 5);
        assert_eq!((window.newer, window.older, window.lines.len()), (0, 15, 5));
        let up = dash.log_moved(&all, None, -3, 5);
        assert_eq!(up, Some(dash.log[16].seq));
        // Moving far up stops with the oldest page in view.
        let top = dash.log_moved(&all, up, -100, 5);
        assert_eq!(top, Some(dash.log[4].seq));
        let window = dash.log_window(&all, top, 5);
        assert_eq!((window.newer, window.older), (15, 0));
        assert_eq!(window.lines[0].seq, dash.log[0].seq);
        // Down again, past the newest: following.
        assert_eq!(dash.log_moved(&all, top, 100, 5), None);
        // New lines come in: the anchored window shows the same lines, with more newer.
        let later = numbered(30);
        let window = later.log_window(&all, up, 5);
        assert_eq!(window.lines.last().map(|l| l.seq), up);
        assert_eq!(window.newer, 13);
        // A filter moves through its own lines only.
        let only_a = LogFilter {
            provider: Some("a".into()),
            ..LogFilter::default()
        };
        let anchor = later.log_moved(&only_a, None, -1, 2).unwrap();
        let line = later.log.iter().find(|l| l.seq == anchor).unwrap();
        assert_eq!(line.provider.as_deref(), Some("a"));
    }

    #[test]
    fn the_search_matches_text_type_and_provider_in_any_case() {
        use super::LogFilter;
        let dash = numbered(6);
        let search = |t: &str| LogFilter {
            text: Some(t.into()),
            ..LogFilter::default()
        };
        let count = |f: &LogFilter| dash.log.iter().filter(|l| f.shows(l)).count();
        assert_eq!(count(&search("N3")), 1);
        assert_eq!(count(&search("OPERATOR_action")), 5);
        assert_eq!(count(&search("session started")), 1);
        assert_eq!(count(&search("nothing like it")), 0);
    }

    #[test]
    fn printable_escapes_every_control_character_and_keeps_newlines_only_in_a_reply() {
        let hostile = "a\x1b]0;title\x07b\x1b[2Jc\rd\u{9b}31me\u{7f}\tf\nbreakerbox: forged";
        let line = printable(hostile, false);
        assert_eq!(line, "a ]0;title b [2Jc d 31me  f breakerbox: forged");
        let reply = printable(hostile, true);
        assert_eq!(reply, "a ]0;title b [2Jc d 31me  f\nbreakerbox: forged");
        // The same rule as the event log's and the headless log's.
        assert_eq!(line, one_line(hostile, 1000));
        // Nothing to escape: the text itself, not a copy.
        assert!(matches!(
            printable("plain · ✓ text\n", true),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
