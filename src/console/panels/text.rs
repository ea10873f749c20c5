//! Numbers and text as the panels write them, and fitting text into a width. Widths are display
//! columns (a CJK character takes two), never bytes, so nothing is cut mid-character.

use std::borrow::Cow;

use chrono::{DateTime, TimeDelta, Utc};
use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

/// Display width of a string.
pub fn width(text: &str) -> usize {
    if printable_ascii(text) {
        text.len()
    } else {
        Span::raw(text).width()
    }
}

/// Printable ASCII, by far the common case, is one column a byte: no Unicode tables needed.
fn printable_ascii(text: &str) -> bool {
    text.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// Lines top to bottom, one a row, each cut at the area's width. The text-heavy panels (log,
/// reply) draw through here rather than a `Paragraph`, which reflows every grapheme even when
/// nothing wraps.
pub fn draw_lines<'a>(frame: &mut Frame, area: Rect, lines: impl IntoIterator<Item = Line<'a>>) {
    let area = area.intersection(frame.area());
    let buf = frame.buffer_mut();
    for (row, line) in area.rows().zip(lines) {
        if !put_simple(buf, row, &line) {
            line.render(row, buf);
        }
    }
}

/// Write a left-aligned line of one-column characters straight into the cells, as `Line::render`
/// would but without segmenting it into graphemes first. `false` at the first character that is
/// not that simple (wide, combining, control): `Line::render` then draws the whole line over
/// what was written, which was the same.
fn put_simple(buf: &mut Buffer, row: Rect, line: &Line) -> bool {
    if !matches!(line.alignment, None | Some(Alignment::Left)) {
        return false;
    }
    if line.spans.iter().all(|s| s.content.is_empty()) {
        return true;
    }
    buf.set_style(row, line.style);
    let mut columns = (row.x..row.right()).map(|x| (x, row.y));
    for span in &line.spans {
        for c in span.content.chars() {
            let narrow = (' '..='~').contains(&c) || width(c.encode_utf8(&mut [0; 4])) == 1;
            if !narrow || c.is_control() {
                return false;
            }
            let Some(at) = columns.next() else {
                return true;
            };
            if let Some(cell) = buf.cell_mut(at) {
                cell.set_char(c).set_style(span.style);
            }
        }
    }
    true
}

/// `text` cut to `max` columns, ending in `…` when something was cut.
pub fn fit(text: &str, max: usize) -> Cow<'_, str> {
    if width(text) <= max {
        return Cow::Borrowed(text);
    }
    let keep = max.saturating_sub(1);
    let mut used = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        let w = width(&text[i..i + c.len_utf8()]);
        if used + w > keep {
            break;
        }
        used += w;
        end = i + c.len_utf8();
    }
    if max == 0 {
        Cow::Borrowed("")
    } else {
        Cow::Owned(format!("{}…", &text[..end]))
    }
}

/// `text` cut or padded with spaces to exactly `columns` columns, for a fixed-width gutter.
pub fn pad(text: &str, columns: usize) -> String {
    let cut = fit(text, columns);
    let fill = columns.saturating_sub(width(&cut));
    format!("{cut}{}", " ".repeat(fill))
}

/// A styled line cut to `max` columns, its last kept span ending in `…` when something was cut.
pub fn fit_line(line: Line<'_>, max: usize) -> Line<'_> {
    if line.width() <= max {
        return line;
    }
    let Line {
        spans,
        style,
        alignment,
    } = line;
    let mut kept = Vec::with_capacity(spans.len());
    let mut used = 0;
    for span in spans {
        let w = span.width();
        if used + w < max {
            used += w;
            kept.push(span);
            continue;
        }
        // The `…` appended first makes `fit` mark the cut even when this span fits exactly.
        let cut = fit(&format!("{}…", span.content), max - used).into_owned();
        kept.push(Span::styled(cut, span.style));
        break;
    }
    Line {
        spans: kept,
        style,
        alignment,
    }
}

/// Greedy word wrap into lines of at most `max` columns; words longer than a line are split.
/// Tabs become spaces and other control characters are dropped, so the terminal sees only text.
pub fn wrap(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        if paragraph.chars().any(char::is_control) {
            let clean: String = paragraph
                .chars()
                .filter_map(|c| match c {
                    '\t' => Some(' '),
                    c if c.is_control() => None,
                    c => Some(c),
                })
                .collect();
            wrap_paragraph(&clean, max, &mut lines);
        } else {
            wrap_paragraph(paragraph, max, &mut lines);
        }
    }
    lines
}

fn wrap_paragraph(paragraph: &str, max: usize, lines: &mut Vec<String>) {
    let mut line = String::new();
    let mut used = 0;
    for word in paragraph.split(' ') {
        let w = width(word);
        let gap = usize::from(!line.is_empty());
        if used + gap + w <= max {
            if gap == 1 {
                line.push(' ');
            }
            line.push_str(word);
            used += gap + w;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
            used = 0;
        }
        for c in word.chars() {
            let cw = width(c.encode_utf8(&mut [0; 4]));
            if used + cw > max && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                used = 0;
            }
            line.push(c);
            used += cw;
        }
    }
    lines.push(line);
}

/// `312ms`, `1.25s`, `12.5s`, `125s`.
pub fn millis(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..10_000 => format!("{:.2}s", ms as f64 / 1000.0),
        10_000..100_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => format!("{}s", ms / 1000),
    }
}

/// `$0.0123` (cents matter per request), `$123.45` once it is large.
pub fn usd(amount: f64) -> String {
    if amount.abs() >= 100.0 {
        format!("${amount:.2}")
    } else {
        format!("${amount:.4}")
    }
}

/// `950`, `12.3k`, `4.5M`.
pub fn count(n: u64) -> String {
    match n {
        0..10_000 => n.to_string(),
        10_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// `12s`, `3m05s`, `11m`, `2h04m`: how long, for countdowns and time spans.
pub fn span(delta: TimeDelta) -> String {
    let s = delta.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 if s % 60 == 0 => format!("{}m", s / 60),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// At most [`AGO_WIDTH`] columns: `9s`, `3m05s`, `12m`, `2h04m`, `3d`; for a time that ticks on
/// screen (a countdown, an age), padded to that width by its caller so its column never shifts.
pub fn short_span(delta: TimeDelta) -> String {
    let s = delta.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..600 => format!("{}m{:02}s", s / 60, s % 60),
        600..3600 => format!("{}m", s / 60),
        3600..36_000 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        36_000..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", (s / 86_400).min(9_999)),
    }
}

/// The widest [`short_span`] under ten thousand days.
pub const AGO_WIDTH: usize = 5;

/// `1:02:31`: uptime.
pub fn clock_span(delta: TimeDelta) -> String {
    let s = delta.num_seconds().max(0);
    format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

/// `12:04:31`.
pub fn time_of_day(at: DateTime<Utc>) -> String {
    at.format("%H:%M:%S").to_string()
}

/// `98.2%`, `100%`.
pub fn percent(share: f64) -> String {
    if share >= 0.9995 {
        "100%".to_string()
    } else {
        format!("{:.1}%", share * 100.0)
    }
}

/// `"1 probe"` / `"2 probes"`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Neighbouring cells of one style as one span: fewer spans, a faster frame.
pub fn runs<'a>(cells: impl Iterator<Item = (&'static str, Style)>) -> Vec<Span<'a>> {
    let mut spans: Vec<Span<'a>> = Vec::new();
    let mut run = String::new();
    let mut run_style = None;
    for (glyph, style) in cells {
        if run_style.is_some_and(|s| s != style) {
            spans.push(Span::styled(
                std::mem::take(&mut run),
                run_style.unwrap_or_default(),
            ));
        }
        run_style = Some(style);
        run.push_str(glyph);
    }
    if let Some(style) = run_style {
        spans.push(Span::styled(run, style));
    }
    spans
}

/// A missing number.
pub const NONE: &str = "—";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_by_columns_and_marks_the_cut() {
        assert_eq!(fit("anthropic", 9), "anthropic");
        assert_eq!(fit("anthropic", 5), "anth…");
        assert_eq!(fit("anthropic", 1), "…");
        assert_eq!(fit("anthropic", 0), "");
        assert_eq!(fit("日本語のテキスト", 5), "日本…");
        assert_eq!(pad("日本", 6), "日本  ");
        assert_eq!(pad("anthropic", 5), "anth…");
    }

    #[test]
    fn wrap_breaks_at_words_and_splits_long_ones() {
        assert_eq!(wrap("the quick brown fox", 10), ["the quick", "brown fox"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a\n\nb", 4), ["a", "", "b"]);
        assert_eq!(wrap("tab\there", 20), ["tab here"]);
        assert_eq!(wrap("", 0), [""]);
    }

    #[test]
    fn the_fast_path_draws_what_line_render_draws() {
        use ratatui::style::{Color, Modifier};
        let red = Style::new().fg(Color::Red);
        let lines = [
            Line::from(vec![
                Span::styled("12:04:31 ", red),
                Span::raw("plain ascii"),
            ]),
            Line::from(vec![Span::raw("bars ▁▂█ ✗ · … ⟲"), Span::styled(" x", red)]),
            Line::raw("cut at the edge of the area, well past it"),
            Line::styled("a styled line", Style::new().add_modifier(Modifier::BOLD)),
            Line::raw("wide 日本 and e\u{301} combining"),
            Line::raw("right").right_aligned(),
            Line::raw("tab\there"),
            Line::default(),
        ];
        let area = Rect::new(0, 0, 20, 1);
        for line in lines {
            let mut expected = Buffer::empty(area);
            line.clone().render(area, &mut expected);
            let mut fast = Buffer::empty(area);
            if !put_simple(&mut fast, area, &line) {
                line.clone().render(area, &mut fast);
            }
            assert_eq!(fast, expected, "{line:?}");
        }
    }

    #[test]
    fn numbers_read_at_a_glance() {
        assert_eq!(millis(312), "312ms");
        assert_eq!(millis(1_250), "1.25s");
        assert_eq!(millis(15_000), "15.0s");
        assert_eq!(usd(0.01234), "$0.0123");
        assert_eq!(count(12_345), "12.3k");
        assert_eq!(span(TimeDelta::seconds(185)), "3m05s");
        assert_eq!(clock_span(TimeDelta::seconds(3751)), "1:02:31");
        assert_eq!(percent(0.982), "98.2%");
    }

    #[test]
    fn a_short_span_never_outgrows_its_column() {
        let spans = [
            (0, "0s"),
            (9, "9s"),
            (59, "59s"),
            (60, "1m00s"),
            (185, "3m05s"),
            (599, "9m59s"),
            (600, "10m"),
            (3_599, "59m"),
            (3_600, "1h00m"),
            (35_999, "9h59m"),
            (36_000, "10h"),
            (86_400 * 3, "3d"),
        ];
        for (secs, want) in spans {
            assert_eq!(short_span(TimeDelta::seconds(secs)), want);
        }
        for secs in (-5..200_000).step_by(7) {
            let w = width(&short_span(TimeDelta::seconds(secs)));
            assert!(w <= AGO_WIDTH, "{secs}: {w}");
        }
        assert_eq!(short_span(TimeDelta::MAX), "9999d");
    }
}
