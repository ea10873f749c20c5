//! One line for people about an event: the console's event log and a headless gateway's stderr word
//! events the same way. Text that came from a provider (messages, replies) has its control
//! characters escaped and is cut, so a line stays one line and cannot drive the terminal.

use std::fmt::{self, Write as _};

use super::facts::Spend;
use super::{EventKind, Outcome, ProviderInfo, Source};
use crate::text::OneLine;

/// Longest field quoted in a line.
const FIELD_CHARS: usize = 300;
/// Longest line.
pub const LINE_CHARS: usize = 1_000;
/// Providers named in a `session_started` line, and chain entries in a `request_started` one.
const LISTED: usize = 64;

/// The line for `kind`, at most [`LINE_CHARS`] characters (and an ellipsis).
pub fn describe(kind: &EventKind) -> String {
    let mut s = String::with_capacity(96);
    // Writing to a String cannot fail.
    let _ = write_description(&mut s, kind);
    if s.len() > LINE_CHARS
        && let Some((cut, _)) = s.char_indices().nth(LINE_CHARS)
    {
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// How a request's source is named in a line.
pub fn source_name(source: Source) -> &'static str {
    match source {
        Source::Prompt => "prompt",
        Source::Load => "load",
        Source::Ask => "ask",
        Source::Gateway => "gateway",
    }
}

/// A field quoted in a line.
fn q(s: &str) -> OneLine<'_> {
    OneLine(s, FIELD_CHARS)
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// NaN and infinities (a broken price) are shown as nothing spent.
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

fn write_description(s: &mut String, kind: &EventKind) -> fmt::Result {
    match kind {
        EventKind::SessionStarted {
            mode,
            providers,
            breaker_threshold,
            pools,
            ..
        } => {
            session(s, mode.as_str(), providers, *breaker_threshold)?;
            for pool in pools.iter().take(LISTED) {
                write!(s, "; pool {} ({}) of", q(&pool.name), pool.strategy)?;
                list(s, pool.members.iter().map(|m| q(&m.provider)), ", ")?;
            }
            Ok(())
        }
        EventKind::RequestStarted { .. } | EventKind::AttemptStarted { .. } => started(s, kind),
        EventKind::AttemptFailed { .. } => attempt_failed(s, kind),
        EventKind::AttemptSkipped {
            request_id,
            provider,
            reason,
        } => write!(s, "{} {} skipped: {reason}", q(request_id), q(provider)),
        EventKind::FirstEvent {
            request_id,
            attempt,
            provider,
            latency_ms,
        } => write!(
            s,
            "{} #{attempt} {} first event in {latency_ms} ms",
            q(request_id),
            q(provider)
        ),
        EventKind::TextDelta {
            request_id,
            provider,
            text,
        } => write!(s, "{} {} text: {}", q(request_id), q(provider), q(text)),
        EventKind::Rewind {
            request_id,
            provider,
            discarded_chars,
            reason,
        } => write!(
            s,
            "{} rewind: {discarded_chars} chars withdrawn after {} ({})",
            q(request_id),
            q(provider),
            q(reason)
        ),
        EventKind::Usage { .. } => usage(s, kind),
        EventKind::RequestFinished { .. } => finished(s, kind),
        EventKind::BreakerChanged { .. } => breaker(s, kind),
        EventKind::ProviderFlagged {
            provider,
            flag,
            reason,
        } => write!(s, "{} flagged {flag}: {}", q(provider), q(reason)),
        EventKind::ProbeStarted {
            provider,
            model,
            target_model,
            probe,
        } => {
            who(s, provider, model.as_deref())?;
            write!(s, " recovery probe {probe} sent ({})", q(target_model))
        }
        EventKind::ProbeFinished { .. } => probe(s, kind),
        EventKind::FaultChanged {
            provider,
            fault,
            reason,
        } if fault.trim() == "none" => {
            write!(s, "{} fault now none, healthy ({})", q(provider), q(reason))
        }
        EventKind::FaultChanged {
            provider,
            fault,
            reason,
        } => write!(s, "{} fault now {} ({})", q(provider), q(fault), q(reason)),
        EventKind::RateLimits { .. } => rate_limits(s, kind),
        EventKind::RequestRejected {
            reason,
            status,
            protocol,
            message,
        } => write!(
            s,
            "gateway refused a {} request ({reason}, {status}): {}",
            protocol.as_str(),
            q(message)
        ),
        EventKind::ThrottleChanged {
            provider,
            model,
            throttled,
            reason,
            ..
        } => {
            write!(s, "{}", q(provider))?;
            if let Some(model) = model {
                write!(s, " ({})", q(model))?;
            }
            let now = if *throttled {
                "throttled"
            } else {
                "no longer throttled"
            };
            write!(s, " {now}: {}", q(reason))
        }
        EventKind::OperatorAction {
            action,
            provider,
            detail,
            instance,
        } => {
            write!(s, "operator {action}")?;
            for part in [provider.as_deref(), Some(detail.as_str())]
                .into_iter()
                .flatten()
            {
                if !part.is_empty() {
                    write!(s, " {}", q(part))?;
                }
            }
            if let Some(instance) = instance {
                write!(s, " (at {}, for the fleet)", q(instance))?;
            }
            Ok(())
        }
        EventKind::ClusterChanged {
            instance,
            connected,
            redis,
            reason,
        } => {
            let now = if *connected {
                "shares its breakers through"
            } else {
                "lost"
            };
            write!(
                s,
                "fleet: {} {now} redis {} ({})",
                q(instance),
                q(redis),
                q(reason)
            )
        }
    }
}

fn started(s: &mut String, kind: &EventKind) -> fmt::Result {
    match kind {
        EventKind::RequestStarted {
            request_id,
            source,
            chain,
            chain_name,
            failover,
            ..
        } => {
            write!(s, "{} started ({}):", q(request_id), source_name(*source))?;
            list(s, chain.iter().map(|p| q(p)), " → ")?;
            if let Some(name) = chain_name {
                write!(s, " (chain {} asked for)", q(name))?;
            }
            if *failover == Some(false) {
                write!(s, " (failover off)")?;
            }
            Ok(())
        }
        EventKind::AttemptStarted {
            request_id,
            attempt,
            provider,
            model,
            pool,
        } => {
            write!(
                s,
                "{} #{attempt} {} started ({})",
                q(request_id),
                q(provider),
                q(model)
            )?;
            match pool {
                Some(pool) => write!(s, " from pool {}", q(pool)),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// ` a, b, c` (the first [`LISTED`] items), joined by `sep`.
fn list<T: fmt::Display>(s: &mut String, items: impl Iterator<Item = T>, sep: &str) -> fmt::Result {
    for (i, item) in items.take(LISTED).enumerate() {
        let sep = if i == 0 { " " } else { sep };
        write!(s, "{sep}{item}")?;
    }
    Ok(())
}

fn session(
    s: &mut String,
    mode: &str,
    providers: &[ProviderInfo],
    threshold: Option<u32>,
) -> fmt::Result {
    write!(s, "session started in {mode} mode:")?;
    let named = providers
        .iter()
        .map(|p| format!("{} ({})", q(&p.name), q(&p.model)));
    list(s, named, ", ")?;
    if let Some(n) = threshold {
        write!(s, "; breakers open after {n} failures in a row")?;
    }
    Ok(())
}

fn attempt_failed(s: &mut String, kind: &EventKind) -> fmt::Result {
    let EventKind::AttemptFailed {
        request_id,
        attempt,
        provider,
        phase,
        class,
        retryable,
        status,
        retry_after_ms,
        message,
        ..
    } = kind
    else {
        return Ok(());
    };
    write!(
        s,
        "{} #{attempt} {} {class} in {phase} (",
        q(request_id),
        q(provider)
    )?;
    if let Some(status) = status {
        write!(s, "HTTP {status}, ")?;
    }
    if let Some(ms) = retry_after_ms {
        write!(s, "retry after {:.1} s, ", seconds(*ms))?;
    }
    let retry = if *retryable {
        "retryable"
    } else {
        "not retryable"
    };
    write!(s, "{retry}): {}", q(message))
}

fn usage(s: &mut String, kind: &EventKind) -> fmt::Result {
    let EventKind::Usage {
        request_id,
        provider,
        input_tokens,
        output_tokens,
        cache_read_tokens,
        cache_write_tokens,
        cost_usd,
        estimated,
        unpriced,
        model,
        ..
    } = kind
    else {
        return Ok(());
    };
    write!(
        s,
        "{} {} usage: {input_tokens} in, {output_tokens} out",
        q(request_id),
        q(provider)
    )?;
    if *cache_read_tokens > 0 || *cache_write_tokens > 0 {
        write!(
            s,
            ", cache {cache_read_tokens} read, {cache_write_tokens} written"
        )?;
    }
    if *unpriced {
        write!(s, ", cost unknown (no price for {})", q(model))?;
    } else {
        write!(s, ", ${:.6}", finite(*cost_usd))?;
    }
    if *estimated {
        s.push_str(" (estimated)");
    }
    Ok(())
}

fn finished(s: &mut String, kind: &EventKind) -> fmt::Result {
    let EventKind::RequestFinished {
        request_id,
        outcome,
        provider,
        class,
        message,
        total_ms,
        cost_usd,
        attempts,
        unpriced,
        ..
    } = kind
    else {
        return Ok(());
    };
    let cost = Spend::of(*cost_usd, *unpriced).describe(|usd| format!("${usd:.6}"));
    // A caller that went away is not a failure of the providers: said apart.
    let cancelled = *class == Some(super::ErrorClass::Cancelled);
    match (outcome, provider) {
        (Outcome::Ok, Some(p)) => write!(s, "{} answered by {}", q(request_id), q(p))?,
        (Outcome::Ok, None) => write!(s, "{} answered", q(request_id))?,
        (Outcome::Error, _) if cancelled => {
            write!(s, "{} cancelled (the caller went away)", q(request_id))?;
        }
        (Outcome::Error, _) => write!(s, "{} failed", q(request_id))?,
    }
    write!(
        s,
        " in {:.2} s, {cost} ({attempts} attempt{})",
        seconds(*total_ms),
        if *attempts == 1 { "" } else { "s" }
    )?;
    if *outcome == Outcome::Error {
        if let Some(class) = class.filter(|_| !cancelled) {
            write!(s, ": {class}")?;
        }
        if let Some(m) = message {
            write!(s, ": {}", q(m))?;
        }
    }
    Ok(())
}

/// A provider, and the model of a per-model breaker: `anthropic (claude-x)`.
fn who(s: &mut String, provider: &str, model: Option<&str>) -> fmt::Result {
    write!(s, "{}", q(provider))?;
    if let Some(model) = model {
        write!(s, " ({})", q(model))?;
    }
    Ok(())
}

fn probe(s: &mut String, kind: &EventKind) -> fmt::Result {
    let EventKind::ProbeFinished {
        provider,
        model,
        probe,
        ok,
        latency_ms,
        class,
        status,
        message,
        cost_usd,
        unpriced,
        next_probe_ms,
        ..
    } = kind
    else {
        return Ok(());
    };
    let cost = Spend::of(*cost_usd, *unpriced).describe(|usd| format!("${usd:.6}"));
    who(s, provider, model.as_deref())?;
    if *ok {
        write!(
            s,
            " recovery probe {probe} answered in {latency_ms} ms ({cost})"
        )?;
        return Ok(());
    }
    write!(s, " recovery probe {probe} failed")?;
    if let Some(class) = class {
        write!(s, ": {class}")?;
    }
    if let Some(status) = status {
        write!(s, " {status}")?;
    }
    if let Some(message) = message.as_deref().filter(|m| !m.is_empty()) {
        write!(s, " ({})", q(message))?;
    }
    write!(s, " after {:.1} s", seconds(*latency_ms))?;
    if let Some(ms) = next_probe_ms {
        write!(s, ", next in about {:.0} s", seconds(*ms))?;
    }
    Ok(())
}

fn breaker(s: &mut String, kind: &EventKind) -> fmt::Result {
    let EventKind::BreakerChanged {
        provider,
        model,
        from,
        to,
        reason,
        recovery_ms,
        instance,
    } = kind
    else {
        return Ok(());
    };
    who(s, provider, model.as_deref())?;
    write!(s, " breaker {from} → {to} ({})", q(reason))?;
    if let Some(instance) = instance {
        write!(s, " after {} in the fleet", q(instance))?;
    }
    if let (Some(ms), super::BreakerState::Open) = (recovery_ms, to) {
        write!(s, ", half-open in {:.1} s", seconds(*ms))?;
    }
    Ok(())
}

/// `anthropic rate limits: requests 45/50 (resets in 41.0 s), tokens 39000/40000`.
fn rate_limits(s: &mut String, kind: &EventKind) -> fmt::Result {
    let EventKind::RateLimits {
        provider,
        model,
        limits,
    } = kind
    else {
        return Ok(());
    };
    write!(s, "{}", q(provider))?;
    if let Some(model) = model {
        write!(s, " ({})", q(model))?;
    }
    s.push_str(" rate limits:");
    for (i, l) in limits.iter().take(LISTED).enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        let left = l
            .remaining
            .map_or_else(|| "?".to_string(), |r| r.to_string());
        write!(s, "{sep}{} {left}", l.dimension.words())?;
        if let Some(limit) = l.limit {
            write!(s, "/{limit}")?;
        }
        if let Some(ms) = l.reset_ms {
            write!(s, " (resets in {:.1} s)", seconds(ms))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{PoolInfo, PoolMemberInfo, PoolStrategy};

    #[test]
    fn pools_are_named_with_their_members_and_attempts_with_their_pool() {
        let started = EventKind::SessionStarted {
            format_version: 1,
            mode: crate::event::Mode::Demo,
            providers: vec![],
            breaker_threshold: None,
            breaker_counts: None,
            settings: None,
            pools: vec![PoolInfo {
                name: "claude".into(),
                strategy: PoolStrategy::LeastInFlight,
                members: ["us", "eu"]
                    .map(|p| PoolMemberInfo {
                        provider: p.into(),
                        weight: 1,
                    })
                    .into(),
            }],
        };
        assert!(
            describe(&started).ends_with("; pool claude (least_in_flight) of us, eu"),
            "{}",
            describe(&started)
        );
        let attempt = EventKind::AttemptStarted {
            request_id: "r1".into(),
            attempt: 2,
            provider: "eu".into(),
            model: "m".into(),
            pool: Some("claude".into()),
        };
        assert_eq!(describe(&attempt), "r1 #2 eu started (m) from pool claude");
    }
}
