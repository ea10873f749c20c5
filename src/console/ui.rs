//! The console's local state: focus, selection, scrolling, filters, popups. It changes only through
//! keys and mouse (in `app.rs`), never through events, so the same `Dashboard` can be looked at in
//! different ways. What the screen shows but others own (the freeze, the background load, where a
//! replay stands) is not kept here: the app asks for it each frame (`panels::Facts`).

pub use super::dashboard::LogFilter;
use crate::event::ErrorClass;
use crate::session::Command;
pub use crate::session::LoadView;

/// The panels that take keys, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Providers,
    Requests,
    Reply,
    /// The errors panel's classes (full layout only: Tab passes it by where it is not drawn).
    Errors,
    Log,
    Prompt,
}

impl Focus {
    pub const ORDER: [Focus; 6] = [
        Focus::Providers,
        Focus::Errors,
        Focus::Requests,
        Focus::Reply,
        Focus::Log,
        Focus::Prompt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Focus::Providers => "providers",
            Focus::Requests => "requests",
            Focus::Reply => "reply",
            Focus::Errors => "errors",
            Focus::Log => "event log",
            Focus::Prompt => "prompt",
        }
    }
}

/// Every panel, in the order a zoomed screen walks them (Tab).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Providers,
    Latency,
    Timeline,
    Errors,
    Cost,
    Requests,
    Reply,
    Log,
}

impl Panel {
    pub const ORDER: [Panel; 8] = [
        Panel::Providers,
        Panel::Latency,
        Panel::Timeline,
        Panel::Errors,
        Panel::Cost,
        Panel::Requests,
        Panel::Reply,
        Panel::Log,
    ];

    /// The panel a focus is in; the prompt is none.
    pub fn of(focus: Focus) -> Option<Panel> {
        match focus {
            Focus::Providers => Some(Panel::Providers),
            Focus::Errors => Some(Panel::Errors),
            Focus::Requests => Some(Panel::Requests),
            Focus::Reply => Some(Panel::Reply),
            Focus::Log => Some(Panel::Log),
            Focus::Prompt => None,
        }
    }

    /// The focus that takes this panel's keys, for those that take keys.
    pub fn focus(self) -> Option<Focus> {
        Focus::ORDER
            .into_iter()
            .find(|f| Panel::of(*f) == Some(self))
    }
}

/// Something drawn over the panels, taking the keys while it is open.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    /// The keys and legends, scrolled down by `scroll` lines.
    Help { scroll: usize },
    /// Asking before stopping a gateway that carries traffic (`serve`).
    ConfirmQuit,
    /// Asking before a breaker command (trip, force closed).
    Confirm { command: Command },
    /// Choosing a fault for a simulated provider; `selected` indexes `FAULT_CHOICES`.
    FaultPicker { provider: String, selected: usize },
    /// Choosing what the event log shows; `selected` indexes the rows of the filter list.
    LogFilter { selected: usize },
    /// Everything about one row (Enter), scrolled down `scroll` wrapped lines.
    Detail { target: DetailTarget, scroll: usize },
}

/// What a detail view is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetailTarget {
    /// A kept request, by id.
    Request(String),
    /// A provider, by name.
    Provider(String),
    /// An error class, across providers.
    ErrorClass(ErrorClass),
    /// An event-log line, by its event's `seq`.
    Log(u64),
}

/// Faults offered by the `f` picker, with the parameters that make a good rehearsal.
pub const FAULT_CHOICES: &[(&str, &str)] = &[
    ("none", "healthy"),
    ("rate_limit:retry_after=5s", "429, retry after 5 s"),
    ("overloaded", "529 / 503 overloaded"),
    ("server_error", "500"),
    ("connect_refused", "connection refused"),
    ("no_response", "accepts, never answers"),
    ("slow_first_event:delay=15s", "first event after 15 s"),
    ("stall:after=10", "silent mid-stream"),
    ("stream_cut:after=10", "cut mid-stream"),
    ("mid_stream_error:after=10", "in-stream error"),
    ("malformed:after=5", "invalid event mid-stream"),
    ("flap:down=10s,up=20s", "down 10 s, up 20 s, …"),
    ("latency:first=2s,token=80ms", "slow but healthy"),
    ("auth", "401, bad key"),
    ("bad_request", "400"),
];

/// The gateway an attached console (`breakerbox attach`) watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The gateway's `host:port`, for the header. Never the token, never credentials from the URL.
    pub target: String,
    pub link: Link,
}

/// Whether an attached console's event stream is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Connected,
    /// The stream dropped; the next try is this many milliseconds after it did.
    Disconnected {
        retry_in_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ui {
    /// The address this console's gateway (`breakerbox serve`) listens on, for the header.
    pub serving: Option<String>,
    pub focus: Focus,
    /// Index into `Dashboard::providers`.
    pub selected_provider: usize,
    /// Index into the errors panel's classes (`Dashboard::error_classes`).
    pub selected_error: usize,
    /// The request shown in the reply panel; `None` follows the newest.
    pub selected_request: Option<String>,
    /// Lines scrolled down in the reply panel.
    pub reply_scroll: u16,
    /// The newest event-log line shown, by its `seq`, once scrolled up; `None` follows the newest.
    /// An anchor rather than a count, so that a scrolled log stays put as lines arrive.
    pub log_at: Option<u64>,
    pub log_filter: LogFilter,
    /// The search being typed after `/` (it filters the log as it is typed); `None` when not typing.
    pub search: Option<String>,
    /// The panel shown on the whole screen, if one is zoomed.
    pub zoomed: Option<Panel>,
    pub overlay: Option<Overlay>,
    /// Draw with colour (off with `NO_COLOR` or `--no-color`).
    pub color: bool,
    /// A short message for the status bar (the result of the last action).
    pub flash: Option<String>,
    /// The remote gateway, when the console is attached to one; `None` when local.
    pub attached: Option<Attached>,
}

impl Default for Ui {
    fn default() -> Self {
        Ui {
            serving: None,
            focus: Focus::Providers,
            selected_provider: 0,
            selected_error: 0,
            selected_request: None,
            reply_scroll: 0,
            log_at: None,
            log_filter: LogFilter::default(),
            search: None,
            zoomed: None,
            overlay: None,
            color: true,
            flash: None,
            attached: None,
        }
    }
}

/// The fault kind names the picker offers, checked against the simulator's parser in a test.
pub fn fault_choice(index: usize) -> Option<&'static str> {
    FAULT_CHOICES.get(index).map(|(f, _)| *f)
}

/// The picker's choice for the fault in force (`KIND[:PARAMS]`): the one written the same, else
/// the one of the same kind (a scenario's `rate_limit:retry_after=5s,p=0.8` is the picker's
/// `rate_limit`, with other parameters).
pub fn fault_choice_in_force(fault: &str) -> Option<usize> {
    let kind = |f: &str| f.split(':').next().unwrap_or_default().trim().to_string();
    let fault = fault.trim();
    FAULT_CHOICES
        .iter()
        .position(|(f, _)| *f == fault)
        .or_else(|| {
            let wanted = kind(fault);
            FAULT_CHOICES.iter().position(|(f, _)| kind(f) == wanted)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::FaultKind;

    #[test]
    fn the_fault_in_force_is_found_by_kind_when_its_parameters_differ() {
        assert_eq!(fault_choice_in_force("none"), Some(0));
        assert_eq!(fault_choice_in_force("rate_limit:retry_after=5s"), Some(1));
        assert_eq!(
            fault_choice_in_force("rate_limit:retry_after=5s,p=0.8"),
            Some(1)
        );
        assert_eq!(
            fault_choice_in_force("stall"),
            fault_index("stall:after=10")
        );
        assert_eq!(fault_choice_in_force("no_done"), None);
        assert_eq!(fault_choice_in_force(""), None);
    }

    fn fault_index(fault: &str) -> Option<usize> {
        FAULT_CHOICES.iter().position(|(f, _)| *f == fault)
    }

    #[test]
    fn every_fault_choice_parses() {
        for (fault, _) in FAULT_CHOICES {
            let parsed: Result<crate::sim::Fault, _> = fault.parse();
            assert!(parsed.is_ok(), "{fault}");
        }
        assert!(matches!(
            "none".parse::<crate::sim::Fault>().map(|f| f.kind),
            Ok(FaultKind::None)
        ));
    }
}
