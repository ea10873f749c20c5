//! `breakerbox ask`: requests through the failover engine, no console.
//!
//! One request: the reply goes to stdout and a summary to stderr. On a terminal the reply streams as
//! it arrives and a withdrawn partial reply is marked; into a pipe only the final, complete answer is
//! written, so a script never receives half of one provider's reply spliced to another's.
//! `--count N`: a line per request and the breaker changes as they happen. `--json`: the event stream
//! as JSON lines. Exit status 0 only when every request got a complete answer.

use color_eyre::eyre::{Result, bail};
use futures::StreamExt;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use crate::cli::{AskArgs, Cli};
use crate::config::TargetEntry;
use crate::engine::failover::{FailoverEngine, MidStreamPolicy, ProviderTotals, RequestMeta};
use crate::event::facts::Spend;
use crate::event::{Event, EventKind, Outcome, Received, Source};
use crate::provider::{Message, Request};
use crate::session::recording::{Recording, When};
use crate::session::{Session, env};
use crate::text::printable;

pub async fn run(cli: &Cli, args: &AskArgs) -> Result<i32> {
    let mut session = Session::start(&cli.common, &env, None).await?;
    let mut rx = session.bus.subscribe();
    let engine = engine(&session, args)?;
    let mode = session.setup.mode;
    // Started before the first event is published, so the recording holds the whole session.
    let recording = Recording::start(
        &cli.record,
        When::Asked,
        mode,
        &session.setup,
        &session.config,
        &env,
    )?;
    session.announce(mode)?;

    let shared = engine.shared().clone();
    let producer = tokio::spawn(send_all(engine, request(args), args.clone()));
    let mut printer = Printer::new(args.json, args.count, std::io::stdout().is_terminal());
    let finished = print_until_finished(&mut rx, &mut printer, args.count).await;
    let all_ok = producer.await?;
    printer.finish();
    let recorded_ok = recording.finish().await;
    if args.count > 1 && !args.json {
        print_totals(&shared.totals());
    }
    if let Some(sim) = session.sim.and_then(|sim| Arc::try_unwrap(sim).ok()) {
        sim.shutdown().await;
    }
    Ok(if all_ok && finished == args.count && recorded_ok {
        0
    } else {
        1
    })
}

/// The engine `--provider` or `--chain` asks for (else the default chain).
fn engine(session: &Session, args: &AskArgs) -> Result<FailoverEngine> {
    let setup = &session.setup;
    let Some(name) = &args.provider else {
        return setup.engine(args.chain.as_deref());
    };
    if setup.provider(name).is_none() {
        bail!(
            "--provider {name}: no such provider (there are: {})",
            session.provider_names().join(", ")
        );
    }
    let only = [TargetEntry::Name(name.clone())];
    setup.engine_for(name, &only, MidStreamPolicy::default(), None)
}

fn request(args: &AskArgs) -> Request {
    Request {
        model: args.model.clone().unwrap_or_default(),
        system: args.system.clone(),
        messages: Arc::new(vec![Message::user(args.prompt.clone())]),
        max_tokens: args.max_tokens,
        ..Request::default()
    }
}

/// Print events until `count` requests have finished (or the bus closes); how many did.
async fn print_until_finished(
    rx: &mut tokio::sync::broadcast::Receiver<Arc<Event>>,
    printer: &mut Printer,
    count: u32,
) -> u32 {
    let mut finished = 0;
    while finished < count {
        match crate::event::next(rx).await {
            Some(Received::Event(event)) => {
                if matches!(event.kind, EventKind::RequestFinished { .. }) {
                    finished += 1;
                }
                printer.print(&event);
            }
            Some(Received::Lagged(n)) => {
                say(&format!(
                    "breakerbox: output fell behind; {n} events were not printed"
                ));
            }
            None => break,
        }
    }
    finished
}

/// Send the request `count` times, `interval` apart; true when every one was answered in full.
async fn send_all(engine: FailoverEngine, request: Request, args: AskArgs) -> bool {
    let mut tasks = Vec::new();
    for i in 0..args.count {
        if i > 0 {
            tokio::time::sleep(args.interval).await;
        }
        let engine = engine.clone();
        let request = request.clone();
        let meta = RequestMeta {
            prompt: Some(args.prompt.clone()),
            ..RequestMeta::new(Source::Ask)
        };
        tasks.push(tokio::spawn(async move {
            let (_, mut stream) = engine.send(request, meta);
            let mut complete = false;
            while let Some(item) = stream.next().await {
                complete = matches!(item, Ok(crate::provider::StreamEvent::Done { .. }));
            }
            complete
        }));
    }
    let mut all_ok = true;
    for task in tasks {
        all_ok &= task.await.unwrap_or(false);
    }
    all_ok
}

/// What one request did, folded from its events.
#[derive(Default)]
struct RequestView {
    text: String,
    /// provider → model, as attempted
    models: BTreeMap<String, String>,
    failures: Vec<String>,
    first_event_ms: Option<u64>,
    input_tokens: u64,
    output_tokens: u64,
}

/// Prints events as the output mode asks. A closed stdout (`| head`) stops the printing quietly.
struct Printer {
    json: bool,
    many: bool,
    live: bool,
    open: bool,
    /// The reply streamed to the terminal stopped mid-line.
    mid_line: bool,
    requests: BTreeMap<String, RequestView>,
}

impl Printer {
    fn new(json: bool, count: u32, terminal: bool) -> Self {
        Printer {
            json,
            many: count > 1,
            live: terminal,
            open: true,
            mid_line: false,
            requests: BTreeMap::new(),
        }
    }

    /// Write to stdout. On a terminal, control characters in the text (a provider's escape
    /// sequences, BEL, CR) are shown as spaces, newlines kept; into a pipe or a file the text is
    /// written byte for byte.
    fn out(&mut self, text: &str) {
        if !self.open {
            return;
        }
        let text = if self.live {
            printable(text, true)
        } else {
            Cow::Borrowed(text)
        };
        if let Some(last) = text.chars().last() {
            self.mid_line = last != '\n';
        }
        let mut out = std::io::stdout().lock();
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            self.open = false;
        }
    }

    /// A note on stderr, on a line of its own even when the reply on the terminal is mid-line.
    fn note(&mut self, text: &str) {
        if self.live && self.mid_line {
            self.out("\n");
        }
        say(text);
    }

    fn print(&mut self, event: &Event) {
        if self.json {
            match serde_json::to_string(event) {
                Ok(line) => self.out(&format!("{line}\n")),
                Err(e) => say(&format!("breakerbox: cannot encode an event: {e}")),
            }
            return;
        }
        match &event.kind {
            EventKind::AttemptStarted {
                request_id,
                provider,
                model,
                ..
            } => {
                self.view(request_id)
                    .models
                    .insert(provider.clone(), model.clone());
            }
            EventKind::AttemptFailed { .. } => self.attempt_failed(&event.kind),
            EventKind::AttemptSkipped {
                provider, reason, ..
            } if !self.many => {
                say(&format!("breakerbox: skipped {provider}: {reason}"));
            }
            EventKind::FirstEvent {
                request_id,
                latency_ms,
                ..
            } => {
                self.view(request_id).first_event_ms = Some(*latency_ms);
            }
            EventKind::TextDelta {
                request_id, text, ..
            } => {
                self.view(request_id).text.push_str(text);
                if self.live && !self.many {
                    self.out(text);
                }
            }
            EventKind::Rewind {
                request_id,
                provider,
                reason,
                ..
            } => self.rewind(request_id, provider, reason),
            EventKind::Usage {
                request_id,
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                ..
            } => {
                let view = self.view(request_id);
                view.input_tokens = input_tokens + cache_read_tokens + cache_write_tokens;
                view.output_tokens = *output_tokens;
            }
            EventKind::BreakerChanged {
                provider,
                from,
                to,
                reason,
                ..
            } => {
                say(&format!(
                    "breakerbox: breaker {provider}: {from} → {to} ({reason})"
                ));
            }
            EventKind::ProviderFlagged {
                provider,
                flag,
                reason,
            } => {
                say(&format!("breakerbox: {provider} looks {flag}: {reason}"));
            }
            EventKind::ProbeFinished { .. } => {
                say(&format!(
                    "breakerbox: {}",
                    crate::event::describe::describe(&event.kind)
                ));
            }
            EventKind::RequestFinished { .. } => self.finished(event),
            _ => {}
        }
    }

    fn attempt_failed(&mut self, kind: &EventKind) {
        let EventKind::AttemptFailed {
            request_id,
            provider,
            class,
            phase,
            retryable,
            ..
        } = kind
        else {
            return;
        };
        let kind = if *retryable {
            "retryable"
        } else {
            "not retryable"
        };
        let line = format!("{provider}: {class} in {phase} ({kind})");
        if !self.many {
            self.note(&format!("breakerbox: attempt failed: {line}"));
        }
        self.view(request_id).failures.push(line);
    }

    fn rewind(&mut self, request_id: &str, provider: &str, reason: &str) {
        self.view(request_id).text.clear();
        if self.live && !self.many {
            if self.mid_line {
                self.out("\n");
            }
            self.out(&format!(
                "⟲ withdrawn: {provider} failed mid-reply ({reason}); starting over\n"
            ));
        }
    }

    fn view(&mut self, request_id: &str) -> &mut RequestView {
        self.requests.entry(request_id.to_string()).or_default()
    }

    fn finished(&mut self, event: &Event) {
        let EventKind::RequestFinished {
            request_id,
            outcome,
            provider,
            stop_reason,
            class,
            message,
            total_ms,
            cost_usd,
            attempts,
            unpriced,
            ..
        } = &event.kind
        else {
            return;
        };
        // A model without a price is "cost unknown", never $0.
        let cost = Spend::of(*cost_usd, *unpriced).describe(dollars);
        let view = self.requests.remove(request_id).unwrap_or_default();
        let ok = *outcome == Outcome::Ok;
        let who = provider.as_deref().unwrap_or("-");
        let model = provider
            .as_ref()
            .and_then(|p| view.models.get(p))
            .map_or("", String::as_str);
        let first = view
            .first_event_ms
            .map(|ms| format!("first event {ms} ms · "))
            .unwrap_or_default();
        let after = if view.failures.is_empty() {
            String::new()
        } else {
            format!(" · after {}", collapse(&view.failures))
        };
        if self.many {
            let status = if ok {
                "ok".to_string()
            } else {
                format!("FAILED {}", class.map_or("", |c| c.as_str()))
            };
            self.out(&format!(
                "{request_id:>4}  {status:<22} {who:<12} attempts {attempts}  {first}total {:.2} s  {cost}{after}\n",
                *total_ms as f64 / 1000.0
            ));
        } else if ok {
            if self.live {
                self.out("\n");
            } else {
                self.out(&format!("{}\n", view.text));
            }
            let tokens = format!(
                "{} in / {} out tokens",
                view.input_tokens, view.output_tokens
            );
            say(&format!(
                "ok: {who} ({model}) · {first}{:.2} s · {tokens} · {cost} · stop: {}{after}",
                *total_ms as f64 / 1000.0,
                stop_reason.as_deref().unwrap_or("?"),
            ));
        } else {
            self.failed(
                &view,
                class.map_or("error", |c| c.as_str()),
                message.as_deref(),
                &after,
            );
        }
    }

    /// The summary of a request that failed, saying what became of a partial reply.
    fn failed(&mut self, view: &RequestView, class: &str, message: Option<&str>, after: &str) {
        let chars = view.text.chars().count();
        let incomplete = if view.text.is_empty() {
            String::new()
        } else if self.live {
            format!(" · the reply above is INCOMPLETE ({chars} chars)")
        } else {
            format!(" · an INCOMPLETE reply ({chars} chars) was not printed")
        };
        if self.live && !view.text.is_empty() {
            self.out("\n");
        }
        say(&format!(
            "failed: {class}: {}{after}{incomplete}",
            message.unwrap_or(""),
        ));
    }

    fn finish(&mut self) {
        let _ = std::io::stdout().lock().flush();
    }
}

/// One line on stderr, control characters and newlines shown as spaces (as the headless gateway's
/// log shows them): a provider's message can neither drive the terminal nor forge a line. A
/// stderr that is gone stops nothing.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{}", printable(line, false));
}

/// What each provider was asked and what it cost, after `--count`.
fn print_totals(totals: &BTreeMap<String, ProviderTotals>) {
    say(&format!(
        "{:<12} {:>8} {:>8} {:>10} {:>10} {:>11} {:>11}",
        "provider", "attempts", "failed", "tokens in", "tokens out", "cost", "of it failed"
    ));
    for (name, t) in totals {
        say(&format!(
            "{name:<12} {:>8} {:>8} {:>10} {:>10} {:>11} {:>11}",
            t.attempts,
            t.failures,
            t.input_tokens + t.cache_read_tokens + t.cache_write_tokens,
            t.output_tokens,
            t.cost().cell(dollars),
            t.failed_cost().cell(dollars),
        ));
    }
}

/// How `ask` writes money: to the micro-dollar, as the event log does.
fn dollars(usd: f64) -> String {
    format!("${usd:.6}")
}

/// `a, a, a, b` → `a ×3, b`
fn collapse(items: &[String]) -> String {
    let mut parts: Vec<(String, usize)> = Vec::new();
    for item in items {
        match parts.last_mut() {
            Some((last, n)) if last == item => *n += 1,
            _ => parts.push((item.clone(), 1)),
        }
    }
    parts
        .into_iter()
        .map(|(item, n)| if n > 1 { format!("{item} ×{n}") } else { item })
        .collect::<Vec<_>>()
        .join(", ")
}
