//! The `?` popup: every key binding that works here (generated from the bindings, so it never goes
//! stale; a replay's own first), the prompt's keys, and what the states and marks on the screen mean. On a
//! short terminal it scrolls (↑↓ PgUp PgDn), saying how many lines are above and below.

use ratatui::Frame;
use ratatui::layout::{Margin, Rect};
use ratatui::text::{Line, Span};

use super::{Paint, popup, replay_bar, text};
use crate::console::keys::Scope;
use crate::console::theme::{Theme, state_glyph, state_word};
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
    ("Esc", "leave the prompt, close a popup, follow the newest"),
];

/// A replay's: it has no prompt.
const FIXED_IN_REPLAY: [(&str, &str); 1] = [("Esc", "close a popup, follow the newest")];

/// Draw the help scrolled down by `scroll` lines (kept within its length); returns the scroll the
/// popup could use, so that the keys stop at the end.
pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint, scroll: usize) -> usize {
    let mut lines: Vec<Line> = Vec::new();
    for (i, section) in sections(paint).into_iter().enumerate() {
        if i > 0 {
            lines.push(Line::default());
        }
        lines.extend(section);
    }
    let widest = lines.iter().map(Line::width).max().unwrap_or(0);
    let width = u16::try_from(widest + 4).unwrap_or(u16::MAX);
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let boxed = popup::centred(area, width, height);
    let rows = usize::from(boxed.height.saturating_sub(2));
    let most = lines.len().saturating_sub(rows);
    let scroll = scroll.min(most);
    let mut block = popup::block(" help ", paint);
    if most > 0 {
        let below = most - scroll;
        let place = format!(" {scroll} above · {below} below · ↑↓ PgUp PgDn ");
        block = block.title_bottom(Line::styled(place, paint.theme.title).right_aligned());
    }
    let inner = popup::open(frame, boxed, block);
    let shown = lines.into_iter().skip(scroll).take(rows);
    text::draw_lines(frame, inner.inner(Margin::new(1, 0)), shown);
    most
}

fn sections<'a>(paint: &Paint) -> Vec<Vec<Line<'a>>> {
    let theme = &paint.theme;
    let keys = paint.view.keys;
    // Live: the panels' keys, the fixed ones, the confirmation's. A replay (read-only, where
    // pause is the freeze) has its own keys first and none of those that only work live.
    let replaying = paint.view.facts.replay.is_some();
    let (replay, bound, confirm) = if replaying {
        let panels = keys.help_rows(&[Scope::Panels]);
        (keys.help_rows(&[Scope::Replay]), panels, Vec::new())
    } else {
        let panels = keys.help_rows(&[Scope::Panels, Scope::Live]);
        (Vec::new(), panels, keys.help_rows(&[Scope::Confirm]))
    };
    let fixed: Vec<(String, &str)> = if replaying {
        FIXED_IN_REPLAY.iter()
    } else {
        FIXED.iter()
    }
    .map(|(k, about)| (k.to_string(), *about))
    .collect();
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
    let mut marks = vec![
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
    if replaying {
        marks.push(bar_legend(theme));
    }
    vec![keys_section, states, marks]
}

/// What the marks on a replay's bar mean.
fn bar_legend<'a>(theme: &Theme) -> Line<'a> {
    let open = BreakerState::Open;
    let forced = BreakerState::ForcedOpen;
    Line::from(vec![
        Span::raw("replay bar: "),
        Span::styled(replay_bar::PLAYHEAD, theme.key),
        Span::raw(" now  ·  "),
        Span::styled(replay_bar::FAILOVER_GLYPH, theme.retryable),
        Span::raw(" failover  ·  "),
        Span::styled(state_glyph(open), theme.state(open)),
        Span::raw(" breaker open ("),
        Span::styled(state_glyph(forced), theme.state(forced)),
        Span::raw(" tripped)  ·  "),
        Span::styled(replay_bar::OPERATOR_GLYPH, theme.state(forced)),
        Span::raw(" operator action"),
    ])
}
