//! The `?` popup: every key binding that works here (generated from the bindings, so it never goes
//! stale; a replay's own first), the prompt's keys, and what the states and marks on the screen mean. On a
//! short terminal the legends go first, then the last keys (counted, so nothing vanishes silently).

use ratatui::Frame;
use ratatui::layout::{Margin, Rect};
use ratatui::text::{Line, Span};

use super::{Paint, popup, text};
use crate::console::keys::Scope;
use crate::console::theme::{state_glyph, state_word};
use crate::engine::breaker::BreakerState;

const STATES: [(BreakerState, &str); 5] = [
    (BreakerState::Closed, "healthy: requests go through"),
    (BreakerState::HalfOpen, "recovering: a few probes test it"),
    (BreakerState::Open, "failing: requests skip it for now"),
    (
        BreakerState::ForcedOpen,
        "tripped by the operator until reset",
    ),
    (
        BreakerState::ForcedClosed,
        "held closed by the operator until reset",
    ),
];

/// The keys that are not bindings: the prompt's editing keys, and closing or leaving.
const FIXED: [(&str, &str); 3] = [
    ("Enter", "in the prompt: send"),
    ("Alt-Enter", "in the prompt: new line"),
    ("Esc", "leave the prompt, close a popup"),
];

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint) {
    let sections = sections(paint);
    let widest = sections
        .iter()
        .flatten()
        .map(Line::width)
        .max()
        .unwrap_or(0);
    let all = sections.iter().map(Vec::len).sum::<usize>() + sections.len() - 1;
    let width = u16::try_from(widest + 4).unwrap_or(u16::MAX);
    let height = u16::try_from(all + 2).unwrap_or(u16::MAX);
    let boxed = popup::centred(area, width, height);
    let lines = fit(sections, usize::from(boxed.height.saturating_sub(2)), paint);
    let inner = popup::open(frame, boxed, popup::block(" help ", paint));
    text::draw_lines(frame, inner.inner(Margin::new(1, 0)), lines);
}

/// As many sections as fit in `rows`, the keys first; keys that do not fit are counted instead.
fn fit<'a>(sections: Vec<Vec<Line<'a>>>, rows: usize, paint: &Paint) -> Vec<Line<'a>> {
    let mut lines: Vec<Line> = Vec::with_capacity(rows);
    for (i, section) in sections.into_iter().enumerate() {
        let gap = usize::from(i > 0);
        if lines.len() + gap + section.len() <= rows {
            if gap == 1 {
                lines.push(Line::default());
            }
            lines.extend(section);
        } else if i == 0 {
            let shown = rows.saturating_sub(1);
            let more = section.len() - shown;
            lines.extend(section.into_iter().take(shown));
            let note = format!("… {more} more: a taller terminal shows them all");
            lines.push(Line::styled(note, paint.theme.muted));
        }
    }
    lines.truncate(rows);
    lines
}

fn sections<'a>(paint: &Paint) -> Vec<Vec<Line<'a>>> {
    let theme = &paint.theme;
    let keys = paint.view.keys;
    // Live: the panels' keys, the fixed ones, the confirmation's. A replay (read-only, where
    // pause is the freeze) has its own keys first and none of those that only work live.
    let (replay, bound, confirm) = if paint.view.facts.replay.is_some() {
        let panels = keys.help_rows(&[Scope::Panels]);
        (keys.help_rows(&[Scope::Replay]), panels, Vec::new())
    } else {
        let panels = keys.help_rows(&[Scope::Panels, Scope::Live]);
        (Vec::new(), panels, keys.help_rows(&[Scope::Confirm]))
    };
    let fixed = FIXED.map(|(k, about)| (k.to_string(), about));
    let all = [&replay[..], &bound, &fixed, &confirm];
    let key_width = all
        .iter()
        .flat_map(|rows| rows.iter())
        .map(|(k, _)| text::width(k))
        .max()
        .unwrap_or(0);
    let row = |k: &str, about: &str| {
        Line::from(vec![
            Span::styled(format!("{k:>key_width$}  "), theme.key),
            Span::raw(about.to_string()),
        ])
    };
    let mut keys_section = vec![Line::styled("Keys", theme.title)];
    for rows in all {
        keys_section.extend(rows.iter().map(|(k, about)| row(k, about)));
    }
    let mut states = vec![Line::styled("Breaker states", theme.title)];
    for (state, about) in STATES {
        states.push(Line::from(vec![
            Span::styled(format!("{} ", state_glyph(state)), theme.state(state)),
            Span::styled(format!("{:<14}", state_word(state)), theme.state(state)),
            Span::raw(about),
        ]));
    }
    let marks = vec![
        Line::styled("Marks", theme.title),
        Line::from(vec![
            Span::styled("↻ retryable", theme.retryable),
            Span::raw(" fails over  ·  "),
            Span::styled("⊘ not retryable", theme.fatal),
            Span::raw(" fails everywhere  ·  "),
            Span::styled(theme.fail_glyph, theme.failed),
            Span::raw(" failed attempt"),
        ]),
        Line::from(vec![
            Span::raw("⟲ text withdrawn on failover  ·  ↪ answered by a fallback  ·  "),
            Span::styled("⚑", theme.fatal),
            Span::raw(" flagged"),
        ]),
    ];
    vec![keys_section, states, marks]
}
