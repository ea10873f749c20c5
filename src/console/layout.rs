//! The whole screen's layout, in one place.
//!
//! Full, from 120×40 up (160×48 is the size it is drawn for): every panel.
//!
//! ```text
//!  header: mode · clock · uptime · recording · FROZEN                      (HEADER_HEIGHT)
//!  requests · answered · failed over · failed · in flight · cost
//! ┌ providers ─────────────────────────────────────────────────────────────────────┐
//! │ a row per provider: breaker, failures, countdown, latency, rate, cost         │ (n + 3)
//! └────────────────────────────────────────────────────────────────────────────────┘
//! ┌ latency ──────────────────────────────┐┌ breaker timeline ─────────────────────┐
//! │ first-event latency over time         ││ a bar of states per provider          │ (charts)
//! └───────────────────────────────────────┘└───────────────────────────────────────┘
//! ┌ errors ───────────────────────────────┐┌ cost ─────────────────────────────────┐
//! │ class × provider, retryable or not    ││ tokens and dollars per provider       │ (stats)
//! └───────────────────────────────────────┘└───────────────────────────────────────┘
//! ┌ requests ──┐┌ reply ──────────────────┐┌ event log ────────────────────────────┐
//! │ REQUESTS_  ││ the selected request's  ││ newest at the bottom                  │
//! │ WIDTH      ││ reply, wrapped (at least││                                       │ (fill)
//! │            ││ REPLY_MIN_WIDTH)        ││                                       │
//! └────────────┘└─────────────────────────┘│                                       │
//! ┌ prompt ─────────────────────────────────┐│                                       │
//! └─────────────────────────────────────────┘└───────────────────────────────────────┘
//!  status bar: the keys that work here and now                          flash (STATUS_HEIGHT)
//! ```
//!
//! Compact, from `MIN_WIDTH`×`MIN_HEIGHT` up to full (80×24 is the case it is made for): what an
//! operator needs to act — header, providers (their table says each breaker's state, its countdown,
//! its failures and its last error with its age; latency and cost as the width allows), the requests
//! with the reply, the prompt and the status bar. The breaker timeline comes back when there are rows
//! to spare, the event log on the right when there are columns to spare, and otherwise takes the
//! reply's place while it has the focus (Tab). The latency, errors and cost panels wait for a
//! full-size terminal, or a zoom (`z`, then Tab), and a provider's detail (Enter) has all its numbers.
//!
//! ```text
//!  header (2 rows)
//! ┌ providers ─────────────────────────────┐
//! └────────────────────────────────────────┘
//! ┌ breaker timeline ──────────────────────┐  only with COMPACT_REPLY_ROOM rows left below
//! └────────────────────────────────────────┘
//! ┌ requests ─┐┌ reply ─────────┐┌ log ────┐  the log only from COMPACT_LOG_WIDTH columns;
//! └───────────┘└────────────────┘└─────────┘  otherwise it replaces requests + reply when focused
//! ┌ prompt ────────────────────────────────┐
//! └────────────────────────────────────────┘
//!  status bar
//! ```
//!
//! Zoomed (`z`), one panel takes every row between the header and the prompt, whatever the size:
//! so every panel can be read at 80×24.
//!
//! Below `MIN_WIDTH`×`MIN_HEIGHT` the screen says it is too small and how big it needs to be.

use ratatui::layout::{Constraint, Layout, Rect};

use super::ui::{Focus, Panel};

/// The smallest terminal the console draws panels in.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;
/// From here on every panel has room.
pub const FULL_WIDTH: u16 = 120;
pub const FULL_HEIGHT: u16 = 40;

pub const HEADER_HEIGHT: u16 = 2;
pub const STATUS_HEIGHT: u16 = 1;
/// Borders plus the column headings of a table.
const TABLE_CHROME: u16 = 3;
/// Provider rows shown before the table scrolls to the selected one.
pub const PROVIDERS_MAX_ROWS: u16 = 10;
/// Latency and timeline row: two rows per provider for the latency bars, within these bounds.
pub const CHARTS_MIN_HEIGHT: u16 = 7;
pub const CHARTS_MAX_HEIGHT: u16 = 14;
/// Errors and cost row: a row per provider plus headings, total and delta, within these bounds.
pub const STATS_MIN_HEIGHT: u16 = 7;
pub const STATS_MAX_HEIGHT: u16 = 11;
/// The requests, reply and log row never gets less than this in the full layout.
pub const BOTTOM_MIN_HEIGHT: u16 = 12;
/// The share of the bottom row's width left of the event log (requests, reply, prompt).
pub const REPLY_SIDE_PERCENT: u16 = 65;
pub const REQUESTS_WIDTH: u16 = 46;
/// The reply keeps at least this width; the requests list narrows to the compact width first.
pub const REPLY_MIN_WIDTH: u16 = 50;
/// The prompt: borders plus one line, growing with what is typed up to this.
pub const PROMPT_MIN_HEIGHT: u16 = 3;
pub const PROMPT_MAX_HEIGHT: u16 = 6;
pub const COMPACT_PROMPT_MAX_HEIGHT: u16 = 4;
/// The requests and reply in the compact layout never get less than this.
pub const COMPACT_BOTTOM_MIN_HEIGHT: u16 = 5;
/// The compact layout shows the timeline only when this many rows remain for requests and reply.
pub const COMPACT_REPLY_ROOM: u16 = 10;
pub const COMPACT_REQUESTS_WIDTH: u16 = 28;
/// From this width the compact layout keeps the event log on the right.
pub const COMPACT_LOG_WIDTH: u16 = 110;
pub const COMPACT_LOG_PERCENT: u16 = 35;

/// Where each panel goes; `None` for a panel this size of terminal leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Areas {
    pub header: Rect,
    pub providers: Rect,
    pub latency: Option<Rect>,
    pub timeline: Option<Rect>,
    pub errors: Option<Rect>,
    pub cost: Option<Rect>,
    pub requests: Option<Rect>,
    pub reply: Option<Rect>,
    pub log: Option<Rect>,
    pub prompt: Rect,
    pub status: Rect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    TooSmall,
    Panels(Areas),
}

/// What the layout depends on besides the terminal's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    pub providers: usize,
    /// Rows of the providers table: a provider's and, with a breaker per model, one per model.
    pub provider_rows: usize,
    /// Lines typed in the prompt.
    pub prompt_lines: usize,
    pub focus: Focus,
    /// The panel zoomed to the whole screen, if any.
    pub zoomed: Option<Panel>,
}

pub fn split(area: Rect, needs: Needs) -> Screen {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        Screen::TooSmall
    } else if let Some(panel) = needs.zoomed {
        Screen::Panels(zoomed(area, needs, panel))
    } else if area.width >= FULL_WIDTH && area.height >= FULL_HEIGHT {
        full(area, needs).map_or_else(|| Screen::Panels(compact(area, needs)), Screen::Panels)
    } else {
        Screen::Panels(compact(area, needs))
    }
}

/// The header, one panel, the prompt and the status bar; the other panels are left out.
fn zoomed(area: Rect, needs: Needs, panel: Panel) -> Areas {
    let [header, body, prompt, status] = Layout::vertical([
        Constraint::Length(HEADER_HEIGHT),
        Constraint::Fill(1),
        Constraint::Length(prompt_height(needs, COMPACT_PROMPT_MAX_HEIGHT)),
        Constraint::Length(STATUS_HEIGHT),
    ])
    .areas(area);
    let mut areas = Areas {
        header,
        prompt,
        status,
        ..Areas::default()
    };
    match panel {
        Panel::Providers => areas.providers = body,
        Panel::Latency => areas.latency = Some(body),
        Panel::Timeline => areas.timeline = Some(body),
        Panel::Errors => areas.errors = Some(body),
        Panel::Cost => areas.cost = Some(body),
        Panel::Requests => areas.requests = Some(body),
        Panel::Reply => areas.reply = Some(body),
        Panel::Log => areas.log = Some(body),
    }
    areas
}

fn providers_height(needs: Needs) -> u16 {
    let rows = u16::try_from(needs.provider_rows.max(needs.providers).max(1)).unwrap_or(u16::MAX);
    rows.min(PROVIDERS_MAX_ROWS) + TABLE_CHROME
}

fn prompt_height(needs: Needs, max: u16) -> u16 {
    let lines = u16::try_from(needs.prompt_lines).unwrap_or(u16::MAX);
    lines.saturating_add(2).clamp(PROMPT_MIN_HEIGHT, max)
}

/// `None` when the bottom row would be squeezed (many providers): the compact layout copes better.
fn full(area: Rect, needs: Needs) -> Option<Areas> {
    let n = u16::try_from(needs.providers.max(1)).unwrap_or(u16::MAX);
    let providers = providers_height(needs);
    let charts = n
        .saturating_mul(2)
        .saturating_add(2)
        .max(n.saturating_add(4));
    let charts = charts.clamp(CHARTS_MIN_HEIGHT, CHARTS_MAX_HEIGHT);
    let stats = n
        .saturating_add(5)
        .clamp(STATS_MIN_HEIGHT, STATS_MAX_HEIGHT);
    let fixed = HEADER_HEIGHT + providers + charts + stats + STATUS_HEIGHT;
    if area.height.saturating_sub(fixed) < BOTTOM_MIN_HEIGHT {
        return None;
    }
    let [header, providers, charts, stats, bottom, status] = Layout::vertical([
        Constraint::Length(HEADER_HEIGHT),
        Constraint::Length(providers),
        Constraint::Length(charts),
        Constraint::Length(stats),
        Constraint::Fill(1),
        Constraint::Length(STATUS_HEIGHT),
    ])
    .areas(area);
    let [latency, timeline] = halves(charts);
    let [errors, cost] = halves(stats);
    let [left, log] = Layout::horizontal([
        Constraint::Percentage(REPLY_SIDE_PERCENT),
        Constraint::Fill(1),
    ])
    .areas(bottom);
    let [talk, prompt] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(prompt_height(needs, PROMPT_MAX_HEIGHT)),
    ])
    .areas(left);
    let requests_width = if talk.width >= REQUESTS_WIDTH + REPLY_MIN_WIDTH {
        REQUESTS_WIDTH
    } else {
        COMPACT_REQUESTS_WIDTH
    };
    let [requests, reply] =
        Layout::horizontal([Constraint::Length(requests_width), Constraint::Fill(1)]).areas(talk);
    Some(Areas {
        header,
        providers,
        latency: Some(latency),
        timeline: Some(timeline),
        errors: Some(errors),
        cost: Some(cost),
        requests: Some(requests),
        reply: Some(reply),
        log: Some(log),
        prompt,
        status,
    })
}

fn halves(area: Rect) -> [Rect; 2] {
    Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(area)
}

fn compact(area: Rect, needs: Needs) -> Areas {
    let prompt = prompt_height(needs, COMPACT_PROMPT_MAX_HEIGHT);
    let fixed = HEADER_HEIGHT + prompt + STATUS_HEIGHT;
    let room = area.height.saturating_sub(fixed);
    let providers = providers_height(needs).min(room.saturating_sub(COMPACT_BOTTOM_MIN_HEIGHT));
    let timeline_height = u16::try_from(needs.providers.max(1))
        .unwrap_or(u16::MAX)
        .saturating_add(2);
    let timeline = if room.saturating_sub(providers + timeline_height) >= COMPACT_REPLY_ROOM {
        timeline_height
    } else {
        0
    };
    let [header, providers, timeline, bottom, prompt, status] = Layout::vertical([
        Constraint::Length(HEADER_HEIGHT),
        Constraint::Length(providers),
        Constraint::Length(timeline),
        Constraint::Fill(1),
        Constraint::Length(prompt),
        Constraint::Length(STATUS_HEIGHT),
    ])
    .areas(area);
    let mut areas = Areas {
        header,
        providers,
        timeline: (timeline.height > 0).then_some(timeline),
        prompt,
        status,
        ..Areas::default()
    };
    if area.width >= COMPACT_LOG_WIDTH {
        let [talk, log] = Layout::horizontal([
            Constraint::Fill(1),
            Constraint::Percentage(COMPACT_LOG_PERCENT),
        ])
        .areas(bottom);
        (areas.requests, areas.reply) = requests_and_reply(talk);
        areas.log = Some(log);
    } else if needs.focus == Focus::Log {
        areas.log = Some(bottom);
    } else {
        (areas.requests, areas.reply) = requests_and_reply(bottom);
    }
    areas
}

fn requests_and_reply(area: Rect) -> (Option<Rect>, Option<Rect>) {
    let [requests, reply] = Layout::horizontal([
        Constraint::Length(COMPACT_REQUESTS_WIDTH),
        Constraint::Fill(1),
    ])
    .areas(area);
    (Some(requests), Some(reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(providers: usize, focus: Focus) -> Needs {
        Needs {
            providers,
            provider_rows: providers,
            prompt_lines: 1,
            focus,
            zoomed: None,
        }
    }

    fn panels(w: u16, h: u16, n: usize, focus: Focus) -> Areas {
        match split(Rect::new(0, 0, w, h), needs(n, focus)) {
            Screen::Panels(a) => a,
            Screen::TooSmall => panic!("{w}x{h} is big enough"),
        }
    }

    #[test]
    fn full_size_has_every_panel() {
        let a = panels(160, 48, 3, Focus::Providers);
        for panel in [
            a.latency, a.timeline, a.errors, a.cost, a.requests, a.reply, a.log,
        ] {
            assert!(panel.is_some_and(|r| r.height >= 5), "{a:?}");
        }
        assert_eq!(a.status.y, 47);
    }

    #[test]
    fn eighty_by_twenty_four_keeps_what_matters() {
        let a = panels(80, 24, 3, Focus::Providers);
        assert_eq!(a.providers.height, 6);
        assert!(a.requests.is_some() && a.reply.is_some());
        assert!(a.reply.is_some_and(|r| r.height >= 8));
        assert_eq!(
            (a.latency, a.errors, a.cost, a.log),
            (None, None, None, None)
        );
        let a = panels(80, 24, 3, Focus::Log);
        assert!(a.log.is_some() && a.reply.is_none());
    }

    /// Zoomed, any panel has the screen between the header and the prompt, even at 80×24.
    #[test]
    fn a_zoomed_panel_fills_the_screen() {
        for panel in Panel::ORDER {
            let zoom = Needs {
                zoomed: Some(panel),
                ..needs(3, Focus::Providers)
            };
            let Screen::Panels(a) = split(Rect::new(0, 0, 80, 24), zoom) else {
                panic!("80x24 is big enough");
            };
            let shown: Vec<Rect> = [
                Some(a.providers),
                a.latency,
                a.timeline,
                a.errors,
                a.cost,
                a.requests,
                a.reply,
                a.log,
            ]
            .into_iter()
            .flatten()
            .filter(|r| r.area() > 0)
            .collect();
            assert_eq!(shown, [Rect::new(0, 2, 80, 18)], "{panel:?}");
        }
    }

    #[test]
    fn too_small_below_the_minimum() {
        let s = split(Rect::new(0, 0, 59, 40), needs(2, Focus::Providers));
        assert_eq!(s, Screen::TooSmall);
        let s = split(Rect::new(0, 0, 200, 15), needs(2, Focus::Providers));
        assert_eq!(s, Screen::TooSmall);
    }

    #[test]
    fn many_providers_fall_back_to_compact() {
        let a = panels(160, 40, 12, Focus::Providers);
        assert!(
            a.reply
                .is_some_and(|r| r.height >= COMPACT_BOTTOM_MIN_HEIGHT)
        );
    }
}
