//! The README's picture of the console, drawn by the console's own code so it never goes stale:
//!
//! ```sh
//! cargo run --example screenshot -- docs/console.svg
//! ```
//!
//! The frame is a live demo console 120×36, folded (`Dashboard::apply`, the console's own fold)
//! from the shipped recording of the demo incident — events the real engine made against the
//! simulator — up to a fixed moment, and drawn by `panels::draw` into a `TestBackend`. A fixed
//! file, a fixed moment and no clock make the picture the same byte for byte on every run:
//! `tests/it/screenshot.rs` checks that the committed `docs/console.svg` is what this writes.
//!
//! The SVG writer is hand-written (about a hundred lines): no crate on crates.io renders a ratatui
//! `Buffer` to SVG as a library of its own — the projects that publish such pictures (purple-ssh,
//! tokenix, ratagrid's playground) each carry a writer like this one inside their application —
//! and terminal-to-SVG crates such as termsnap emulate a VT from escape sequences, a terminal
//! emulator's worth of dependencies to get back the grid the `Buffer` already is.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, TimeDelta, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::{Buffer, Cell};
use ratatui::style::{Color, Modifier};
use ratatui_textarea::TextArea;

use breakerbox::console::dashboard::Dashboard;
use breakerbox::console::keys::Bindings;
use breakerbox::console::panels::{Facts, View, draw};
use breakerbox::console::ui::{LoadView, Ui};
use breakerbox::record::reader::read_events;

/// The terminal's size in the picture: a common laptop terminal, where the console drops the
/// latency, errors and cost panels (they are read zoomed, `z`).
pub const WIDTH: u16 = 120;
pub const HEIGHT: u16 = 36;

/// The recording the picture is folded from, in the repository.
pub const RECORDING: &str = "assets/recordings/demo-incident.jsonl";

/// How far into the recording the picture is taken: the primary, throttled by its rate-limit
/// headers for 25 s, is now overloaded; its breaker has opened, its first recovery probe has
/// failed, and every request goes to the fallback.
pub const AT_MS: i64 = 44_500;

/// The request in the reply panel: it met two overloaded answers on the primary and was answered
/// by the fallback, its whole reply on screen.
pub const REQUEST: &str = "r88";

/// Where the picture goes, in the repository.
pub const PICTURE: &str = "docs/console.svg";

/// The repository's root (the package's directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The dashboard as the live demo console shows it `AT_MS` into the recording.
pub fn dashboard(recording: &Path) -> Result<Dashboard, String> {
    let (_, events, warnings) = read_events(recording).map_err(|e| e.to_string())?;
    if let Some(warning) = warnings.first() {
        return Err(format!("the recording should read whole: {warning}"));
    }
    let start = events
        .first()
        .map(|e| e.ts)
        .ok_or_else(|| format!("{}: no events", recording.display()))?;
    let at: DateTime<Utc> = start + TimeDelta::milliseconds(AT_MS);
    let mut dash = Dashboard::new();
    for event in events.iter().take_while(|e| e.ts <= at) {
        dash.apply(event);
    }
    dash.tick(at);
    Ok(dash)
}

/// The frame, as the console draws it.
pub fn frame(recording: &Path) -> Result<Buffer, String> {
    let dash = dashboard(recording)?;
    let ui = Ui {
        selected_request: Some(REQUEST.to_string()),
        ..Ui::default()
    };
    let keys = Bindings::default();
    let prompt = TextArea::default();
    // What the live demo console says of itself: background load on at its starting rate, and
    // providers that take faults.
    let facts = Facts {
        load: Some(LoadView {
            on: true,
            per_sec: 1.0,
        }),
        faults: true,
        ..Facts::default()
    };
    let mut terminal =
        Terminal::new(TestBackend::new(WIDTH, HEIGHT)).map_err(|e| format!("terminal: {e}"))?;
    terminal
        .draw(|f| {
            draw(
                f,
                &View {
                    dash: &dash,
                    ui: &ui,
                    keys: &keys,
                    prompt: &prompt,
                    facts,
                },
            );
        })
        .map_err(|e| format!("draw: {e}"))?;
    Ok(terminal.backend().buffer().clone())
}

/// The picture, from the recording in the repository.
pub fn picture() -> Result<String, String> {
    Ok(svg(&frame(&root().join(RECORDING))?))
}

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: cargo run --example screenshot -- {PICTURE}");
        return ExitCode::from(2);
    };
    let written = picture().and_then(|svg| {
        std::fs::write(&out, svg).map_err(|e| format!("{}: {e}", Path::new(&out).display()))
    });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("screenshot: {why}");
            ExitCode::FAILURE
        }
    }
}

// --- the SVG writer ------------------------------------------------------------------------------

/// A cell's size and the font's, in pixels: DejaVu Sans Mono (and most monospace faces) advance
/// 0.6 em, so 14 px type fills an 8.4 px column; each run is also stretched to its exact width
/// (`textLength`), so a face that advances otherwise cannot drift out of the grid.
const CELL_W: f64 = 8.4;
const CELL_H: f64 = 17.0;
const FONT_SIZE: f64 = 14.0;
/// The baseline, down from a row's top.
const BASELINE: f64 = 13.0;
const PAD: f64 = 12.0;
const FONT: &str = "'DejaVu Sans Mono', 'Menlo', 'Consolas', 'Liberation Mono', monospace";

/// The terminal's own colours (`Color::Reset`): a dark theme.
const DEFAULT_FG: &str = "#d0d0d0";
const DEFAULT_BG: &str = "#1b1d23";

/// The 16 ANSI colours as a dark theme draws them (those of VS Code's terminal).
fn rgb(color: Color) -> Option<String> {
    let hex = match color {
        Color::Reset => return None,
        Color::Black => "#000000",
        Color::Red => "#cd3131",
        Color::Green => "#0dbc79",
        Color::Yellow => "#e5e510",
        Color::Blue => "#2472c8",
        Color::Magenta => "#bc3fbc",
        Color::Cyan => "#11a8cd",
        Color::Gray => "#e5e5e5",
        Color::DarkGray => "#666666",
        Color::LightRed => "#f14c4c",
        Color::LightGreen => "#23d18b",
        Color::LightYellow => "#f5f543",
        Color::LightBlue => "#3b8eea",
        Color::LightMagenta => "#d670d6",
        Color::LightCyan => "#29b8db",
        Color::White => "#ffffff",
        Color::Rgb(r, g, b) => return Some(format!("#{r:02x}{g:02x}{b:02x}")),
        Color::Indexed(i) => return Some(indexed(i)),
    };
    Some(hex.to_string())
}

/// xterm's 256 colours: the 16 above, a 6×6×6 cube, then 24 greys.
fn indexed(i: u8) -> String {
    const BASIC: [Color; 16] = [
        Color::Black,
        Color::Red,
        Color::Green,
        Color::Yellow,
        Color::Blue,
        Color::Magenta,
        Color::Cyan,
        Color::Gray,
        Color::DarkGray,
        Color::LightRed,
        Color::LightGreen,
        Color::LightYellow,
        Color::LightBlue,
        Color::LightMagenta,
        Color::LightCyan,
        Color::White,
    ];
    match i {
        0..=15 => rgb(BASIC[usize::from(i)]).unwrap_or_default(),
        16..=231 => {
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            let n = i - 16;
            let (r, g, b) = (level(n / 36), level(n / 6 % 6), level(n % 6));
            format!("#{r:02x}{g:02x}{b:02x}")
        }
        _ => {
            let v = 8 + (i - 232) * 10;
            format!("#{v:02x}{v:02x}{v:02x}")
        }
    }
}

/// What a run of cells shares: its colours as painted (reverse video applied) and its weight.
#[derive(Debug, Clone, PartialEq)]
struct Look {
    fg: String,
    bg: Option<String>,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
}

impl Look {
    fn of(cell: &Cell) -> Look {
        let m = cell.modifier;
        let (mut fg, mut bg) = (rgb(cell.fg), rgb(cell.bg));
        if m.contains(Modifier::REVERSED) {
            (fg, bg) = (
                Some(bg.unwrap_or_else(|| DEFAULT_BG.to_string())),
                Some(fg.unwrap_or_else(|| DEFAULT_FG.to_string())),
            );
        }
        Look {
            fg: fg.unwrap_or_else(|| DEFAULT_FG.to_string()),
            bg,
            bold: m.contains(Modifier::BOLD),
            dim: m.contains(Modifier::DIM),
            italic: m.contains(Modifier::ITALIC),
            underline: m.contains(Modifier::UNDERLINED),
        }
    }
}

/// A buffer as an SVG image: a dark background, a rectangle per run of cells with a background
/// of their own, and a `<text>` per run of same-styled cells.
pub fn svg(buffer: &Buffer) -> String {
    let (cols, rows) = (buffer.area.width, buffer.area.height);
    let width = f64::from(cols) * CELL_W + 2.0 * PAD;
    let height = f64::from(rows) * CELL_H + 2.0 * PAD;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.1} {height:.1}" font-family="{FONT}" font-size="{FONT_SIZE}">"#
    );
    let _ = writeln!(
        out,
        "<!-- drawn by examples/screenshot.rs from {RECORDING}: regenerate, do not edit -->"
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" rx="6" fill="{DEFAULT_BG}"/>"#
    );
    let _ = writeln!(out, r#"<g xml:space="preserve">"#);
    for y in 0..rows {
        for run in runs(buffer, y) {
            write_run(&mut out, y, &run);
        }
    }
    let _ = writeln!(out, "</g>\n</svg>");
    out
}

/// Cells of one row that look alike and sit side by side.
struct Run {
    x: u16,
    cells: u16,
    text: String,
    look: Look,
}

fn runs(buffer: &Buffer, y: u16) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut x = 0;
    while x < buffer.area.width {
        let cell = &buffer[(x, y)];
        let symbol = cell.symbol();
        // A wide glyph covers the next cell too, which holds nothing of its own.
        let cells = if symbol.chars().count() == 1 && is_wide(symbol) {
            2
        } else {
            1
        };
        let look = Look::of(cell);
        match runs.last_mut() {
            Some(run) if run.look == look && run.x + run.cells == x => {
                run.cells += cells;
                run.text.push_str(symbol);
            }
            _ => runs.push(Run {
                x,
                cells,
                text: symbol.to_string(),
                look,
            }),
        }
        x += cells;
    }
    runs
}

/// East Asian wide glyphs and emoji take two columns. The console draws none today; this keeps a
/// future one from shifting the rest of its row.
fn is_wide(symbol: &str) -> bool {
    const WIDE: [(u32, u32); 9] = [
        (0x1100, 0x115F),
        (0x2E80, 0xA4CF),
        (0xAC00, 0xD7A3),
        (0xF900, 0xFAFF),
        (0xFE30, 0xFE4F),
        (0xFF00, 0xFF60),
        (0xFFE0, 0xFFE6),
        (0x1F300, 0x1FAFF),
        (0x20000, 0x3FFFD),
    ];
    symbol.chars().next().is_some_and(|c| {
        let c = u32::from(c);
        WIDE.iter().any(|&(from, to)| (from..=to).contains(&c))
    })
}

fn write_run(out: &mut String, y: u16, run: &Run) {
    let left = PAD + f64::from(run.x) * CELL_W;
    let top = PAD + f64::from(y) * CELL_H;
    let width = f64::from(run.cells) * CELL_W;
    if let Some(bg) = &run.look.bg {
        let _ = writeln!(
            out,
            r#"<rect x="{left:.1}" y="{top:.1}" width="{width:.1}" height="{CELL_H:.1}" fill="{bg}"/>"#
        );
    }
    let text = run.text.trim_end();
    if text.trim_start().is_empty() && !run.look.underline {
        return;
    }
    // Spaces at the end draw nothing; those inside keep the glyphs in their columns.
    let cells = run.cells - (run.text.chars().count() - text.chars().count()) as u16;
    let length = f64::from(cells) * CELL_W;
    let look = &run.look;
    let mut attrs = format!(r#"fill="{}""#, look.fg);
    if look.bold {
        attrs.push_str(r#" font-weight="bold""#);
    }
    if look.dim {
        attrs.push_str(r#" fill-opacity="0.6""#);
    }
    if look.italic {
        attrs.push_str(r#" font-style="italic""#);
    }
    if look.underline {
        attrs.push_str(r#" text-decoration="underline""#);
    }
    let _ = writeln!(
        out,
        r#"<text x="{left:.1}" y="{:.1}" textLength="{length:.1}" lengthAdjust="spacingAndGlyphs" {attrs}>{}</text>"#,
        top + BASELINE,
        escape(text),
    );
}

/// Text as XML character data; control characters (never in a drawn cell, but a recording is
/// input) become spaces, since XML 1.0 cannot hold them.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
