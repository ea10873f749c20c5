//! The console's loop: one `tokio::select!` over the terminal's events, the event bus, a tick and a
//! render interval. It draws only when something changed, at most 60 times a second, folding bursts
//! of events into one frame; it never awaits I/O of its own (the engine and the network run in other
//! tasks, reached through the controller).
//!
//! The same loop serves a local session (the engine in this process, [`Controller`]), a replay
//! (read-only) and a console attached to a remote gateway (`attach`'s control, whose results and
//! stream state arrive as [`Note`]s).

use chrono::Utc;
use futures::StreamExt;
use ratatui::crossterm::event::{
    Event as TermEvent, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::{DefaultTerminal, Frame};
use ratatui_textarea::TextArea;
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::sync::mpsc;

use super::clipboard;
use super::dashboard::{Dashboard, LogFilter, MemberLink};
use super::keys::{Action, Bindings, Scope};
use super::panels::{self, Drawn, Facts, View};
use super::replay::{Landed, MarkKind, Player};
use super::ui::Link;
use super::ui::{DetailTarget, FAULT_CHOICES, Focus, Overlay, Panel, Ui, fault_choice_in_force};
use crate::event::{self, Event, EventKind, Received, Source};
use crate::session::{Command, Controller, LoadChange, LoadView};

/// At most 60 frames a second.
const FRAME: Duration = Duration::from_millis(16);
/// Clocks and countdowns move on this tick even without events.
const TICK: Duration = Duration::from_millis(500);
/// Events folded before the loop looks at the keyboard again (a burst never starves the keys).
const BURST: usize = 4096;
/// A status-bar message goes after this long.
const FLASH_FOR: Duration = Duration::from_secs(6);
/// Rows a page key moves where the panel's height is not known.
const PAGE: i64 = 10;

/// What the operator's commands reach: the [`Controller`] in this process, or a gateway elsewhere
/// (`attach`, whose results arrive later as [`Note`]s).
pub trait Control: Send {
    /// Carry out `command`, or send it on; a line for the status bar.
    fn send(&self, command: Command) -> String;
    /// The background load as it now is, where there is one.
    fn load(&self) -> Option<LoadView> {
        None
    }
    /// Commands go to a remote gateway.
    fn attached(&self) -> bool {
        false
    }
    /// The providers can take faults (they are simulated).
    fn faults(&self) -> bool {
        false
    }
}

impl Control for Controller {
    fn send(&self, command: Command) -> String {
        self.apply(command).unwrap_or_else(|refused| refused)
    }

    fn load(&self) -> Option<LoadView> {
        Controller::load(self)
    }

    fn faults(&self) -> bool {
        self.simulated()
    }
}

/// The session's controller shared with the gateway's `/control` (`serve`).
impl Control for Arc<Controller> {
    fn send(&self, command: Command) -> String {
        self.as_ref().send(command)
    }

    fn load(&self) -> Option<LoadView> {
        Controller::load(self)
    }

    fn faults(&self) -> bool {
        self.simulated()
    }
}

/// What the console hears from the gateway besides events: results of commands, lost events,
/// the stream's state. Folded by [`App::on_note`]; an attached console gets them from `attach`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A line for the status bar.
    Flash(String),
    /// The gateway dropped this many events for us (its `lagged` frame).
    Missed(u64),
    /// The event stream connected or dropped.
    Link(Link),
    /// A fleet member's event stream (`attach URL URL …`, by its place in the fleet) connected
    /// or dropped.
    Member { index: usize, link: MemberLink },
}

/// The console's state and what it talks to.
pub struct App {
    /// Folded from every event, frozen or not.
    pub live: Dashboard,
    /// What the screen shows while frozen.
    frozen: Option<Box<Dashboard>>,
    pub ui: Ui,
    pub keys: Bindings,
    pub prompt: TextArea<'static>,
    /// Reaches the engine or the gateway; `None` in a replay, which is read-only.
    control: Option<Box<dyn Control>>,
    /// Results of remote commands and the remote stream's state (attached only).
    notes: Option<mpsc::UnboundedReceiver<Note>>,
    /// Plays a recording instead of the bus.
    player: Option<Player>,
    /// The prompt just sent, until its request starts: the reply panel then shows that request.
    awaiting_prompt: Option<String>,
    /// The status-bar message on screen and since when, so that it goes after `FLASH_FOR`.
    flash_since: Option<(String, tokio::time::Instant)>,
    /// What the last frame had room for (how far the keys can move).
    drawn: Cell<Drawn>,
    quit: bool,
    /// An OSC 52 copy (`y`) waiting to be written to the terminal.
    clipboard: Option<String>,
    /// The screen's size at the last frame, to know how far a detail scrolls and which panels show.
    screen: Cell<Rect>,
}

impl App {
    /// A console on a local session: commands go to `control` (the session's controller).
    pub fn new(ui: Ui, keys: Bindings, control: impl Control + 'static) -> Self {
        Self::with_control(ui, keys, Box::new(control), None)
    }

    /// A console attached to a remote gateway (`breakerbox attach`): commands go to `control`,
    /// whose results, like the event stream's state, arrive on `notes`. `ui.attached` names the
    /// gateway in the header (see `attach::Attachment::into_app`).
    pub fn attached(
        ui: Ui,
        keys: Bindings,
        control: impl Control + 'static,
        notes: mpsc::UnboundedReceiver<Note>,
    ) -> Self {
        Self::with_control(ui, keys, Box::new(control), Some(notes))
    }

    fn with_control(
        ui: Ui,
        keys: Bindings,
        control: Box<dyn Control>,
        notes: Option<mpsc::UnboundedReceiver<Note>>,
    ) -> Self {
        let mut app = App {
            live: Dashboard::new(),
            frozen: None,
            ui,
            keys,
            prompt: TextArea::default(),
            control: Some(control),
            notes,
            player: None,
            awaiting_prompt: None,
            flash_since: None,
            drawn: Cell::default(),
            quit: false,
            clipboard: None,
            screen: Cell::new(Rect::default()),
        };
        app.style_prompt();
        app
    }

    fn is_attached(&self) -> bool {
        self.control.as_ref().is_some_and(|c| c.attached())
    }

    /// A console playing a recording. Its player never waits for the disk.
    pub fn replay(ui: Ui, keys: Bindings, mut player: Player) -> Self {
        player.never_wait();
        App {
            live: Dashboard::new(),
            frozen: None,
            ui,
            keys,
            prompt: TextArea::default(),
            control: None,
            notes: None,
            player: Some(player),
            awaiting_prompt: None,
            flash_since: None,
            drawn: Cell::default(),
            quit: false,
            clipboard: None,
            screen: Cell::new(Rect::default()),
        }
    }

    /// The prompt's cursor shows only while it has focus, and without colour under NO_COLOR
    /// (the textarea's own defaults are grey and light blue).
    fn style_prompt(&mut self) {
        let focused = self.ui.focus == Focus::Prompt;
        let reversed = Style::default().add_modifier(Modifier::REVERSED);
        self.prompt
            .set_cursor_style(if focused { reversed } else { Style::default() });
        self.prompt.set_cursor_line_style(Style::default());
        self.prompt.set_selection_style(reversed);
        // Dim, never dark grey: colour 8 is the background of many dark themes.
        self.prompt
            .set_placeholder_style(Style::default().add_modifier(Modifier::DIM));
    }

    /// Run until the operator quits, the terminal's input ends, or one of `stop`'s signals comes.
    pub async fn run(
        &mut self,
        terminal: &mut DefaultTerminal,
        mut bus: broadcast::Receiver<Arc<Event>>,
        stop: &mut StopSignals,
    ) -> std::io::Result<()> {
        let mut input = EventStream::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut frame = tokio::time::interval(FRAME);
        frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut replay_frame = tokio::time::interval(FRAME);
        replay_frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut replay_clock = tokio::time::Instant::now();
        let mut dirty = true;
        let mut bus_open = true;
        // Out of `self` while the loop runs, so its branch does not hold `self` borrowed.
        let mut notes = self.notes.take();
        while !self.quit {
            tokio::select! {
                input_event = input.next() => match input_event {
                    Some(Ok(event)) => {
                        self.on_terminal(&event);
                        self.write_clipboard(terminal);
                        dirty = true;
                    }
                    Some(Err(e)) => return Err(e),
                    None => break,
                },
                // A closed bus would answer at once forever: stop listening to it.
                received = event::next(&mut bus), if bus_open => {
                    match received {
                        Some(received) => self.receive(received, &mut bus),
                        None => bus_open = false,
                    }
                    dirty = true;
                }
                note = next_note(&mut notes), if notes.is_some() => {
                    match note {
                        Some(note) => self.on_note(note),
                        None => notes = None,
                    }
                    dirty = true;
                }
                // A replay keeps its own, recorded time: the wall clock never reaches it.
                _ = tick.tick() => {
                    if self.player.is_none() {
                        self.live.tick(Utc::now());
                        dirty |= self.frozen.is_none();
                    }
                    dirty |= self.expire_flash(tokio::time::Instant::now());
                }
                _ = replay_frame.tick(), if self.player.is_some() => {
                    let elapsed = replay_clock.elapsed();
                    replay_clock = tokio::time::Instant::now();
                    dirty |= self.advance_replay(elapsed);
                }
                _ = frame.tick(), if dirty => {
                    terminal.draw(|f| self.draw(f))?;
                    dirty = false;
                }
                () = stop.recv() => break,
            }
        }
        self.notes = notes;
        Ok(())
    }

    /// Fold one event from the bus and whatever else is already waiting, up to a burst.
    fn receive(&mut self, first: Received, bus: &mut broadcast::Receiver<Arc<Event>>) {
        let mut next = Some(first);
        for _ in 0..BURST {
            let Some(received) = next else {
                return;
            };
            self.on_event(received);
            next = event::try_next(bus);
        }
    }

    /// Fold one item from the event channel. An attached console starts afresh at each
    /// `session_started`: the gateway sends one first on every (re)connection, followed by its
    /// snapshot and recent events, so nothing is counted twice across a reconnect.
    pub fn on_event(&mut self, received: Received) {
        match received {
            Received::Event(event) => {
                // A fleet's members never start it afresh: each member's own view does (see
                // `dashboard/fleet.rs`), and the fleet's reader sends each event once.
                if self.is_attached()
                    && self.live.gateways.is_none()
                    && self.live.events_applied > 0
                    && matches!(event.kind, EventKind::SessionStarted { .. })
                {
                    self.restart_dashboard();
                }
                self.follow_sent_prompt(&event.kind);
                self.live.apply(&event);
            }
            Received::Lagged(n) => self.live.missed(n),
        }
    }

    /// Wait for the next event or note and fold it, without a terminal (tests, headless drivers
    /// of an attached console). False once the event channel has closed.
    pub async fn fold_next(&mut self, bus: &mut broadcast::Receiver<Arc<Event>>) -> bool {
        let mut notes = self.notes.take();
        // Events first: a note sent after them (the stream dropped) is folded after them.
        let open = tokio::select! {
            biased;
            received = event::next(bus) => match received {
                Some(received) => {
                    self.on_event(received);
                    true
                }
                None => false,
            },
            Some(note) = next_note(&mut notes) => {
                self.on_note(note);
                true
            }
        };
        self.notes = notes;
        open
    }

    /// The request of the prompt just sent, once it starts, is the one the reply panel shows.
    fn follow_sent_prompt(&mut self, kind: &EventKind) {
        let Some(sent) = &self.awaiting_prompt else {
            return;
        };
        if let EventKind::RequestStarted {
            request_id,
            source: Source::Prompt,
            prompt,
            ..
        } = kind
            // The event holds the start of the prompt, or nothing when content is redacted.
            && prompt.as_deref().is_none_or(|p| sent.starts_with(p))
        {
            self.ui.selected_request = Some(request_id.clone());
            self.ui.reply_scroll = 0;
            self.awaiting_prompt = None;
        }
    }

    /// Let a status-bar message go once it has been up for `FLASH_FOR`; true if it went.
    pub fn expire_flash(&mut self, now: tokio::time::Instant) -> bool {
        match (&self.ui.flash, &self.flash_since) {
            (None, _) => {
                self.flash_since = None;
                false
            }
            (Some(text), Some((seen, since))) if text == seen => {
                if now.duration_since(*since) >= FLASH_FOR {
                    self.ui.flash = None;
                    self.flash_since = None;
                    return true;
                }
                false
            }
            (Some(text), _) => {
                self.flash_since = Some((text.clone(), now));
                false
            }
        }
    }

    /// A fresh fold for a new stream of the same gateway; what the screen is set to look at stays.
    fn restart_dashboard(&mut self) {
        let recording = self.live.recording.take();
        self.live = Dashboard::new();
        self.live.recording = recording;
        self.ui.selected_request = None;
    }

    /// Fold one note from an attached console's gateway: a command's result, lost events, the
    /// stream's state.
    pub fn on_note(&mut self, note: Note) {
        match note {
            Note::Flash(text) => self.ui.flash = Some(text),
            Note::Missed(n) => self.live.missed(n),
            Note::Link(link) => {
                if let Some(attached) = &mut self.ui.attached {
                    attached.link = link;
                }
                // A gone gateway moves no countdown: the clocks stop, "as of" when it went.
                for dash in std::iter::once(&mut self.live).chain(self.frozen.as_deref_mut()) {
                    match link {
                        Link::Disconnected { .. } => dash.hold_clock(),
                        Link::Connected => dash.release_clock(),
                    }
                }
            }
            Note::Member { index, link } => {
                for dash in std::iter::once(&mut self.live).chain(self.frozen.as_deref_mut()) {
                    let Some(fleet) = dash.gateways.as_deref_mut() else {
                        continue;
                    };
                    fleet.set_link(index, link.clone());
                    // The whole screen stops only when every member has gone.
                    let none_up = fleet.up() == 0;
                    dash.sync_fleet();
                    if none_up && matches!(link, MemberLink::Down { .. }) {
                        dash.hold_clock();
                    } else {
                        dash.release_clock();
                    }
                }
            }
        }
    }

    /// Let a replay's clock move on by `elapsed`; true if the screen may have changed. The loop
    /// calls it every frame; a test drives a replay with it.
    pub fn advance_replay(&mut self, elapsed: Duration) -> bool {
        let Some(player) = &mut self.player else {
            return false;
        };
        let changed = player.advance(&mut self.live, elapsed);
        if let Some(why) = player.take_error() {
            self.ui.flash = Some(why);
        }
        changed
    }

    /// Write a waiting copy (`y`) to the terminal, which puts it on the clipboard.
    fn write_clipboard(&mut self, terminal: &mut DefaultTerminal) {
        use std::io::Write;
        let Some(sequence) = self.clipboard.take() else {
            return;
        };
        let out = terminal.backend_mut();
        if let Err(e) = out
            .write_all(sequence.as_bytes())
            .and_then(|()| out.flush())
        {
            self.ui.flash = Some(format!("cannot copy: the terminal refused ({e})"));
        }
    }

    /// The OSC 52 sequence of the last copy (`y`), taken: what the loop writes to the terminal.
    pub fn take_clipboard(&mut self) -> Option<String> {
        self.clipboard.take()
    }

    pub fn draw(&self, frame: &mut Frame) {
        self.screen.set(frame.area());
        let view = View {
            dash: self.shown(),
            ui: &self.ui,
            keys: &self.keys,
            prompt: &self.prompt,
            facts: self.facts(),
        };
        self.drawn.set(panels::draw(frame, &view));
    }

    /// The dashboard on screen: the frozen snapshot while frozen, so that the keys move through
    /// what is shown.
    fn shown(&self) -> &Dashboard {
        self.frozen.as_deref().unwrap_or(&self.live)
    }

    /// What the screen shows that others own, asked of them now.
    pub fn facts(&self) -> Facts {
        Facts {
            frozen: self.is_frozen(),
            load: self.load(),
            replay: self.player.as_ref().map(Player::view),
            faults: self.control.as_ref().is_some_and(|c| c.faults()),
        }
    }

    /// The display is frozen (the dashboard still folds every event).
    pub fn is_frozen(&self) -> bool {
        self.frozen.is_some()
    }

    /// The background load, as the control has it now.
    pub fn load(&self) -> Option<LoadView> {
        self.control.as_ref().and_then(|c| c.load())
    }

    pub fn should_quit(&self) -> bool {
        self.quit
    }

    pub fn on_terminal(&mut self, event: &TermEvent) {
        match event {
            TermEvent::Key(key) if key.kind != KeyEventKind::Release => self.on_key(key),
            TermEvent::Mouse(mouse) => match mouse.kind {
                MouseEventKind::ScrollUp => self.scroll(-3),
                MouseEventKind::ScrollDown => self.scroll(3),
                _ => {}
            },
            TermEvent::Paste(text) if self.ui.focus == Focus::Prompt => {
                self.prompt.insert_str(text);
            }
            _ => {}
        }
    }

    pub fn on_key(&mut self, key: &KeyEvent) {
        self.handle_key(key);
        self.style_prompt();
    }

    fn handle_key(&mut self, key: &KeyEvent) {
        // Ctrl-C clears a prompt being typed, as a shell does; otherwise it quits from anywhere,
        // popups included (so twice always quits).
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            if self.ui.focus == Focus::Prompt && !self.prompt.is_empty() {
                self.prompt = TextArea::default();
                self.ui.flash = Some("prompt cleared (Ctrl-C again quits)".to_string());
            } else if self.ui.overlay == Some(Overlay::ConfirmQuit) {
                self.quit = true;
            } else {
                self.ask_to_quit();
            }
            return;
        }
        if let Some(overlay) = self.ui.overlay.clone() {
            self.on_overlay_key(overlay, key);
            return;
        }
        if let Some(search) = self.ui.search.take() {
            self.on_search_key(search, key);
            return;
        }
        if self.player.is_some()
            && let Some(action) = self.keys.action_of(Scope::Replay, key)
        {
            self.on_replay_action(action);
            return;
        }
        if self.ui.focus == Focus::Prompt {
            self.on_prompt_key(key);
            return;
        }
        if key.code == KeyCode::Esc {
            self.back_to_following();
        } else if let Some(action) = self.keys.action(key) {
            self.on_action(action);
            // A replay has no prompt (its bar is there): focus passes over it.
            if self.player.is_some() && self.ui.focus == Focus::Prompt {
                let by = if action == Action::FocusPrev { -1 } else { 1 };
                self.ui.focus = cycle(self.ui.focus, by);
            }
        }
    }

    /// Quit; a gateway's console (`serve`), which agents' traffic goes through, asks first.
    fn ask_to_quit(&mut self) {
        if self.ui.serving.is_some() {
            self.ui.overlay = Some(Overlay::ConfirmQuit);
        } else {
            self.quit = true;
        }
    }

    /// Esc in the panels: the focused list follows the newest again; when it already does, a
    /// zoomed panel goes back to its place.
    fn back_to_following(&mut self) {
        let following = match self.ui.focus {
            Focus::Requests => self.ui.selected_request.take().is_none(),
            Focus::Log => self.ui.log_at.take().is_none(),
            Focus::Reply => std::mem::take(&mut self.ui.reply_scroll) == 0,
            Focus::Providers | Focus::Errors | Focus::Prompt => true,
        };
        if following {
            self.ui.zoomed = None;
        }
    }

    /// A key while typing a search after `/`: the log is filtered as it is typed; Enter keeps the
    /// search, Esc drops it.
    fn on_search_key(&mut self, mut search: String, key: &KeyEvent) {
        match key.code {
            KeyCode::Enter => {
                self.ui.flash = Some(match &self.ui.log_filter.text {
                    Some(text) => format!("the log shows lines with “{text}”; / Esc clears"),
                    None => "no search".to_string(),
                });
                return;
            }
            KeyCode::Esc => search.clear(),
            KeyCode::Backspace => {
                search.pop();
            }
            KeyCode::Char(c)
                if !c.is_control() && !key.modifiers.contains(KeyModifiers::CONTROL) =>
            {
                search.push(c);
            }
            _ => {}
        }
        self.ui.log_filter.text = Some(search.clone()).filter(|t| !t.is_empty());
        self.ui.log_at = None;
        if key.code != KeyCode::Esc {
            self.ui.search = Some(search);
        }
    }

    /// A replay's own keys: its player's. A jump to a failover picks its request (the reply panel
    /// shows its attempts), one to a breaker change its provider.
    fn on_replay_action(&mut self, action: Action) {
        let Some(player) = &mut self.player else {
            return;
        };
        let dash = &mut self.live;
        self.ui.flash = None;
        let result = match action {
            Action::ReplayPause => {
                player.toggle_pause();
                Ok(())
            }
            Action::ReplayStep => {
                let reply = panels::selected_request(dash, &self.ui).map(|r| r.id.clone());
                player.step(dash, reply);
                Ok(())
            }
            Action::ReplayBack => player.jump(dash, -10),
            Action::ReplayForward => player.jump(dash, 10),
            Action::ReplayPrevious
            | Action::ReplayNext
            | Action::ReplayPreviousBreaker
            | Action::ReplayNextBreaker => {
                let kind = match action {
                    Action::ReplayPrevious | Action::ReplayNext => MarkKind::Failover,
                    _ => MarkKind::BreakerChange,
                };
                let forward = matches!(action, Action::ReplayNext | Action::ReplayNextBreaker);
                player.jump_to_mark(dash, kind, forward).map(|landed| {
                    match &landed {
                        Landed::Failover(m) => {
                            self.ui.selected_request = Some(m.request_id.clone());
                            self.ui.reply_scroll = 0;
                        }
                        Landed::Breaker(m) => {
                            let row = dash.providers.iter().position(|p| p.name == m.provider);
                            self.ui.selected_provider = row.unwrap_or(self.ui.selected_provider);
                        }
                        Landed::Nothing { .. } | Landed::NotYet => {}
                    }
                    self.ui.flash = Some(landed.describe());
                })
            }
            Action::ReplaySlower | Action::ReplayFaster => {
                player.change_speed(action == Action::ReplayFaster);
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.ui.flash = Some(e.to_string());
        }
    }

    fn on_prompt_key(&mut self, key: &KeyEvent) {
        match key.code {
            KeyCode::Esc => self.ui.focus = Focus::Reply,
            KeyCode::Enter if key.modifiers.contains(KeyModifiers::ALT) => {
                self.prompt.insert_newline();
            }
            KeyCode::Enter => {
                let text = self.prompt.lines().join("\n");
                if text.trim().is_empty() {
                    self.ui.flash = Some("type a prompt first".to_string());
                } else {
                    let flash = match &self.control {
                        Some(control) => control.send(Command::Prompt {
                            text: text.trim().to_string(),
                        }),
                        None => "a replay is read-only".to_string(),
                    };
                    self.prompt = TextArea::default();
                    // Show the reply as it streams: the request of this prompt once it starts
                    // (not the background's), and leave the prompt, so that the next key is a
                    // command again (not the next prompt).
                    self.awaiting_prompt = Some(text.trim().to_string());
                    self.ui.reply_scroll = 0;
                    self.ui.focus = Focus::Reply;
                    self.ui.flash = Some(flash);
                }
            }
            _ => {
                self.prompt.input(*key);
            }
        }
    }

    fn on_overlay_key(&mut self, overlay: Overlay, key: &KeyEvent) {
        match overlay {
            Overlay::Help { scroll } => self.on_help_key(scroll, key),
            Overlay::ConfirmQuit => {
                self.ui.overlay = None;
                if self.keys.action_of(Scope::Confirm, key) == Some(Action::Confirm) {
                    self.quit = true;
                } else {
                    self.ui.flash = Some("still serving".to_string());
                }
            }
            Overlay::Confirm { command } => {
                self.ui.overlay = None;
                let confirmed = self.keys.action_of(Scope::Confirm, key) == Some(Action::Confirm);
                self.ui.flash = Some(match &self.control {
                    Some(control) if confirmed => control.send(command),
                    _ => "cancelled".to_string(),
                });
            }
            Overlay::FaultPicker { provider, selected } => {
                self.on_fault_picker_key(provider, selected, key);
            }
            Overlay::LogFilter { selected } => self.on_log_filter_key(selected, key),
            Overlay::Detail { target, scroll } => self.on_detail_key(target, scroll, key),
        }
    }

    /// The help scrolls with the moving keys, up to what the last frame said it could.
    fn on_help_key(&mut self, scroll: usize, key: &KeyEvent) {
        let action = self.keys.action(key);
        if matches!(key.code, KeyCode::Esc | KeyCode::Enter)
            || matches!(action, Some(Action::Help | Action::Quit))
        {
            self.ui.overlay = None;
            return;
        }
        let most = self.drawn.get().help_scroll as i64;
        let by = match action {
            Some(Action::Up) => -1,
            Some(Action::Down) => 1,
            Some(Action::PageUp) => -PAGE,
            Some(Action::PageDown) => PAGE,
            Some(Action::Top) => -most,
            Some(Action::Bottom) => most,
            _ => 0,
        };
        let scroll = (scroll as i64 + by).clamp(0, most) as usize;
        self.ui.overlay = Some(Overlay::Help { scroll });
    }

    /// Up / down move through `n` rows, wrapping; `None` for any other key.
    fn moved(&self, key: &KeyEvent, selected: usize, n: usize) -> Option<usize> {
        match self.keys.action(key) {
            Some(Action::Up) if n > 0 => Some((selected + n - 1) % n),
            Some(Action::Down) if n > 0 => Some((selected + 1) % n),
            _ => None,
        }
    }

    fn on_fault_picker_key(&mut self, provider: String, selected: usize, key: &KeyEvent) {
        if key.code == KeyCode::Esc {
            self.ui.overlay = None;
        } else if key.code == KeyCode::Enter {
            self.ui.overlay = None;
            if let (Some((fault, _)), Some(control)) = (FAULT_CHOICES.get(selected), &self.control)
            {
                self.ui.flash = Some(control.send(Command::SetFault {
                    provider,
                    fault: (*fault).to_string(),
                }));
            }
        } else if let Some(selected) = self.moved(key, selected, FAULT_CHOICES.len()) {
            self.ui.overlay = Some(Overlay::FaultPicker { provider, selected });
        }
    }

    fn on_log_filter_key(&mut self, selected: usize, key: &KeyEvent) {
        let choices = LogFilter::choices(&self.live);
        if key.code == KeyCode::Esc {
            self.ui.overlay = None;
        } else if key.code == KeyCode::Enter {
            self.ui.overlay = None;
            if let Some(filter) = choices.get(selected) {
                self.ui.log_filter = filter.clone();
                self.ui.log_at = None;
            }
        } else if let Some(selected) = self.moved(key, selected, choices.len()) {
            self.ui.overlay = Some(Overlay::LogFilter { selected });
        }
    }

    /// A panels' action ([`Bindings::action`]: scope panels or live).
    fn on_action(&mut self, action: Action) {
        self.ui.flash = None;
        // A replay is read-only, and its pause is its freeze.
        if self.control.is_none() && action.scope() == Scope::Live {
            self.ui.flash = Some(match action {
                Action::Freeze => format!(
                    "a replay pauses with {}",
                    self.keys.describe(Action::ReplayPause)
                ),
                _ => "a replay is read-only".to_string(),
            });
            return;
        }
        match action {
            Action::Quit => self.ask_to_quit(),
            Action::Help => self.ui.overlay = Some(Overlay::Help { scroll: 0 }),
            Action::FocusNext => self.move_focus(1),
            Action::FocusPrev => self.move_focus(-1),
            Action::Prompt => {
                self.ui.zoomed = None;
                self.ui.focus = Focus::Prompt;
            }
            Action::Up => self.select(-1),
            Action::Down => self.select(1),
            Action::PageUp => self.page(-1),
            Action::PageDown => self.page(1),
            Action::Top => self.select(i32::MIN),
            Action::Bottom => self.select(i32::MAX),
            Action::Search => {
                self.ui.focus = Focus::Log;
                self.ui.search = Some(self.ui.log_filter.text.clone().unwrap_or_default());
            }
            Action::Zoom => self.toggle_zoom(),
            Action::Trip => self.confirm(|provider| Command::Trip { provider }),
            Action::ForceClosed => self.confirm(|provider| Command::ForceClosed { provider }),
            Action::Reset => {
                if let (Some(provider), Some(control)) = (self.selected_provider(), &self.control) {
                    self.ui.flash = Some(control.send(Command::Reset { provider }));
                }
            }
            Action::PickFault => self.pick_fault(),
            Action::ToggleLoad => self.change_load(LoadChange::Toggle),
            Action::LoadFaster => self.change_load(LoadChange::Faster),
            Action::LoadSlower => self.change_load(LoadChange::Slower),
            Action::Freeze => {
                self.frozen = match self.frozen {
                    Some(_) => None,
                    None => Some(Box::new(self.live.clone())),
                };
            }
            Action::FilterLog => self.ui.overlay = Some(Overlay::LogFilter { selected: 0 }),
            Action::Open => self.open_detail(),
            Action::Copy => match self.detail_target() {
                Some(target) => self.copy(&target),
                None => self.ui.flash = Some("nothing here to copy".to_string()),
            },
            // Read elsewhere: by the replay's player and the confirmation popup.
            Action::ReplayPause
            | Action::ReplayStep
            | Action::ReplayBack
            | Action::ReplayForward
            | Action::ReplayPrevious
            | Action::ReplayNext
            | Action::ReplayPreviousBreaker
            | Action::ReplayNextBreaker
            | Action::ReplaySlower
            | Action::ReplayFaster
            | Action::Confirm => {}
        }
    }

    fn pick_fault(&mut self) {
        match self.selected_provider() {
            Some(provider) if self.control.as_ref().is_some_and(|c| c.faults()) => {
                let current = self.live.provider(&provider).and_then(|p| p.fault.clone());
                let selected = current.and_then(|f| fault_choice_in_force(&f)).unwrap_or(0);
                self.ui.overlay = Some(Overlay::FaultPicker { provider, selected });
            }
            _ if self.is_attached() => {
                self.ui.flash =
                    Some("faults apply to simulated providers; this gateway has none".to_string());
            }
            _ => {
                self.ui.flash =
                    Some("faults apply to the simulated providers (demo mode)".to_string());
            }
        }
    }

    fn change_load(&mut self, change: LoadChange) {
        if let Some(control) = &self.control {
            self.ui.flash = Some(control.send(Command::Load { change }));
        }
    }

    fn selected_provider(&self) -> Option<String> {
        self.live
            .providers
            .get(self.ui.selected_provider)
            .map(|p| p.name.clone())
    }

    fn confirm(&mut self, command: fn(String) -> Command) {
        if let Some(provider) = self.selected_provider() {
            self.ui.overlay = Some(Overlay::Confirm {
                command: command(provider),
            });
        }
    }

    /// Zoom the focused panel to the whole screen, or put it back.
    fn toggle_zoom(&mut self) {
        self.ui.zoomed = match self.ui.zoomed {
            Some(_) => None,
            None => Panel::of(self.ui.focus).or(Some(Panel::Reply)),
        };
        if let Some(focus) = self.ui.zoomed.and_then(Panel::focus) {
            self.ui.focus = focus;
        }
    }

    /// Tab: the next panel that takes keys; zoomed, the next panel of all (so every one can be
    /// read on a small terminal).
    fn move_focus(&mut self, by: i32) {
        match self.ui.zoomed {
            Some(panel) => {
                let order = Panel::ORDER;
                let i = order.iter().position(|p| *p == panel).unwrap_or(0) as i32;
                let next = order[(i + by).rem_euclid(order.len() as i32) as usize];
                self.ui.zoomed = Some(next);
                if let Some(focus) = next.focus() {
                    self.ui.focus = focus;
                }
            }
            None => self.focus_by(by),
        }
    }

    /// Up (`by` < 0) or down the focused panel, the way the screen reads; `i32::MIN` / `MAX` go
    /// to the top / the bottom.
    fn select(&mut self, by: i32) {
        match self.ui.focus {
            Focus::Providers => {
                let n = self.shown().providers.len();
                if n > 0 {
                    let i = self.ui.selected_provider as i64 + i64::from(by);
                    self.ui.selected_provider = i.clamp(0, n as i64 - 1) as usize;
                }
            }
            Focus::Requests => self.select_request(by),
            Focus::Errors => {
                let n = panels::error_classes(self.shown()).len();
                let i = self.ui.selected_error as i64 + i64::from(by);
                self.ui.selected_error = i.clamp(0, n.saturating_sub(1) as i64) as usize;
            }
            Focus::Log => self.move_log(i64::from(by)),
            Focus::Reply | Focus::Prompt => self.scroll_reply(i64::from(by)),
        }
    }

    /// A page up or down the focused panel.
    fn page(&mut self, by: i32) {
        let rows = match self.drawn.get().log_rows {
            0 => PAGE,
            rows => rows as i64,
        };
        match self.ui.focus {
            Focus::Log => self.move_log(i64::from(by) * rows),
            Focus::Providers | Focus::Requests | Focus::Errors => {
                self.select(by.saturating_mul(PAGE as i32));
            }
            Focus::Reply | Focus::Prompt => self.scroll_reply(i64::from(by) * PAGE),
        }
    }

    /// The requests are drawn newest first: up is newer, and up past the newest follows new ones
    /// again (so does the top, `g`).
    fn select_request(&mut self, by: i32) {
        let ids: Vec<&str> = self
            .shown()
            .requests
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        let Some(newest) = ids.len().checked_sub(1) else {
            return;
        };
        let current = self
            .ui
            .selected_request
            .as_deref()
            .and_then(|id| ids.iter().position(|x| *x == id))
            .unwrap_or(newest);
        // Down the screen is older: a lower index.
        let next = (current as i64).saturating_sub(i64::from(by));
        self.ui.selected_request = if next >= newest as i64 {
            None
        } else {
            Some(ids[next.max(0) as usize].to_string())
        };
        self.ui.reply_scroll = 0;
    }

    /// The log is drawn newest at the bottom: up is older, and down to the newest follows again.
    fn move_log(&mut self, by: i64) {
        let rows = self.drawn.get().log_rows.max(1);
        let dash = self.shown();
        let at = dash.log_moved(&self.ui.log_filter, self.ui.log_at, by, rows);
        self.ui.log_at = at;
    }

    /// Down the reply, up to what the last frame said it could go (further while it streams).
    fn scroll_reply(&mut self, by: i64) {
        let most = i64::try_from(self.drawn.get().reply_scroll).unwrap_or(i64::MAX);
        let down = i64::from(self.ui.reply_scroll).saturating_add(by);
        self.ui.reply_scroll = down.clamp(0, most.min(i64::from(u16::MAX))) as u16;
    }

    /// The mouse wheel, in the focused panel.
    fn scroll(&mut self, by: i32) {
        match self.ui.focus {
            Focus::Log => self.move_log(i64::from(by)),
            _ => self.scroll_reply(i64::from(by)),
        }
    }
}

/// The detail view (Enter) and copying it (`y`).
impl App {
    /// Tab and Shift-Tab, passing by the errors panel where the screen has no room for it.
    fn focus_by(&mut self, by: i32) {
        let mut focus = cycle(self.ui.focus, by);
        let screen = self.screen.get();
        if focus == Focus::Errors && !panels::shows_errors(self.shown(), screen) {
            focus = cycle(focus, by);
        }
        self.ui.focus = focus;
    }

    /// The row Enter opens in the focused panel: the selected provider, request or error class,
    /// or the event-log line at the bottom of the log as scrolled.
    fn detail_target(&self) -> Option<DetailTarget> {
        let dash = self.shown();
        match self.ui.focus {
            Focus::Providers => dash
                .providers
                .get(self.ui.selected_provider)
                .map(|p| DetailTarget::Provider(p.name.clone())),
            Focus::Requests | Focus::Reply => panels::selected_request(dash, &self.ui)
                .map(|r| DetailTarget::Request(r.id.clone())),
            Focus::Errors => {
                let classes = panels::error_classes(dash);
                let i = self.ui.selected_error.min(classes.len().saturating_sub(1));
                classes.get(i).map(|c| DetailTarget::ErrorClass(*c))
            }
            Focus::Log => {
                let rows = self.drawn.get().log_rows.max(1);
                let window = dash.log_window(&self.ui.log_filter, self.ui.log_at, rows);
                window.lines.last().map(|l| DetailTarget::Log(l.seq))
            }
            Focus::Prompt => None,
        }
    }

    fn open_detail(&mut self) {
        match self.detail_target() {
            Some(target) => self.ui.overlay = Some(Overlay::Detail { target, scroll: 0 }),
            None => self.ui.flash = Some("nothing here to open yet".to_string()),
        }
    }

    fn on_detail_key(&mut self, target: DetailTarget, scroll: usize, key: &KeyEvent) {
        if key.code == KeyCode::Esc {
            self.ui.overlay = None;
            return;
        }
        let page = usize::from(self.screen.get().height.saturating_sub(4)).max(1);
        let most = panels::max_scroll(self.shown(), &target, self.screen.get());
        let scroll = match self.keys.action(key) {
            Some(Action::Quit) => {
                self.ui.overlay = None;
                return;
            }
            Some(Action::Copy) => {
                self.copy(&target);
                scroll
            }
            Some(Action::Up) => scroll.saturating_sub(1),
            Some(Action::Down) => scroll.saturating_add(1),
            Some(Action::PageUp) => scroll.saturating_sub(page),
            Some(Action::PageDown) => scroll.saturating_add(page),
            _ => match key.code {
                KeyCode::Home => 0,
                KeyCode::End => most,
                _ => scroll,
            },
        };
        let scroll = scroll.min(most);
        self.ui.overlay = Some(Overlay::Detail { target, scroll });
    }

    /// Put a detail's text on the clipboard (OSC 52, written by the loop) and say what was copied.
    fn copy(&mut self, target: &DetailTarget) {
        let text = panels::copy_text(self.shown(), target);
        let copy = clipboard::osc52(&text);
        let lines = text.get(..copy.bytes).unwrap_or_default().lines().count();
        let what = match target {
            DetailTarget::Request(id) => format!("request {id}"),
            DetailTarget::Provider(name) => format!("provider {name}"),
            DetailTarget::ErrorClass(class) => format!("error class {class}"),
            DetailTarget::Log(seq) => format!("event #{seq}"),
        };
        let cut = if copy.cut { ", cut to 64 KiB" } else { "" };
        self.ui.flash = Some(format!(
            "copied {what}: {lines} lines, {} bytes{cut} (OSC 52)",
            copy.bytes
        ));
        self.clipboard = Some(copy.sequence);
    }
}

/// The next note, or never when there is no channel of notes.
async fn next_note(notes: &mut Option<mpsc::UnboundedReceiver<Note>>) -> Option<Note> {
    match notes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn cycle(focus: Focus, by: i32) -> Focus {
    let order = Focus::ORDER;
    let i = order.iter().position(|f| *f == focus).unwrap_or(0) as i32;
    let n = order.len() as i32;
    order[((i + by).rem_euclid(n)) as usize]
}

/// The signals that would otherwise kill the console with the terminal still taken over (alternate
/// screen, hidden cursor, mouse reporting, raw mode): each ends it as `q` does, so the terminal is
/// given back. In raw mode Ctrl-C and Ctrl-\ are keys, so SIGINT and SIGQUIT come only from
/// outside; SIGHUP when someone sends it or the terminal goes away.
pub struct StopSignals {
    #[cfg(unix)]
    signals: [tokio::signal::unix::Signal; 4],
}

impl StopSignals {
    /// Install the handlers: from here on these signals no longer kill the process.
    pub fn install() -> std::io::Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                signals: [
                    signal(SignalKind::terminate())?,
                    signal(SignalKind::interrupt())?,
                    signal(SignalKind::hangup())?,
                    signal(SignalKind::quit())?,
                ],
            })
        }
        #[cfg(not(unix))]
        {
            Ok(StopSignals {})
        }
    }

    /// The next of those signals.
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            let [term, int, hup, quit] = &mut self.signals;
            // A handler that can no longer deliver disables its branch.
            tokio::select! {
                Some(()) = term.recv() => return,
                Some(()) = int.recv() => return,
                Some(()) = hup.recv() => return,
                Some(()) = quit.recv() => return,
                else => {}
            }
        }
        std::future::pending::<()>().await;
    }
}

/// Take over the terminal, run the app, and give the terminal back — on quit, on error, on
/// SIGTERM, SIGINT, SIGHUP and SIGQUIT (the loop ends, see [`StopSignals`]) and on panic (ratatui's
/// hook, plus ours for the mouse and paste modes). Every console (`breakerbox`, `serve`, `attach`,
/// `replay`) comes through here.
pub async fn run_in_terminal(
    app: &mut App,
    events: broadcast::Receiver<Arc<Event>>,
) -> color_eyre::Result<()> {
    use color_eyre::eyre::WrapErr;
    use ratatui::crossterm::event::{
        DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    };
    use ratatui::crossterm::execute;

    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        color_eyre::eyre::bail!(
            "the console needs a terminal; for scripts use `breakerbox ask` or `breakerbox replay --report` (see --help)"
        );
    }
    // Before the terminal is taken, so no moment is left where a signal kills the console with it.
    let mut stop = StopSignals::install().wrap_err("cannot install the signal handlers")?;
    let mut terminal = ratatui::try_init().wrap_err("cannot take over the terminal")?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(
            std::io::stdout(),
            DisableMouseCapture,
            DisableBracketedPaste
        );
        previous(info);
    }));
    let _ = execute!(std::io::stdout(), EnableMouseCapture, EnableBracketedPaste);
    let result = app.run(&mut terminal, events, &mut stop).await;
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste
    );
    // A terminal that hung up cannot be restored, and saying so would fail too.
    let _ = ratatui::try_restore();
    result.wrap_err("the console's terminal failed")
}
