//! The selected request's reply as the caller has it, under a few fixed lines that say how it got
//! there: the prompt, the attempts in order (`anthropic ↻ overloaded → openai ✓ 412ms`), any text
//! withdrawn when the request moved to another provider, and the outcome. The reply itself wraps
//! and scrolls (`ui.reply_scroll`); the bottom border says where in it the panel is.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};

use super::providers::retry_mark;
use super::requests::selected;
use super::{Paint, text};
use crate::console::dashboard::{AttemptState, AttemptView, RequestView};
use crate::console::keys::Action;
use crate::console::ui::Focus;
use crate::event::Outcome;

/// What the reply panel says before the first request: how to send one, and, for a gateway, the
/// base URLs agents need (while the console has the screen, the banner printed before it is
/// hidden).
fn empty_lines(paint: &Paint) -> Vec<Line<'static>> {
    let muted = paint.theme.muted;
    let hint = format!(
        " no requests yet: {} to type a prompt",
        paint.view.keys.describe(Action::Prompt)
    );
    let mut lines = vec![Line::styled(hint, muted)];
    if let Some(addr) = &paint.view.ui.serving {
        lines.push(Line::styled(" or point an agent at this gateway:", muted));
        lines.push(Line::raw(format!("   OPENAI_BASE_URL=http://{addr}/v1")));
        lines.push(Line::raw(format!("   ANTHROPIC_BASE_URL=http://{addr}")));
    }
    lines
}

/// Rewinds listed before the rest are summed up in one line.
const REWINDS_SHOWN: usize = 2;

/// Draw the reply; returns how far it can scroll.
pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint) -> usize {
    let focused = paint.focused(Focus::Reply);
    let Some(request) = selected(paint.view.dash, paint.view.ui) else {
        let block = paint.theme.block(" reply ", focused);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        text::draw_lines(frame, inner, empty_lines(paint));
        return 0;
    };
    let title = match &request.provider {
        Some(p) => format!(" reply · {} · {p} ", request.id),
        None => format!(" reply · {} ", request.id),
    };
    let mut block = paint.theme.block(title, focused);
    let inner = block.inner(area);
    let width = usize::from(inner.width);
    let meta: Vec<Line> = meta_lines(request, width, paint)
        .into_iter()
        .map(|l| text::fit_line(l, width))
        .collect();
    let meta_height = u16::try_from(meta.len()).unwrap_or(u16::MAX);
    let [meta_area, body_area] =
        Layout::vertical([Constraint::Length(meta_height), Constraint::Fill(1)]).areas(inner);
    let body = body_lines(request, width, paint);
    let visible = usize::from(body_area.height);
    let most = body.len().saturating_sub(visible);
    let top = usize::from(paint.view.ui.reply_scroll).min(most);
    if body.len() > visible && visible > 0 {
        let last = (top + visible).min(body.len());
        let position = format!(" lines {}–{last} of {} ", top + 1, body.len());
        block = block.title_bottom(Line::styled(position, paint.theme.muted).right_aligned());
    }
    frame.render_widget(block, area);
    text::draw_lines(frame, meta_area, meta);
    text::draw_lines(frame, body_area, body.into_iter().skip(top).take(visible));
    most
}

/// The reply wrapped to the panel, then, for a failed request, what went wrong (it can be long).
fn body_lines<'a>(r: &RequestView, width: usize, paint: &Paint) -> Vec<Line<'a>> {
    let mut body: Vec<Line> = if r.text.is_empty() {
        Vec::new()
    } else {
        text::wrap(&r.text, width)
            .into_iter()
            .map(Line::raw)
            .collect()
    };
    if r.text_truncated {
        let note = "… the rest was not kept (64 KiB per reply)";
        body.push(Line::styled(note, paint.theme.muted));
    }
    if let (Some(Outcome::Error), Some(message)) = (r.outcome, &r.message) {
        if !body.is_empty() {
            body.push(Line::default());
        }
        let failed = paint.theme.failed;
        body.extend(
            text::wrap(message, width)
                .into_iter()
                .map(|l| Line::styled(l, failed)),
        );
    }
    body
}

fn meta_lines<'a>(r: &RequestView, width: usize, paint: &Paint) -> Vec<Line<'a>> {
    let theme = &paint.theme;
    let prompt = r
        .prompt
        .as_deref()
        .and_then(|p| p.lines().next())
        .map_or_else(|| format!("({} request)", source_word(r)), str::to_string);
    let mut lines = vec![Line::from(vec![
        Span::styled("› ", theme.muted),
        Span::styled(prompt, theme.title),
    ])];
    if !r.attempts.is_empty() {
        // The phase of each failure only when the whole path still fits on the line.
        let full = attempts_line(&r.attempts, true, paint);
        lines.push(if full.width() <= width {
            full
        } else {
            attempts_line(&r.attempts, false, paint)
        });
    }
    let hidden = r.rewinds.len().saturating_sub(REWINDS_SHOWN);
    if hidden > 0 {
        let earlier = text::plural(hidden as u64, "earlier rewind", "earlier rewinds");
        lines.push(Line::styled(format!("⟲ {earlier}"), theme.title));
    }
    for rewind in r.rewinds.iter().skip(hidden) {
        lines.push(Line::styled(
            format!(
                "⟲ withdrawn {} chars from {}: {}",
                rewind.discarded_chars, rewind.provider, rewind.reason
            ),
            theme.title,
        ));
    }
    lines.push(outcome_line(r, paint));
    lines
}

fn source_word(r: &RequestView) -> &'static str {
    match r.source {
        crate::event::Source::Prompt => "prompt",
        crate::event::Source::Load => "background load",
        crate::event::Source::Ask => "ask",
        crate::event::Source::Gateway => "gateway",
    }
}

/// The attempts in order, joined by arrows: the failover path at a glance.
fn attempts_line<'a>(attempts: &[AttemptView], phases: bool, paint: &Paint) -> Line<'a> {
    let theme = &paint.theme;
    let mut spans = Vec::with_capacity(attempts.len() * 3);
    for (i, a) in attempts.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" → ", theme.muted));
        }
        spans.push(Span::styled(format!("{} ", a.provider), theme.title));
        spans.push(match &a.state {
            AttemptState::Waiting => Span::raw("… waiting"),
            AttemptState::Streaming { latency_ms } => {
                Span::styled(format!("✓ {}", text::millis(*latency_ms)), theme.ok)
            }
            AttemptState::Failed {
                class,
                phase,
                retryable,
                ..
            } => {
                let mark = retry_mark(*retryable);
                let failure = if phases {
                    format!("{mark} {class} in {phase}")
                } else {
                    format!("{mark} {class}")
                };
                Span::styled(failure, theme.error(*retryable))
            }
            AttemptState::Skipped { reason } => {
                Span::styled(format!("skipped: {reason}"), theme.muted)
            }
        });
    }
    Line::from(spans)
}

fn outcome_line<'a>(r: &RequestView, paint: &Paint) -> Line<'a> {
    let theme = &paint.theme;
    match r.outcome {
        Some(Outcome::Ok) => {
            let mut parts = Vec::new();
            parts.extend(r.stop_reason.clone());
            parts.extend(r.total_ms.map(text::millis));
            parts.push(r.cost().describe(text::usd));
            Line::from(vec![
                Span::styled("✓ ok", theme.ok),
                Span::styled(format!(" · {}", parts.join(" · ")), theme.muted),
            ])
        }
        Some(Outcome::Error) if r.cancelled() => {
            Line::styled("cancelled · the caller went away", theme.title)
        }
        Some(Outcome::Error) => {
            let class = r.class.map_or("error", |c| c.as_str());
            Line::styled(format!("✗ failed · {class}"), theme.failed)
        }
        // One state at a time: waiting until the provider's first event, then streaming.
        None => match &r.provider {
            Some(p) if r.streaming() => Line::styled(format!("… streaming from {p}"), theme.title),
            Some(p) => Line::styled(format!("… waiting for {p}'s first event"), theme.muted),
            None => Line::styled("… waiting for a first event", theme.muted),
        },
    }
}
