//! Tables whose columns fit the panel: each column is as wide as its widest cell (up to a cap),
//! and when the panel is too narrow the least important columns go first, so a table at 80
//! columns keeps what matters instead of squeezing everything into unreadable slivers.

use std::borrow::Cow;

use ratatui::layout::{Alignment, Constraint};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row};

use super::text;

/// Spaces between columns.
pub const SPACING: u16 = 1;

pub struct Column<'a> {
    heading: Cow<'a, str>,
    /// Lower is kept longer when room runs out.
    rank: u8,
    align: Alignment,
    max: u16,
    /// Takes the width left over and cuts its cells to it.
    fill: bool,
    cells: Vec<Line<'a>>,
}

impl<'a> Column<'a> {
    pub fn new(heading: impl Into<Cow<'a, str>>, rank: u8) -> Self {
        Column {
            heading: heading.into(),
            rank,
            align: Alignment::Left,
            max: 40,
            fill: false,
            cells: Vec::new(),
        }
    }

    pub fn right(mut self) -> Self {
        self.align = Alignment::Right;
        self
    }

    pub fn max(mut self, max: u16) -> Self {
        self.max = max;
        self
    }

    pub fn fill(mut self) -> Self {
        self.fill = true;
        self
    }

    pub fn push(&mut self, cell: impl Into<Line<'a>>) {
        self.cells.push(cell.into());
    }

    fn width(&self) -> u16 {
        let widest = self
            .cells
            .iter()
            .map(Line::width)
            .chain(std::iter::once(text::width(&self.heading)))
            .max()
            .unwrap_or(0);
        let widest = u16::try_from(widest).unwrap_or(u16::MAX);
        if self.fill {
            // A filling column only asks for its heading; it gets whatever is left.
            u16::try_from(text::width(&self.heading)).unwrap_or(u16::MAX)
        } else {
            widest.min(self.max)
        }
    }
}

/// The heading row, the rows and the widths of a table fitted to `available` columns.
pub struct Fitted<'a> {
    pub header: Row<'a>,
    pub rows: Vec<Row<'a>>,
    pub widths: Vec<Constraint>,
}

pub fn fit<'a>(columns: Vec<Column<'a>>, available: u16, heading: Style) -> Fitted<'a> {
    let widths: Vec<u16> = columns.iter().map(Column::width).collect();
    let mut by_rank: Vec<usize> = (0..columns.len()).collect();
    by_rank.sort_by_key(|&i| columns[i].rank);
    let mut keep = vec![false; columns.len()];
    let mut used: u16 = 0;
    for i in by_rank {
        let need = widths[i] + if used > 0 { SPACING } else { 0 };
        if used.saturating_add(need) <= available {
            keep[i] = true;
            used += need;
        }
    }
    let left_over = available - used;
    let kept: Vec<(Column<'a>, u16)> = columns
        .into_iter()
        .zip(widths)
        .zip(keep)
        .filter_map(|(cw, k)| k.then_some(cw))
        .map(|(c, w)| {
            let w = if c.fill { w + left_over } else { w };
            (c, w)
        })
        .collect();
    let header = Row::new(kept.iter().map(|(c, _)| {
        Cell::from(
            Line::from(c.heading.clone())
                .alignment(c.align)
                .style(heading),
        )
    }));
    let widths = kept.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    let height = kept.iter().map(|(c, _)| c.cells.len()).max().unwrap_or(0);
    let mut columns: Vec<_> = kept
        .into_iter()
        .map(|(c, w)| (c.align, w, c.cells.into_iter()))
        .collect();
    let rows = (0..height)
        .map(|_| {
            Row::new(columns.iter_mut().map(|(align, w, cells)| {
                let line = cells.next().unwrap_or_default();
                Cell::from(text::fit_line(line, usize::from(*w)).alignment(*align))
            }))
        })
        .collect();
    Fitted {
        header,
        rows,
        widths,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(heading: &'static str, rank: u8, cell: &'static str) -> Column<'static> {
        let mut c = Column::new(heading, rank);
        c.push(cell);
        c
    }

    #[test]
    fn least_important_columns_go_first() {
        let columns = vec![
            column("name", 0, "anthropic"),
            column("model", 9, "claude-sonnet-4-5"),
            column("state", 1, "closed"),
        ];
        let fitted = fit(columns, 20, Style::new());
        assert_eq!(
            fitted.widths,
            [Constraint::Length(9), Constraint::Length(6)]
        );
    }

    #[test]
    fn a_fill_column_takes_the_rest() {
        let columns = vec![
            column("name", 0, "anthropic"),
            column("notes", 5, "a long note").fill(),
        ];
        let fitted = fit(columns, 30, Style::new());
        assert_eq!(
            fitted.widths,
            [Constraint::Length(9), Constraint::Length(20)]
        );
    }
}
