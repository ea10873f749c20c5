//! What the traffic costs: tokens and dollars per provider, the part spent on attempts that failed,
//! and what failing over spent beyond, or saved on, what the primaries would have charged.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Table;

use super::columns::{self, Column};
use super::{Paint, text};
use crate::console::dashboard::Tokens;

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint) {
    let theme = &paint.theme;
    let block = theme.block(" cost ", false);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [table_area, summary_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
    let fitted = columns::fit(
        table_columns(paint),
        table_area.width,
        theme.muted.patch(theme.title),
    );
    let table = Table::new(fitted.rows, fitted.widths)
        .header(fitted.header)
        .column_spacing(columns::SPACING);
    frame.render_widget(table, table_area);
    frame.render_widget(summary(paint), summary_area);
}

fn table_columns<'a>(paint: &Paint) -> Vec<Column<'a>> {
    let dash = paint.view.dash;
    let theme = &paint.theme;
    let mut name = Column::new("provider", 0);
    let mut input = Column::new("in", 3).right();
    let mut output = Column::new("out", 3).right();
    let mut cache = Column::new("cache r/w", 4).right();
    let mut cost = Column::new("cost", 1).right();
    let mut failed = Column::new("failed", 2).right();
    let mut total = Tokens::default();
    for p in &dash.providers {
        name.push(Span::styled(p.name.clone(), theme.title));
        push_tokens(&p.tokens, &mut input, &mut output, &mut cache);
        cost.push(text::usd(p.cost_usd));
        failed.push(failed_cell(p.failed_cost_usd, paint));
        total.input += p.tokens.input;
        total.output += p.tokens.output;
        total.cache_read += p.tokens.cache_read;
        total.cache_write += p.tokens.cache_write;
    }
    name.push(Span::styled("total", theme.title));
    push_tokens(&total, &mut input, &mut output, &mut cache);
    cost.push(Span::styled(text::usd(dash.totals.cost_usd), theme.title));
    failed.push(failed_cell(dash.totals.failed_cost_usd, paint));
    vec![name, input, output, cache, cost, failed]
}

fn push_tokens(t: &Tokens, input: &mut Column, output: &mut Column, cache: &mut Column) {
    input.push(text::count(t.input));
    output.push(text::count(t.output));
    cache.push(format!(
        "{}/{}",
        text::count(t.cache_read),
        text::count(t.cache_write)
    ));
}

fn failed_cell<'a>(usd: f64, paint: &Paint) -> Span<'a> {
    if usd > 0.0 {
        Span::styled(text::usd(usd), paint.theme.failed)
    } else {
        Span::raw(text::usd(usd))
    }
}

/// The failover delta, said in words: what answering from the fallbacks cost beyond, or saved
/// on, what the primaries would have charged for the same tokens.
fn summary<'a>(paint: &Paint) -> Line<'a> {
    let delta = paint.view.dash.totals.failover_delta_usd;
    let theme = &paint.theme;
    // Below a hundredth of a cent, `usd` shows nothing either way.
    if delta.abs() < 0.000_05 {
        return Line::styled(
            "failing over cost nothing beyond the primaries' price",
            theme.muted,
        );
    }
    let (verb, tail) = if delta > 0.0 {
        ("spent ", " more than the primaries would have")
    } else {
        ("saved ", " on the primaries' price")
    };
    Line::from(vec![
        Span::styled(format!("failing over {verb}"), theme.muted),
        Span::styled(text::usd(delta.abs()), theme.title),
        Span::styled(tail, theme.muted),
    ])
}
