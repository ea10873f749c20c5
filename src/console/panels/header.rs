//! The two header rows: what this session is (mode or attached gateway, clock, uptime, recording,
//! frozen) and how it is going (requests, answered, failed over, failed, cancelled by their
//! callers, in flight, cost).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::{Paint, text};
use crate::console::dashboard::{Fleet, MemberLink};
use crate::console::ui::{Attached, Link};
use crate::event::Mode;

const SEPARATOR: &str = "   ";
/// The most of a gateway's `host:port` (attached or served) the header gives room to.
const TARGET_CHARS: usize = 32;

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint) {
    let [top, bottom] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let left = identity(paint);
    let room = usize::from(top.width).saturating_sub(left.width() + SEPARATOR.len());
    let right = text::fit_line(conditions(paint), room);
    frame.render_widget(left, top);
    frame.render_widget(right.right_aligned(), top);
    frame.render_widget(totals(paint, bottom.width), bottom);
}

/// The session's mode; a replay says REPLAY whatever the recorded session was.
fn mode_word(mode: Option<Mode>, replaying: bool) -> &'static str {
    if replaying {
        return "REPLAY";
    }
    match mode {
        Some(Mode::Demo) => "DEMO",
        Some(Mode::Live) => "LIVE",
        Some(Mode::Serve) => "SERVE",
        Some(Mode::Replay) => "REPLAY",
        None => "STARTING",
    }
}

/// An attached console says so, and to what, where a local one shows its mode; a lost stream
/// says DISCONNECTED (the status bar says when the next try is).
fn attached_badge<'a>(attached: &Attached, paint: &Paint) -> Span<'a> {
    let target = text::fit(&attached.target, TARGET_CHARS);
    match attached.link {
        Link::Connected => Span::styled(format!(" ATTACHED {target} "), paint.theme.badge),
        Link::Disconnected { .. } => Span::styled(
            format!(" DISCONNECTED {target} "),
            paint.theme.warning.add_modifier(Modifier::REVERSED),
        ),
    }
}

/// A console over a fleet says how many of its gateways are connected: `FLEET 3/3`, and in the
/// warning colour when some are not.
fn fleet_badge<'a>(fleet: &Fleet, paint: &Paint) -> Span<'a> {
    let (up, of) = (fleet.up(), fleet.members.len());
    let style = if up == of {
        paint.theme.badge
    } else {
        paint.theme.warning.add_modifier(Modifier::REVERSED)
    };
    Span::styled(format!(" FLEET {up}/{of} up "), style)
}

/// Mode, name, clock and uptime.
fn identity<'a>(paint: &Paint) -> Line<'a> {
    let dash = paint.view.dash;
    let theme = &paint.theme;
    let clock = dash
        .now
        .map_or_else(|| "--:--:--".to_string(), text::time_of_day);
    // A held clock (the gateway went away) says the screen is as of when it stopped.
    let (clock, clock_style) = match dash.clock_held {
        Some(at) => (format!("as of {}", text::time_of_day(at)), theme.warning),
        None => (clock, theme.title),
    };
    let badge = match (&dash.gateways, &paint.view.ui.attached) {
        (Some(fleet), _) => fleet_badge(fleet, paint),
        (None, Some(attached)) => attached_badge(attached, paint),
        (None, None) => {
            let mode = mode_word(dash.mode, paint.view.facts.replay.is_some());
            let badge = match &paint.view.ui.serving {
                Some(addr) => format!(" {mode} {} ", text::fit(addr, TARGET_CHARS)),
                None => format!(" {mode} "),
            };
            Span::styled(badge, theme.badge)
        }
    };
    let mut spans = vec![
        badge,
        Span::styled(" breakerbox", theme.title),
        Span::raw(SEPARATOR),
        Span::styled(clock, clock_style),
        Span::styled(" UTC", theme.muted),
    ];
    if let (Some(now), Some(started)) = (dash.now, dash.started_at) {
        spans.push(Span::raw(SEPARATOR));
        spans.push(Span::styled("up ", theme.muted));
        spans.push(Span::raw(text::clock_span(now - started)));
    }
    Line::from(spans)
}

/// What the operator must not miss about the display itself: a lost gateway, frozen, events lost,
/// recording.
fn conditions<'a>(paint: &Paint) -> Line<'a> {
    let dash = paint.view.dash;
    let theme = &paint.theme;
    let mut spans = Vec::new();
    if let Some(Attached {
        link: Link::Disconnected { retry_in_ms },
        ..
    }) = &paint.view.ui.attached
    {
        let retry = text::millis(*retry_in_ms);
        spans.push(Span::styled(
            format!("reconnecting in {retry}"),
            theme.warning,
        ));
        spans.push(Span::raw("  "));
    }
    if let Some(fleet) = &dash.gateways {
        let down: Vec<String> = fleet
            .members
            .iter()
            .filter_map(|m| match &m.link {
                MemberLink::Down { .. } => Some(text::fit(&m.name, TARGET_CHARS).into_owned()),
                _ => None,
            })
            .collect();
        if !down.is_empty() {
            spans.push(Span::styled(
                format!("down: {}", down.join(", ")),
                theme.warning,
            ));
            spans.push(Span::raw("  "));
        }
    }
    match &dash.fleet {
        // The Redis the fleet shares (the same for every gateway of it, so right in a console
        // over several too); the instance names are in the log.
        Some(fleet) if fleet.connected => {
            spans.push(Span::styled("fleet via ", theme.muted));
            spans.push(Span::raw(fleet.redis.clone()));
            spans.push(Span::raw("  "));
        }
        // Breakers are this gateway's own until Redis is back: the operator must know.
        Some(fleet) => {
            spans.push(Span::styled(
                format!("⚠ fleet lost ({}): local breakers", fleet.redis),
                theme.warning,
            ));
            spans.push(Span::raw("  "));
        }
        None => {}
    }
    if paint.view.facts.frozen {
        spans.push(Span::styled(" FROZEN ", theme.badge));
        spans.push(Span::raw("  "));
    }
    if dash.events_missed > 0 {
        let missed = text::plural(dash.events_missed, "event", "events");
        spans.push(Span::styled(format!("⚠ {missed} missed"), theme.warning));
        spans.push(Span::raw("  "));
    }
    match &dash.recording {
        // Recording could not start: the reason, as a warning.
        Some(why) if why.starts_with("not recording") => {
            spans.push(Span::styled(why.clone(), theme.warning));
        }
        Some(path) => {
            spans.push(Span::styled("● recording ", theme.title));
            spans.push(Span::raw(path.clone()));
        }
        None => spans.push(Span::styled("not recording", theme.muted)),
    }
    spans.push(Span::raw(" "));
    Line::from(spans)
}

/// The totals, dropping the least important when the row is too narrow.
fn totals<'a>(paint: &Paint, width: u16) -> Line<'a> {
    let t = &paint.view.dash.totals;
    let theme = &paint.theme;
    let failed_style = if t.failed > 0 {
        theme.failed
    } else {
        theme.title
    };
    // (rank, label, value, style): the highest rank goes first when there is no room.
    let mut segments = vec![
        (2, "requests", t.requests.to_string(), theme.title),
        (0, "answered", t.answered.to_string(), theme.title),
        (1, "failed over", t.failed_over.to_string(), theme.title),
        (0, "failed", t.failed.to_string(), failed_style),
        (3, "in flight", t.in_flight.to_string(), theme.title),
        (0, "cost", t.cost().describe(text::usd), theme.title),
    ];
    // Callers that went away are not failures; said apart, once there are any.
    if t.cancelled > 0 {
        segments.insert(4, (2, "cancelled", t.cancelled.to_string(), theme.title));
    }
    loop {
        let line = segments_line(&segments, paint);
        let worst = segments.iter().map(|s| s.0).max();
        match worst {
            Some(worst) if line.width() > usize::from(width) => {
                if let Some(at) = segments.iter().rposition(|s| s.0 == worst) {
                    segments.remove(at);
                }
            }
            _ => return line,
        }
    }
}

fn segments_line<'a>(segments: &[(u8, &str, String, Style)], paint: &Paint) -> Line<'a> {
    let mut spans = Vec::with_capacity(segments.len() * 3);
    for (i, (_, label, value, style)) in segments.iter().enumerate() {
        spans.push(Span::raw(if i == 0 { " " } else { SEPARATOR }));
        spans.push(Span::styled(format!("{label} "), paint.theme.muted));
        spans.push(Span::styled(value.clone(), *style));
    }
    Line::from(spans)
}
