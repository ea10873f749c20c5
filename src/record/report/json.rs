//! The report as JSON, for tools. Keys are sorted (serde_json's map is ordered without
//! `preserve_order`) and money is rounded to a micro-dollar, so the output is byte-stable.

use serde_json::{Map, Value, json};

use super::{ProviderStats, Report, round, ts, usd};

impl Report {
    /// The report as JSON, byte-stable (see above).
    pub fn to_json(&self) -> Value {
        let providers: Map<String, Value> = self
            .providers
            .iter()
            .map(|(name, p)| (name.clone(), self.provider_json(p)))
            .collect();
        let timeline: Vec<Value> = self
            .timeline
            .iter()
            .map(
                |e| json!({"ts": ts(e.ts), "type": e.kind, "provider": e.provider, "what": e.what}),
            )
            .collect();
        json!({
            "session": self.session_json(),
            "time_range": {
                "first_event": self.first_ts.map(ts),
                "last_event": self.last_ts.map(ts),
                "duration_ms": self.duration_ms(),
            },
            "events": self.events,
            "skipped_lines": {
                "count": self.skipped_lines,
                "first": self.skipped_samples,
            },
            "requests": self.requests_json(),
            "failovers": {
                "total": self.failover_total(),
                "by_cause": self.failovers,
            },
            "failover_cost_delta_usd": usd(self.requests.failover_cost_delta_usd),
            "failover_cost_delta_requests": self.requests.failover_delta_requests,
            "failed_attempts_cost_usd": usd(self.failed_cost_total()),
            "providers": providers,
            "timeline": timeline,
            "timeline_dropped": self.timeline_dropped,
        })
    }

    fn session_json(&self) -> Value {
        let h = &self.header;
        json!({
            "started_at": ts(h.started_at),
            "mode": h.mode,
            "breakerbox_version": h.breakerbox_version,
            "format_version": h.format_version,
            "redacted": h.redacted,
            "providers": h.providers,
        })
    }

    fn requests_json(&self) -> Value {
        let r = &self.requests;
        json!({
            "started": r.started,
            "ok": r.ok,
            "error": r.error,
            "in_flight_at_end": self.in_flight_count(),
            "untracked": r.untracked,
            "success_rate": self.success_rate().map(|r| round(r, 1e6)),
            "failed_by_class": self.failed_by_class,
            "cost_usd": usd(r.cost_usd),
        })
    }

    fn provider_json(&self, p: &ProviderStats) -> Value {
        let errors: Map<String, Value> = p
            .errors
            .iter()
            .map(|(class, c)| {
                let count = json!({"retryable": c.retryable, "not_retryable": c.not_retryable});
                (class.clone(), count)
            })
            .collect();
        let transitions: Vec<Value> = p
            .transitions
            .iter()
            .map(|t| json!({"ts": ts(t.ts), "from": t.from, "to": t.to, "reason": t.reason}))
            .collect();
        let t = &p.tokens;
        json!({
            "attempts": p.attempts,
            "answered": p.answered,
            "errors": errors,
            "skipped": p.skipped,
            "open_ms": self.open_ms(p),
            "state_at_end": p.state,
            "transitions": transitions,
            "transitions_dropped": p.transitions_dropped,
            "first_event_latency_ms": {
                "count": p.latency_count(),
                "p50": p.percentile(0.50),
                "p95": p.percentile(0.95),
                "p99": p.percentile(0.99),
            },
            "tokens": {
                "input": t.input,
                "output": t.output,
                "cache_read": t.cache_read,
                "cache_write": t.cache_write,
            },
            "estimated_usages": p.estimated_usages,
            "cost_usd": usd(p.cost_usd),
            "failed_attempts_cost_usd": usd(p.failed_cost_usd),
            "failed_attempts_with_usage": p.failed_usages,
        })
    }
}
