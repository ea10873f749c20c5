//! Key bindings as data: the defaults, the config's overrides (`[keys]`), duplicate detection, and
//! the rows the help popup and the status bar are drawn from.
//!
//! Every action has a [`Scope`], where its keys are read: the panels (live or in a replay), a live
//! session only, a replay only, or the confirmation popup. Two actions may share a key only when
//! they are never read at once: the replay's pause and the live freeze are both `space` by default,
//! and a replay has no freeze (its pause is its freeze). Keys that are not actions stay fixed: the
//! prompt's editing keys, and `Esc` / `Enter` to close or apply a popup.
//!
//! A leaf, so that the config checks its `[keys]` at load without importing the console; the
//! console reads it as `console::keys`.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// What a key can ask for. Prompt editing keys (Enter, Alt-Enter, …) belong to the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Quit,
    Help,
    FocusNext,
    FocusPrev,
    Prompt,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Search,
    Zoom,
    Trip,
    ForceClosed,
    Reset,
    PickFault,
    ToggleLoad,
    LoadFaster,
    LoadSlower,
    Freeze,
    FilterLog,
    Open,
    Copy,
    ReplayPause,
    ReplayStep,
    ReplayBack,
    ReplayForward,
    ReplayPrevious,
    ReplayNext,
    ReplayPreviousBreaker,
    ReplayNextBreaker,
    ReplaySlower,
    ReplayFaster,
    Confirm,
}

/// Where an action's keys are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The panels, live or in a replay: moving around, help, quit, the log's filter.
    Panels,
    /// The panels of a live session: what changes something (in a replay, which is read-only, these
    /// keys say so), and freeze (in a replay, pause is the freeze).
    Live,
    /// The panels of a replay: its player, read before the panels' keys.
    Replay,
    /// The confirmation popup, where any other key cancels.
    Confirm,
}

impl Scope {
    /// Whether some moment reads keys of both scopes, so that one key cannot serve both.
    pub fn overlaps(self, other: Scope) -> bool {
        use Scope::*;
        self == other
            || matches!(
                (self, other),
                (Panels, Live | Replay) | (Live | Replay, Panels)
            )
    }
}

impl Action {
    pub const ALL: [Action; 35] = [
        Action::Quit,
        Action::Help,
        Action::FocusNext,
        Action::FocusPrev,
        Action::Prompt,
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::Search,
        Action::Zoom,
        Action::Trip,
        Action::ForceClosed,
        Action::Reset,
        Action::PickFault,
        Action::ToggleLoad,
        Action::LoadFaster,
        Action::LoadSlower,
        Action::Freeze,
        Action::FilterLog,
        Action::Open,
        Action::Copy,
        Action::ReplayPause,
        Action::ReplayStep,
        Action::ReplayBack,
        Action::ReplayForward,
        Action::ReplayPrevious,
        Action::ReplayNext,
        Action::ReplayPreviousBreaker,
        Action::ReplayNextBreaker,
        Action::ReplaySlower,
        Action::ReplayFaster,
        Action::Confirm,
    ];

    pub fn scope(self) -> Scope {
        match self {
            Action::Quit
            | Action::Help
            | Action::FocusNext
            | Action::FocusPrev
            | Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom
            | Action::Search
            | Action::Zoom
            | Action::FilterLog
            | Action::Open
            | Action::Copy => Scope::Panels,
            Action::Prompt
            | Action::Trip
            | Action::ForceClosed
            | Action::Reset
            | Action::PickFault
            | Action::ToggleLoad
            | Action::LoadFaster
            | Action::LoadSlower
            | Action::Freeze => Scope::Live,
            Action::ReplayPause
            | Action::ReplayStep
            | Action::ReplayBack
            | Action::ReplayForward
            | Action::ReplayPrevious
            | Action::ReplayNext
            | Action::ReplayPreviousBreaker
            | Action::ReplayNextBreaker
            | Action::ReplaySlower
            | Action::ReplayFaster => Scope::Replay,
            Action::Confirm => Scope::Confirm,
        }
    }

    /// The action whose keys the help writes on the same row, after this one's (back and forward…).
    pub fn partner(self) -> Option<Action> {
        match self {
            Action::ReplayBack => Some(Action::ReplayForward),
            Action::Top => Some(Action::Bottom),
            Action::ReplayPrevious => Some(Action::ReplayNext),
            Action::ReplayPreviousBreaker => Some(Action::ReplayNextBreaker),
            Action::ReplaySlower => Some(Action::ReplayFaster),
            _ => None,
        }
    }

    /// Written on its partner's row (see [`Action::partner`]), not on its own.
    fn is_partner(self) -> bool {
        Action::ALL.iter().any(|a| a.partner() == Some(self))
    }

    /// The name used in the config's `[keys]` table.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::FocusNext => "focus_next",
            Action::FocusPrev => "focus_prev",
            Action::Prompt => "prompt",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::Search => "search",
            Action::Zoom => "zoom",
            Action::Trip => "trip",
            Action::ForceClosed => "force_closed",
            Action::Reset => "reset",
            Action::PickFault => "pick_fault",
            Action::ToggleLoad => "toggle_load",
            Action::LoadFaster => "load_faster",
            Action::LoadSlower => "load_slower",
            Action::Freeze => "freeze",
            Action::FilterLog => "filter_log",
            Action::Open => "open",
            Action::Copy => "copy",
            Action::ReplayPause => "replay_pause",
            Action::ReplayStep => "replay_step",
            Action::ReplayBack => "replay_back",
            Action::ReplayForward => "replay_forward",
            Action::ReplayPrevious => "replay_previous",
            Action::ReplayNext => "replay_next",
            Action::ReplayPreviousBreaker => "replay_previous_breaker",
            Action::ReplayNextBreaker => "replay_next_breaker",
            Action::ReplaySlower => "replay_slower",
            Action::ReplayFaster => "replay_faster",
            Action::Confirm => "confirm",
        }
    }

    /// What it does, for the help popup (for a pair, what the two do).
    pub fn about(self) -> &'static str {
        match self {
            Action::Quit => "quit (the terminal is restored)",
            Action::Help => "this help",
            Action::FocusNext => "next panel",
            Action::FocusPrev => "previous panel",
            Action::Prompt => "type a prompt (Enter sends, Alt-Enter new line, Esc leaves)",
            Action::Up => "select / scroll up",
            Action::Down => "select / scroll down",
            Action::PageUp => "scroll a page up",
            Action::PageDown => "scroll a page down",
            Action::Top | Action::Bottom => "top / bottom of a list; at the newest it follows",
            Action::Search => "search the event log (Enter keeps, Esc clears)",
            Action::Zoom => "zoom the focused panel (then Tab: every panel)",
            Action::Trip => "trip the selected breaker (force open; asks y)",
            Action::ForceClosed => "force the selected breaker closed (asks y)",
            Action::Reset => "reset the selected breaker to automatic",
            Action::PickFault => "pick a fault for the selected simulated provider",
            Action::ToggleLoad => "background load on / off",
            Action::LoadFaster => "more background load",
            Action::LoadSlower => "less background load",
            Action::Freeze => "freeze the display (data is still collected)",
            Action::FilterLog => "filter the event log by provider and type",
            Action::Open => "open the selected row's detail (every field, the whole error)",
            Action::Copy => "copy the detail to the clipboard (OSC 52, works over SSH)",
            Action::ReplayPause => "replay: pause / play",
            Action::ReplayStep => "replay: on to the next change on screen (and pause)",
            Action::ReplayBack | Action::ReplayForward => {
                "replay: 10 s back / forward (at max speed, and pause)"
            }
            Action::ReplayPrevious | Action::ReplayNext => {
                "replay: previous / next failover (and pause)"
            }
            Action::ReplayPreviousBreaker | Action::ReplayNextBreaker => {
                "replay: previous / next breaker change (and pause)"
            }
            Action::ReplaySlower | Action::ReplayFaster => {
                "replay: slower / faster (×0.5, ×1, ×2, ×10, max)"
            }
            Action::Confirm => "confirm a breaker action; any other key cancels",
        }
    }

    /// The short label in the status bar.
    pub fn label(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::FocusNext => "focus",
            Action::FocusPrev => "back",
            Action::Prompt => "prompt",
            Action::Up | Action::Down => "select",
            Action::PageUp | Action::PageDown => "page",
            Action::Top | Action::Bottom => "top/bottom",
            Action::Search => "search",
            Action::Zoom => "zoom",
            Action::Trip => "trip",
            Action::ForceClosed => "force closed",
            Action::Reset => "reset",
            Action::PickFault => "fault",
            Action::ToggleLoad => "load",
            Action::LoadFaster => "faster",
            Action::LoadSlower => "slower",
            Action::Freeze => "freeze",
            Action::FilterLog => "filter",
            Action::Open => "detail",
            Action::Copy => "copy",
            Action::ReplayPause => "pause",
            Action::ReplayStep => "step",
            Action::ReplayBack | Action::ReplayForward => "±10 s",
            Action::ReplayPrevious | Action::ReplayNext => "failover",
            Action::ReplayPreviousBreaker | Action::ReplayNextBreaker => "breaker",
            Action::ReplaySlower | Action::ReplayFaster => "speed",
            Action::Confirm => "confirm",
        }
    }
}

/// One key with its modifiers, as written in the config (`q`, `ctrl-c`, `shift-tab`, `up`, `f2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub code: KeyCodeName,
    pub ctrl: bool,
    pub alt: bool,
}

/// The keys bindings can name (a subset of crossterm's, with an order and a spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyCodeName {
    Char(char),
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Tab,
    BackTab,
    Enter,
    Esc,
    F(u8),
}

impl Key {
    pub fn matches(&self, event: &KeyEvent) -> bool {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        let alt = event.modifiers.contains(KeyModifiers::ALT);
        let code = match event.code {
            KeyCode::Char(c) => KeyCodeName::Char(c),
            KeyCode::Up => KeyCodeName::Up,
            KeyCode::Down => KeyCodeName::Down,
            KeyCode::Left => KeyCodeName::Left,
            KeyCode::Right => KeyCodeName::Right,
            KeyCode::PageUp => KeyCodeName::PageUp,
            KeyCode::PageDown => KeyCodeName::PageDown,
            KeyCode::Home => KeyCodeName::Home,
            KeyCode::End => KeyCodeName::End,
            KeyCode::Tab => KeyCodeName::Tab,
            KeyCode::BackTab => KeyCodeName::BackTab,
            KeyCode::Enter => KeyCodeName::Enter,
            KeyCode::Esc => KeyCodeName::Esc,
            KeyCode::F(n) => KeyCodeName::F(n),
            _ => return false,
        };
        code == self.code && ctrl == self.ctrl && alt == self.alt
    }
}

impl std::str::FromStr for Key {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = text;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                alt = true;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "up" => KeyCodeName::Up,
            "down" => KeyCodeName::Down,
            "left" => KeyCodeName::Left,
            "right" => KeyCodeName::Right,
            "pageup" => KeyCodeName::PageUp,
            "pagedown" => KeyCodeName::PageDown,
            "home" => KeyCodeName::Home,
            "end" => KeyCodeName::End,
            "tab" => KeyCodeName::Tab,
            "shift-tab" | "backtab" => KeyCodeName::BackTab,
            "enter" => KeyCodeName::Enter,
            "esc" => KeyCodeName::Esc,
            "space" => KeyCodeName::Char(' '),
            f if f.len() >= 2 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                KeyCodeName::F(f[1..].parse().unwrap_or(1))
            }
            c if c.chars().count() == 1 => KeyCodeName::Char(c.chars().next().unwrap_or(' ')),
            _ => {
                return Err(format!(
                    "unknown key `{text}`: use a character, `space`, `up`, `down`, `left`, `right`, `pageup`, `pagedown`, `home`, `end`, `tab`, `shift-tab`, `enter`, `esc` or `f1`…`f12`, optionally after `ctrl-` or `alt-`"
                ));
            }
        };
        Ok(Key { code, ctrl, alt })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl-")?;
        }
        if self.alt {
            f.write_str("Alt-")?;
        }
        match self.code {
            KeyCodeName::Char(' ') => f.write_str("space"),
            // Ctrl-letters are written as the convention has them: Ctrl-C.
            KeyCodeName::Char(c) if self.ctrl => write!(f, "{}", c.to_ascii_uppercase()),
            KeyCodeName::Char(c) => write!(f, "{c}"),
            KeyCodeName::Up => f.write_str("↑"),
            KeyCodeName::Down => f.write_str("↓"),
            KeyCodeName::Left => f.write_str("←"),
            KeyCodeName::Right => f.write_str("→"),
            KeyCodeName::PageUp => f.write_str("PgUp"),
            KeyCodeName::PageDown => f.write_str("PgDn"),
            KeyCodeName::Home => f.write_str("Home"),
            KeyCodeName::End => f.write_str("End"),
            KeyCodeName::Tab => f.write_str("Tab"),
            KeyCodeName::BackTab => f.write_str("Shift-Tab"),
            KeyCodeName::Enter => f.write_str("Enter"),
            KeyCodeName::Esc => f.write_str("Esc"),
            KeyCodeName::F(n) => write!(f, "F{n}"),
        }
    }
}

/// The default bindings (the issue's list).
const DEFAULTS: &[(Action, &[&str])] = &[
    (Action::Quit, &["q", "ctrl-c"]),
    (Action::Help, &["?"]),
    (Action::FocusNext, &["tab"]),
    (Action::FocusPrev, &["shift-tab"]),
    (Action::Prompt, &["i"]),
    (Action::Up, &["up", "k"]),
    (Action::Down, &["down", "j"]),
    (Action::PageUp, &["pageup"]),
    (Action::PageDown, &["pagedown"]),
    (Action::Top, &["g", "home"]),
    (Action::Bottom, &["G", "end"]),
    (Action::Search, &["/"]),
    (Action::Zoom, &["z"]),
    (Action::Trip, &["o"]),
    (Action::ForceClosed, &["c"]),
    (Action::Reset, &["r"]),
    (Action::PickFault, &["f"]),
    (Action::ToggleLoad, &["l"]),
    (Action::LoadFaster, &["+"]),
    (Action::LoadSlower, &["-"]),
    (Action::Freeze, &["space"]),
    (Action::FilterLog, &["e"]),
    (Action::Open, &["enter"]),
    (Action::Copy, &["y"]),
    (Action::ReplayPause, &["space"]),
    (Action::ReplayStep, &["."]),
    (Action::ReplayBack, &["left"]),
    (Action::ReplayForward, &["right"]),
    (Action::ReplayPrevious, &["["]),
    (Action::ReplayNext, &["]"]),
    (Action::ReplayPreviousBreaker, &["{"]),
    (Action::ReplayNextBreaker, &["}"]),
    (Action::ReplaySlower, &["<"]),
    (Action::ReplayFaster, &[">"]),
    (Action::Confirm, &["y"]),
];

/// The keys in force, each bound to one action.
#[derive(Debug, Clone, PartialEq)]
pub struct Bindings {
    by_action: BTreeMap<Action, Vec<Key>>,
}

impl Default for Bindings {
    fn default() -> Self {
        let by_action = DEFAULTS
            .iter()
            .map(|(action, keys)| {
                (
                    *action,
                    keys.iter().filter_map(|k| k.parse().ok()).collect(),
                )
            })
            .collect();
        Bindings { by_action }
    }
}

impl Bindings {
    /// The defaults with the config's `[keys]` overrides (`trip = "o"` or `trip = ["o", "T"]`),
    /// refusing a key bound to two actions that are read at once ([`Scope::overlaps`]).
    pub fn with_overrides(overrides: &BTreeMap<String, KeyList>) -> Result<Bindings, String> {
        let mut bindings = Bindings::default();
        for (name, keys) in overrides {
            let action = Action::ALL
                .iter()
                .copied()
                .find(|a| a.name() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                    format!(
                        "keys.{name}: no such action (there are: {})",
                        names.join(", ")
                    )
                })?;
            let parsed = keys
                .0
                .iter()
                .map(|k| k.parse::<Key>().map_err(|e| format!("keys.{name}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            bindings.by_action.insert(action, parsed);
        }
        let mut seen: Vec<(Key, Action)> = Vec::new();
        for (action, keys) in &bindings.by_action {
            for key in keys {
                let clash = seen
                    .iter()
                    .find(|(k, other)| k == key && other.scope().overlaps(action.scope()));
                if let Some((_, other)) = clash {
                    return Err(format!(
                        "keys: `{key}` is bound to both `{}` and `{}`: give one of them another key",
                        other.name(),
                        action.name()
                    ));
                }
                seen.push((*key, *action));
            }
        }
        Ok(bindings)
    }

    /// The panels' action a key press asks for (scope [`Scope::Panels`] or [`Scope::Live`]).
    pub fn action(&self, event: &KeyEvent) -> Option<Action> {
        self.action_in(event, |scope| matches!(scope, Scope::Panels | Scope::Live))
    }

    /// The action of `scope` a key press asks for.
    pub fn action_of(&self, scope: Scope, event: &KeyEvent) -> Option<Action> {
        self.action_in(event, |s| s == scope)
    }

    fn action_in(&self, event: &KeyEvent, scope: impl Fn(Scope) -> bool) -> Option<Action> {
        self.by_action
            .iter()
            .filter(|(action, _)| scope(action.scope()))
            .find(|(_, keys)| keys.iter().any(|k| k.matches(event)))
            .map(|(action, _)| *action)
    }

    pub fn keys(&self, action: Action) -> &[Key] {
        self.by_action.get(&action).map_or(&[], Vec::as_slice)
    }

    /// The keys of an action as one label: `q/Ctrl-C`, or `i or /` when a key is itself a slash.
    pub fn describe(&self, action: Action) -> String {
        let names: Vec<String> = self.keys(action).iter().map(ToString::to_string).collect();
        let separator = if names.iter().any(|n| n.contains('/')) {
            " or "
        } else {
            "/"
        };
        names.join(separator)
    }

    /// The keys of an action and of its partner, if it has one: `← →`.
    pub fn describe_pair(&self, action: Action) -> String {
        match action.partner() {
            Some(partner) => format!("{} {}", self.describe(action), self.describe(partner)),
            None => self.describe(action),
        }
    }

    /// (keys, what it does) for every action of these scopes, in the help popup's order; a pair
    /// of actions (back and forward) is one row.
    pub fn help_rows(&self, scopes: &[Scope]) -> Vec<(String, &'static str)> {
        Action::ALL
            .iter()
            .filter(|a| scopes.contains(&a.scope()) && !a.is_partner())
            .map(|a| (self.describe_pair(*a), a.about()))
            .collect()
    }
}

/// One key or several, as the config writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyList(pub Vec<String>);

impl<'de> Deserialize<'de> for KeyList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(k) => KeyList(vec![k]),
            OneOrMany::Many(ks) => KeyList(ks),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyEventKind;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press,
            state: ratatui::crossterm::event::KeyEventState::NONE,
        }
    }

    #[test]
    fn defaults_cover_the_issues_keys() {
        let b = Bindings::default();
        assert_eq!(
            b.action(&press(KeyCode::Char('q'), KeyModifiers::NONE)),
            Some(Action::Quit)
        );
        assert_eq!(
            b.action(&press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            b.action(&press(KeyCode::Char('c'), KeyModifiers::NONE)),
            Some(Action::ForceClosed)
        );
        // Terminals report Shift-Tab as BackTab, with or without the SHIFT flag; shift is never required.
        assert_eq!(
            b.action(&press(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::FocusPrev)
        );
        assert_eq!(
            b.action(&press(KeyCode::BackTab, KeyModifiers::NONE)),
            Some(Action::FocusPrev)
        );
        assert_eq!(
            b.action(&press(KeyCode::Char(' '), KeyModifiers::NONE)),
            Some(Action::Freeze)
        );
        assert_eq!(b.describe(Action::Quit), "q/Ctrl-C");
        assert_eq!(b.describe(Action::Prompt), "i");
        assert_eq!(b.describe(Action::Search), "/");
        assert_eq!(b.describe_pair(Action::Top), "g/Home G/End");
        let scopes = [Scope::Panels, Scope::Live, Scope::Replay, Scope::Confirm];
        let rows = b.help_rows(&scopes);
        let pairs = Action::ALL.iter().filter(|a| a.partner().is_some()).count();
        assert_eq!(rows.len(), Action::ALL.len() - pairs);
        assert!(rows.iter().all(|(keys, _)| !keys.is_empty()));
        assert_eq!(b.help_rows(&[Scope::Panels, Scope::Live]).len(), 23);
        assert_eq!(
            b.action(&press(KeyCode::Enter, KeyModifiers::NONE)),
            Some(Action::Open)
        );
        assert_eq!(b.describe_pair(Action::ReplayBack), "← →");
        assert_eq!(b.describe_pair(Action::ReplaySlower), "< >");
    }

    /// Space is the live freeze and the replay's pause: never read at once, so not a clash; each
    /// scope reads its own. A key shared by a replay action and a panels' action is refused.
    #[test]
    fn scopes_let_a_key_serve_actions_never_read_at_once() {
        let b = Bindings::default();
        let space = press(KeyCode::Char(' '), KeyModifiers::NONE);
        assert_eq!(b.action(&space), Some(Action::Freeze));
        assert_eq!(
            b.action_of(Scope::Replay, &space),
            Some(Action::ReplayPause)
        );
        // `y` copies a detail in the panels and confirms in the confirmation popup.
        let y = press(KeyCode::Char('y'), KeyModifiers::NONE);
        assert_eq!(b.action(&y), Some(Action::Copy));
        assert_eq!(b.action_of(Scope::Confirm, &y), Some(Action::Confirm));
        assert_eq!(
            b.action_of(Scope::Replay, &press(KeyCode::Left, KeyModifiers::NONE)),
            Some(Action::ReplayBack)
        );

        let refused = |action: &str, key: &str| {
            let mut o = BTreeMap::new();
            o.insert(action.to_string(), KeyList(vec![key.into()]));
            Bindings::with_overrides(&o).err()
        };
        // A live action and a replay one may share a key; a confirm key may be anything.
        assert_eq!(refused("replay_step", "o"), None);
        assert_eq!(refused("confirm", "q"), None);
        // The panels' keys are read in a replay too.
        let err = refused("replay_step", "?").unwrap();
        assert!(
            err.contains("`?` is bound to both `help` and `replay_step`"),
            "{err}"
        );
        let err = refused("freeze", "e").unwrap();
        assert!(err.contains("`e` is bound to both"), "{err}");
        let err = refused("replay_faster", "<").unwrap();
        assert!(err.contains("`replay_slower` and `replay_faster`"), "{err}");
    }

    #[test]
    fn overrides_replace_and_duplicates_are_refused() {
        let mut o = BTreeMap::new();
        o.insert("trip".to_string(), KeyList(vec!["T".into()]));
        let b = Bindings::with_overrides(&o).unwrap();
        assert_eq!(
            b.action(&press(KeyCode::Char('T'), KeyModifiers::NONE)),
            Some(Action::Trip)
        );
        assert_eq!(
            b.action(&press(KeyCode::Char('o'), KeyModifiers::NONE)),
            None
        );

        let mut o = BTreeMap::new();
        o.insert("trip".to_string(), KeyList(vec!["q".into()]));
        let err = Bindings::with_overrides(&o).unwrap_err();
        assert!(err.contains("`q` is bound to both"), "{err}");

        let mut o = BTreeMap::new();
        o.insert("explode".to_string(), KeyList(vec!["x".into()]));
        assert!(
            Bindings::with_overrides(&o)
                .unwrap_err()
                .contains("no such action")
        );
        let mut o = BTreeMap::new();
        o.insert("trip".to_string(), KeyList(vec!["hyper-x".into()]));
        assert!(
            Bindings::with_overrides(&o)
                .unwrap_err()
                .contains("unknown key")
        );
    }
}
