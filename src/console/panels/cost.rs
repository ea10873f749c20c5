//! What the traffic costs: tokens and dollars per provider, the part spent on attempts that failed,
//! and what failing over spent beyond, or saved on, what the primaries would have charged.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Table;

use super::columns::{self, Column};
use super::{Paint, text};
use crate::console::dashboard::Tokens;
use crate::event::facts::Spend;

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
        cost.push(p.cost().cell(text::usd));
        failed.push(failed_cell(p.failed_cost(), paint));
        total.input += p.tokens.input;
        total.output += p.tokens.output;
        total.cache_read += p.tokens.cache_read;
        total.cache_write += p.tokens.cache_write;
    }
    name.push(Span::styled("total", theme.title));
    push_tokens(&total, &mut input, &mut output, &mut cache);
    // The total says in full when it leaves unpriced usage out: `≥ $0.0123 (+ unpriced)`.
    let spent = dash.totals.cost().describe(text::usd);
    cost.push(Span::styled(spent, theme.title));
    failed.push(failed_cell(dash.totals.failed_cost(), paint));
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

fn failed_cell<'a>(spent: Spend, paint: &Paint) -> Span<'a> {
    if spent.usd > 0.0 || !spent.known() {
        Span::styled(spent.cell(text::usd), paint.theme.failed)
    } else {
        Span::raw(spent.cell(text::usd))
    }
}

/// The failover delta, said in words: what answering from the fallbacks cost beyond, or saved
/// on, what the primaries would have charged for the same tokens. Answers whose own cost is
/// unknown are left out of it, and it says how many.
fn summary<'a>(paint: &Paint) -> Line<'a> {
    let totals = &paint.view.dash.totals;
    let delta = totals.failover_delta_usd;
    let theme = &paint.theme;
    let unknown = totals.delta_unknown;
    // Below a hundredth of a cent, `usd` shows nothing either way.
    if delta.abs() < 0.000_05 && unknown > 0 {
        let s = if unknown == 1 { "" } else { "s" };
        return Line::from(vec![
            Span::styled("what failing over cost is ", theme.muted),
            Span::styled("unknown", theme.title),
            Span::styled(format!(" ({unknown} answer{s} unpriced)"), theme.muted),
        ]);
    }
    let mut spans = if delta.abs() < 0.000_05 {
        vec![Span::styled(
            "failing over cost nothing beyond the primaries' price",
            theme.muted,
        )]
    } else {
        let (verb, tail) = if delta > 0.0 {
            ("spent ", " more than the primaries would have")
        } else {
            ("saved ", " on the primaries' price")
        };
        vec![
            Span::styled(format!("failing over {verb}"), theme.muted),
            Span::styled(text::usd(delta.abs()), theme.title),
            Span::styled(tail, theme.muted),
        ]
    };
    if unknown > 0 {
        spans.push(Span::styled(
            format!(" ({unknown} unpriced left out)"),
            theme.muted,
        ));
    }
    Line::from(spans)
}
