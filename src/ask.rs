//! `breakerbox ask`: one request, no console. The reply goes to stdout as it streams and a summary to
//! stderr; `--json` prints the event stream as JSON lines instead. Exit status 0 only when a complete
//! reply arrived.

use color_eyre::eyre::{Result, bail};
use std::io::Write;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::cli::{AskArgs, CommonArgs};
use crate::engine::attempt::{self, AttemptContext, AttemptReport};
use crate::event::{Bus, Event, EventKind, FORMAT_VERSION, Outcome, Source};
use crate::provider::{Message, Request};
use crate::setup;

pub async fn run(common: &CommonArgs, args: &AskArgs) -> Result<i32> {
    let config = setup::load_config(common)?;
    let setup = setup::build(common, &config, &|var| std::env::var(var).ok()).await?;
    let provider = match &args.provider {
        Some(name) => match setup.provider(name) {
            Some(p) => Arc::clone(p),
            None => bail!(
                "--provider {name}: no such provider (there are: {})",
                setup
                    .infos
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        None => match setup.providers.first() {
            Some(p) => Arc::clone(p),
            None => bail!("no providers are configured"),
        },
    };

    let request = Request {
        model: args.model.clone().unwrap_or_default(),
        system: args.system.clone(),
        messages: vec![Message::user(args.prompt.clone())],
        max_tokens: args.max_tokens,
        ..Request::default()
    };

    // Large enough that a printer on a slow terminal never lags behind one reply.
    let bus = Bus::new(1 << 16);
    let mut rx = bus.subscribe();
    let request_id = "r1".to_string();
    let producer = {
        let bus = bus.clone();
        let infos = setup.infos.clone();
        let pricing = setup.pricing.clone();
        let mode = setup.mode;
        let prompt = args.prompt.clone();
        let request_id = request_id.clone();
        tokio::spawn(async move {
            bus.publish(EventKind::SessionStarted {
                format_version: FORMAT_VERSION,
                mode,
                providers: infos,
            });
            bus.publish(EventKind::RequestStarted {
                request_id: request_id.clone(),
                source: Source::Ask,
                chain: vec![provider.name().to_string()],
                prompt: Some(prompt),
            });
            let started = Instant::now();
            let ctx = AttemptContext {
                bus: &bus,
                pricing: &pricing,
                request_id: &request_id,
                number: 1,
            };
            let report = attempt::run(provider.as_ref(), request, ctx).await;
            bus.publish(finished(
                &request_id,
                &report,
                attempt::millis(started.elapsed()),
            ));
            report
        })
    };

    let mut printer = Printer::new(args.json);
    loop {
        match rx.recv().await {
            Ok(event) => {
                printer.print(&event);
                if matches!(event.kind, EventKind::RequestFinished { .. }) {
                    break;
                }
            }
            Err(RecvError::Lagged(n)) => {
                eprintln!("breakerbox: output fell behind; {n} events were not printed");
            }
            Err(RecvError::Closed) => break,
        }
    }
    let report = producer.await?;
    printer.finish();
    eprintln!("{}", summary(&report));
    if let Some(sim) = setup.sim {
        sim.shutdown().await;
    }
    Ok(if report.result.is_ok() { 0 } else { 1 })
}

fn finished(request_id: &str, report: &AttemptReport, total_ms: u64) -> EventKind {
    let (outcome, stop_reason, class, message) = match &report.result {
        Ok(done) => (
            Outcome::Ok,
            Some(done.stop_reason.as_str().to_string()),
            None,
            None,
        ),
        Err(err) => (
            Outcome::Error,
            None,
            Some(err.class),
            Some(err.message.clone()),
        ),
    };
    EventKind::RequestFinished {
        request_id: request_id.to_string(),
        outcome,
        provider: report.result.is_ok().then(|| report.provider.clone()),
        stop_reason,
        class,
        message,
        total_ms,
        cost_usd: report.cost_usd,
    }
}

/// One line for stderr about how the request went.
fn summary(report: &AttemptReport) -> String {
    let tokens = format!(
        "{} in / {} out tokens",
        report.usage.total_input(),
        report.usage.output_tokens
    );
    let cost = format!("${:.6}", report.cost_usd);
    match &report.result {
        Ok(done) => {
            let first = report
                .first_event_ms
                .map(|ms| format!("first event {ms} ms · "))
                .unwrap_or_default();
            format!(
                "ok: {} ({}) · {first}{:.2} s · {tokens} · {cost} · stop: {}",
                report.provider,
                report.model,
                report.elapsed.as_secs_f64(),
                done.raw_stop_reason
                    .as_deref()
                    .unwrap_or(done.stop_reason.as_str()),
            )
        }
        Err(err) => {
            let retry = err
                .retry_after
                .map(|d| format!(", retry after {:.1} s", d.as_secs_f64()))
                .unwrap_or_default();
            let status = err
                .status
                .map(|s| format!("HTTP {s}, "))
                .unwrap_or_default();
            let partial = if report.text.is_empty() {
                String::new()
            } else {
                format!(
                    " · the reply above is INCOMPLETE ({} chars)",
                    report.text.chars().count()
                )
            };
            format!(
                "failed: {} · {} in {} ({status}after {} ms{retry}): {}{partial}",
                err.provider,
                err.class,
                err.phase,
                report.elapsed.as_millis(),
                err.message
            )
        }
    }
}

/// Writes either the reply text or the JSON lines to stdout. A closed stdout (`| head`) stops the
/// printing quietly instead of panicking.
struct Printer {
    json: bool,
    out: std::io::Stdout,
    open: bool,
    wrote_text: bool,
}

impl Printer {
    fn new(json: bool) -> Self {
        Printer {
            json,
            out: std::io::stdout(),
            open: true,
            wrote_text: false,
        }
    }

    fn print(&mut self, event: &Event) {
        if !self.open {
            return;
        }
        let mut out = self.out.lock();
        let result = if self.json {
            serde_json::to_string(event)
                .map_err(std::io::Error::other)
                .and_then(|line| writeln!(out, "{line}"))
        } else if let EventKind::TextDelta { text, .. } = &event.kind {
            self.wrote_text = true;
            write!(out, "{text}").and_then(|()| out.flush())
        } else {
            Ok(())
        };
        if result.is_err() {
            self.open = false;
        }
    }

    fn finish(&mut self) {
        if self.open && !self.json && self.wrote_text {
            let _ = writeln!(self.out.lock());
        }
        let _ = self.out.lock().flush();
    }
}

/// The console is not built yet: say so and point at what works.
pub fn no_console_yet() -> Result<i32> {
    eprintln!(
        "breakerbox: the live console is not available in this version yet.\n\
         Try:  breakerbox ask --demo \"Why is the sky blue?\"\n\
         or:   breakerbox sim --listen 127.0.0.1:0\n\
         See `breakerbox --help` for every command."
    );
    Ok(2)
}
