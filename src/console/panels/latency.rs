//! First-event latency over time, per provider: one column per time step ending at `now`, its
//! height the slowest first event in that step (each provider on its own scale, written in the
//! gutter), and a failed attempt marked with a red `✗` (`x` without colour) on top.

use chrono::TimeDelta;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::window::Window;
use super::{Paint, text};
use crate::console::dashboard::ProviderView;

/// The span the panel tries to cover.
const WANTED: TimeDelta = TimeDelta::minutes(5);
/// Name and scale on the left of the bars.
const GUTTER: u16 = 12;
const EIGHTHS: [&str; 9] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];

/// One time step of one provider.
#[derive(Debug, Clone, Copy, Default)]
struct Step {
    slowest_ms: Option<u64>,
    failed: bool,
}

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint) {
    let dash = paint.view.dash;
    let cells = usize::from(area.width.saturating_sub(2 + GUTTER));
    let window = dash.now.map(|now| Window::new(now, cells, WANTED));
    let title = match window {
        Some(w) => format!(" first-event latency · {}/cell ", text::span(w.step)),
        None => " first-event latency ".to_string(),
    };
    let legend = Line::from(vec![
        Span::raw(" "),
        Span::styled(paint.theme.fail_glyph, paint.theme.failed),
        Span::raw(" failed attempt "),
    ]);
    let block = paint
        .theme
        .block(title, false)
        .title_bottom(legend.right_aligned());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let (Some(window), false) = (window, dash.providers.is_empty()) else {
        return;
    };
    let count = u16::try_from(dash.providers.len()).unwrap_or(u16::MAX);
    let per_provider = (inner.height / count.max(1)).max(1);
    let mut lines = Vec::with_capacity(usize::from(inner.height));
    for p in &dash.providers {
        lines.extend(provider_rows(p, &window, per_provider, paint));
    }
    lines.truncate(usize::from(inner.height));
    text::draw_lines(frame, inner, lines);
}

fn steps(p: &ProviderView, window: &Window) -> Vec<Step> {
    let mut steps = vec![Step::default(); window.cells];
    for point in p.latency_series.iter().rev() {
        if point.at < window.start() {
            break;
        }
        let Some(i) = window.cell(point.at) else {
            continue;
        };
        match point.latency_ms {
            Some(ms) => steps[i].slowest_ms = Some(steps[i].slowest_ms.map_or(ms, |s| s.max(ms))),
            None => steps[i].failed = true,
        }
    }
    steps
}

/// `rows` rows for one provider: name and scale in the gutter, bars in eighths of a row.
fn provider_rows<'a>(p: &ProviderView, window: &Window, rows: u16, paint: &Paint) -> Vec<Line<'a>> {
    let steps = steps(p, window);
    let scale = steps.iter().filter_map(|s| s.slowest_ms).max().unwrap_or(0);
    let levels = u64::from(rows) * 8;
    let height = |ms: u64| {
        ms.saturating_mul(levels)
            .div_ceil(scale.max(1))
            .clamp(1, levels)
    };
    let label = usize::from(GUTTER - 1);
    let gutter = [
        Span::styled(text::pad(&p.name, label) + " ", paint.theme.title),
        Span::styled(
            text::pad(&gutter_scale(scale), label) + " ",
            paint.theme.muted,
        ),
    ];
    (0..rows)
        .map(|row| {
            let from_bottom = u64::from(rows - 1 - row);
            let label = gutter.get(usize::from(row)).cloned();
            let label = label.unwrap_or_else(|| Span::raw(" ".repeat(usize::from(GUTTER))));
            let mut spans = vec![label];
            let cells = steps.iter().map(|s| {
                if s.failed && row == 0 {
                    return (paint.theme.fail_glyph, paint.theme.failed);
                }
                let level = s.slowest_ms.map_or(0, height);
                let fill = level.saturating_sub(from_bottom * 8).min(8);
                (EIGHTHS[fill as usize], Style::new())
            });
            spans.extend(text::runs(cells));
            Line::from(spans)
        })
        .collect()
}

fn gutter_scale(scale: u64) -> String {
    if scale == 0 {
        String::new()
    } else {
        format!("max {}", text::millis(scale))
    }
}
