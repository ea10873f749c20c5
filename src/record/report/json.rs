//! The report as JSON, for tools. Keys are sorted (serde_json's map is ordered without
//! `preserve_order`) and money is rounded to a micro-dollar, so the output is byte-stable.

use serde_json::{Map, Value, json};

use super::findings::{Quantiles, is_skip};
use super::{ClassDetail, ProviderStats, Report, round, ts, usd};

impl Report {
    /// The report as JSON, byte-stable (see above).
    pub fn to_json(&self) -> Value {
        let providers: Map<String, Value> = self
            .providers
            .iter()
            .map(|(name, p)| {
                let mut v = self.provider_json(p);
                if let Some((pool, _)) = self.pool_of(name) {
                    v["pool"] = json!(pool.name);
                }
                (name.clone(), v)
            })
            .collect();
        let timeline: Vec<Value> = self
            .timeline_rows()
            .iter()
            .map(|e| {
                json!({
                    "ts": ts(e.ts),
                    "offset_ms": self.offset_ms(e.ts),
                    "offset": self.offset(e.ts),
                    "type": e.kind,
                    "provider": e.provider,
                    "what": e.what,
                })
            })
            .collect();
        json!({
            "session": self.session_json(),
            "findings": self.findings(),
            "root_cause": self.root_cause_json(),
            "first_failure": self.first_failure_json(),
            "first_breaker_open": self.first_open.as_ref().map(|(t, p)| json!({
                "ts": ts(*t),
                "offset_ms": self.offset_ms(*t),
                "provider": p,
            })),
            "impact_window": self.window_json(),
            "latency_by_window": self.degradation_json(),
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
                "caused_by_skips": self.failovers.iter().filter(|(c, _)| is_skip(c)).map(|(_, n)| n).sum::<u64>(),
            },
            "failover_cost_delta_usd": usd(self.requests.failover_cost_delta_usd),
            "failover_cost_delta_requests": self.requests.failover_delta_requests,
            "failed_attempts_cost_usd": usd(self.failed_cost_total().usd),
            "providers": providers,
            "pools": self.pools_json(),
            "timeline": timeline,
            "timeline_dropped": self.timeline_dropped,
        })
    }

    fn pools_json(&self) -> Vec<Value> {
        self.pools
            .iter()
            .map(|pool| {
                let members: Vec<Value> = pool
                    .members
                    .iter()
                    .map(|(m, w)| json!({"provider": m, "weight": w}))
                    .collect();
                let (attempts, answered, errors) = self.pool_totals(pool);
                json!({
                    "name": pool.name,
                    "strategy": pool.strategy,
                    "members": members,
                    "attempts": attempts,
                    "answered": answered,
                    "errors": errors,
                    "moved_between_members": pool.moved_within,
                })
            })
            .collect()
    }

    fn root_cause_json(&self) -> Value {
        let failures: Vec<Value> = self
            .causes()
            .iter()
            .map(|c| {
                let mut v = class_json(c.detail);
                v["provider"] = json!(c.provider);
                v["class"] = json!(c.class);
                v
            })
            .collect();
        let consequences: Vec<Value> = self
            .consequences()
            .iter()
            .map(|(p, reason, n)| json!({"provider": p, "skipped_because": reason, "count": n}))
            .collect();
        json!({"failures": failures, "consequences": consequences})
    }

    fn first_failure_json(&self) -> Value {
        let Some(f) = &self.first_failure else {
            return Value::Null;
        };
        json!({
            "ts": ts(f.ts),
            "offset_ms": self.offset_ms(f.ts),
            "provider": f.provider,
            "class": f.class,
            "status": f.status,
            "message": f.message,
            "before_first_breaker_open_ms": self.failure_lead_ms(),
        })
    }

    fn window_json(&self) -> Value {
        let Some(w) = self.window else {
            return Value::Null;
        };
        let a = self.affected;
        json!({
            "start": ts(w.start),
            "end": ts(w.end),
            "start_offset_ms": self.offset_ms(w.start),
            "end_offset_ms": self.offset_ms(w.end),
            "duration_ms": super::millis_between(w.start, w.end),
            "affected_requests": a.failed + a.failed_over,
            "failed": a.failed,
            "failed_over": a.failed_over,
        })
    }

    fn degradation_json(&self) -> Value {
        let by: Map<String, Value> = self
            .degradation()
            .iter()
            .map(|d| {
                let v = json!({"inside": quantiles(d.inside), "outside": quantiles(d.outside)});
                (d.provider.to_string(), v)
            })
            .collect();
        Value::Object(by)
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
        let json = json!({
            "started": r.started,
            "ok": r.ok,
            "error": r.error,
            "in_flight_at_end": self.in_flight_count(),
            "untracked": r.untracked,
            "success_rate": self.success_rate().map(|r| round(r, 1e6)),
            "failed_by_class": self.failed_by_class,
            "cost_usd": usd(r.cost_usd),
        });
        // Only when some cost is unknown: `cost_usd` then leaves those requests' unpriced usage out.
        with_count(json, "unpriced_requests", r.unpriced)
    }

    fn provider_json(&self, p: &ProviderStats) -> Value {
        let errors: Map<String, Value> = p
            .errors
            .iter()
            .map(|(class, c)| (class.clone(), class_json(c)))
            .collect();
        let transitions: Vec<Value> = p
            .transitions
            .iter()
            .map(|t| json!({"ts": ts(t.ts), "from": t.from, "to": t.to, "reason": t.reason}))
            .collect();
        let t = &p.tokens;
        let json = json!({
            "attempts": p.attempts,
            "answered": p.answered,
            "errors": errors,
            "skipped": p.skipped,
            "open_ms": self.open_ms(p),
            "throttled_ms": self.throttled_ms(p),
            "throttled_times": p.throttled_times,
            "steered": p.steered(),
            "state_at_start": p.state_at_start(),
            "state_at_end": p.state_at_end(),
            "fault_at_start": p.fault_at_start,
            "fault_at_end": p.fault,
            "transitions": transitions,
            "transitions_dropped": p.transitions_dropped,
            "first_event_latency_ms": {
                "count": p.latency_count(),
                "p50": p.percentile(0.50),
                "p95": p.percentile(0.95),
                "p99": p.percentile(0.99),
                "inside_window": quantiles(Quantiles::of(p.split.inside())),
                "outside_window": quantiles(Quantiles::of(&p.split.outside())),
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
            "recovery_probes": {
                "sent": p.probes,
                "answered": p.probes_answered,
                "cost_usd": usd(p.probe_cost_usd),
            },
        });
        // Only when some cost is unknown: usages of a model without a price (`cost_usd` leaves
        // them out).
        let json = with_count(json, "unpriced_usages", p.unpriced_usages);
        with_count(
            json,
            "failed_attempts_unpriced_usages",
            p.failed_unpriced_usages,
        )
    }
}

/// A class's counts, statuses (`"429"`, `"none"`) and most frequent messages.
fn class_json(c: &ClassDetail) -> Value {
    let statuses: Map<String, Value> = c
        .statuses
        .iter()
        .map(|(s, n)| (s.map_or("none".to_string(), |s| s.to_string()), json!(n)))
        .collect();
    let (messages, rest) = c.top_messages();
    let messages: Vec<Value> = messages
        .iter()
        .map(|(m, n)| json!({"message": m, "count": n}))
        .collect();
    json!({
        "count": c.count(),
        "retryable": c.retryable,
        "not_retryable": c.not_retryable,
        "statuses": statuses,
        "messages": messages,
        "other_messages": rest,
        "first": c.first.map(ts),
        "last": c.last.map(ts),
    })
}

fn quantiles(q: Quantiles) -> Value {
    json!({"count": q.count, "p50": q.p50, "p95": q.p95})
}

/// `json` with `key: n` added when `n` is not zero (a field that appears only when it matters, so
/// the reports of fully priced sessions stay as they were).
fn with_count(mut json: Value, key: &str, n: u64) -> Value {
    if n > 0
        && let Some(map) = json.as_object_mut()
    {
        map.insert(key.to_string(), n.into());
    }
    json
}
