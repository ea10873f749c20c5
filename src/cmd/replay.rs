//! `breakerbox replay FILE`: the console on a recording (header REPLAY; pause, step, speed, jumps), or
//! `--report` (an incident report), `--export otlp-json` (OpenTelemetry spans), `--redrive` (the
//! recorded prompts sent again through the current configuration).

use color_eyre::eyre::{Result, bail, eyre};
use std::io::Write;
use std::time::Duration;

use crate::cli::{Cli, ExportFormat, ReplayArgs, ReportFormat};
use crate::console::app::{self, App};
use crate::console::replay::{Player, Speed};
use crate::console::ui::Ui;
use crate::event::{Bus, EventKind};
use crate::record::otlp::write_otlp_json;
use crate::record::reader::Reader;
use crate::record::report::Report;
use crate::session::setup::load_config;

pub async fn run(cli: &Cli, args: &ReplayArgs) -> Result<i32> {
    if args.report {
        return report(args);
    }
    if let Some(ExportFormat::OtlpJson) = args.export {
        return export(args);
    }
    if args.redrive {
        return redrive(cli, args).await;
    }
    let speed: Speed = args
        .speed
        .parse()
        .map_err(|e: String| eyre!("--speed: {e}"))?;
    let config = load_config(&cli.common)?;
    let keys = super::keys(&config)?;
    let player = Player::open(&args.file, speed)?;
    let ui = Ui {
        color: super::colour(cli.no_color),
        ..Ui::default()
    };
    let mut app = App::replay(ui, keys, player);
    // Nothing is published in a replay: the player feeds the dashboard directly, and the loop
    // stops listening to a bus that is closed.
    let closed = Bus::new(1).subscribe();
    app::run_in_terminal(&mut app, closed).await?;
    Ok(0)
}

/// `--report`: read the whole recording (streamed) and print the incident report.
fn report(args: &ReplayArgs) -> Result<i32> {
    let mut reader = Reader::open(&args.file)?;
    let header = reader.header().clone();
    let report = Report::from_events(&header, reader.by_ref());
    let text = match args.format {
        ReportFormat::Md => report.to_markdown(),
        ReportFormat::Json => format!("{:#}\n", report.to_json()),
        ReportFormat::Html => report.to_html(),
    };
    print_stdout(&text);
    if let Some(why) = reader.stopped() {
        eprintln!("breakerbox: {why}; the report covers what came before");
        return Ok(1);
    }
    if report.skipped_lines() > 0 {
        eprintln!(
            "breakerbox: {} unreadable lines of {} were skipped (listed in the report)",
            report.skipped_lines(),
            args.file.display()
        );
    }
    Ok(0)
}

/// `--export otlp-json`: the recording as OpenTelemetry spans, written as each request ends (memory
/// holds the requests in flight, not the file).
fn export(args: &ReplayArgs) -> Result<i32> {
    let mut reader = Reader::open(&args.file)?;
    let header = reader.header().clone();
    let mut skipped = 0u64;
    let events = reader.by_ref().filter_map(|item| match item {
        Ok(event) => Some(event),
        Err(e) => {
            skipped += 1;
            if skipped <= 10 {
                eprintln!("breakerbox: skipped {e}");
            }
            None
        }
    });
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let written = write_otlp_json(&header, events, &mut out)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        // A closed pipe (`| head`) ends quietly.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
        Err(e) => bail!("cannot write the export: {e}"),
        Ok(()) => {}
    }
    if let Some(why) = reader.stopped() {
        eprintln!("breakerbox: {why}; the export covers what came before");
        return Ok(1);
    }
    Ok(0)
}

/// A recorded prompt and when it was sent, from the start of the recording.
struct Prompt {
    after: Duration,
    text: String,
    /// Only an excerpt was recorded (the prompt was longer than events carry).
    cut: bool,
}

/// The prompts of a recording, in order, with their offsets.
fn recorded_prompts(reader: Reader) -> Vec<Prompt> {
    let mut start = None;
    let mut prompts = Vec::new();
    for event in reader.flatten() {
        let first = *start.get_or_insert(event.ts);
        if let EventKind::RequestStarted {
            prompt: Some(text),
            prompt_chars,
            ..
        } = &event.kind
        {
            let after = (event.ts - first).to_std().unwrap_or_default();
            prompts.push(Prompt {
                after,
                text: text.clone(),
                cut: prompt_chars.is_some(),
            });
        }
    }
    prompts
}

/// `--redrive`: the recorded prompts, with their recorded timing (or `--asap`), sent through the
/// current configuration, with the console watching — so an operator sees what other breaker or
/// timeout settings would have done. `--record` records the result like any session.
async fn redrive(cli: &Cli, args: &ReplayArgs) -> Result<i32> {
    let reader = Reader::open(&args.file)?;
    if reader.header().redacted {
        bail!(
            "{} was recorded with --redact-content: it holds no prompts to send again",
            args.file.display()
        );
    }
    let prompts = recorded_prompts(reader);
    if prompts.is_empty() {
        bail!("{} holds no prompts to send again", args.file.display());
    }
    let cut = prompts.iter().filter(|p| p.cut).count();
    if cut > 0 {
        eprintln!(
            "breakerbox: {cut} of {} prompts were recorded as their first {} bytes (events carry no more); they are sent as recorded",
            prompts.len(),
            crate::event::PROMPT_EXCERPT_BYTES
        );
    }
    let asap = args.asap;
    super::console::run_with(cli, move |controller| {
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            for prompt in prompts {
                if !asap {
                    tokio::time::sleep_until(started + prompt.after).await;
                }
                controller.send_prompt(&prompt.text);
            }
        });
    })
    .await
}

/// Write to stdout; a closed pipe (`| head`) ends quietly.
fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
