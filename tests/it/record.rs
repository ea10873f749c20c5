//! Recordings: what is written is exactly what was on the bus, secrets and (on request) content never
//! reach the file, a SIGKILLed recorder leaves a readable file, and every kind of bad input gets a
//! clear message naming the file and line, never a panic.

use crate::support::demo_config::FAST_SIM;
use crate::support::events::session_started;
use futures::StreamExt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use breakerbox::cli::CommonArgs;
use breakerbox::config::Config;
use breakerbox::engine::failover::{FailoverEngine, RequestMeta};
use breakerbox::event::{Bus, Event, EventKind, Source};
use breakerbox::provider::Request;
use breakerbox::record::reader::{MAX_LINE, Reader, read_events};
use breakerbox::record::writer::{Recorder, session_header};
use breakerbox::session::setup::{self, Setup};

const CONFIG: &str = r#"
[timeouts]
connect = "500ms"
headers = "500ms"
first_event = "500ms"
idle = "500ms"
total = "10s"

[retry]
max_retries = 0
min_delay = "10ms"
max_delay = "20ms"
jitter = false

[breaker]
consecutive_failures = 2

[sim]
seed = 3
"#;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bb-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

async fn demo(bus: &Bus) -> (Config, Setup, FailoverEngine) {
    let config = Config::parse(&format!("{CONFIG}{FAST_SIM}"), "test config").unwrap();
    let common = CommonArgs {
        demo: true,
        ..CommonArgs::default()
    };
    let setup = setup::build(&common, &config, bus.clone(), &|_| None)
        .await
        .unwrap();
    let engine = setup.engine(None).unwrap();
    (config, setup, engine)
}

/// Send `prompt` `n` times, one after another, to the end of each stream.
async fn send(engine: &FailoverEngine, prompt: &str, n: usize) {
    for _ in 0..n {
        let meta = RequestMeta {
            prompt: Some(prompt.to_string()),
            ..RequestMeta::new(Source::Prompt)
        };
        let (_, mut stream) = engine.send(Request::prompt(prompt), meta);
        tokio::time::timeout(Duration::from_secs(20), async {
            while stream.next().await.is_some() {}
        })
        .await
        .expect("the engine never hangs");
    }
}

/// Record a demo session: `n` requests with a failing primary (so attempts fail, the breaker
/// opens, requests fail over). A server error rather than a 429: a 429's rate-limit headers would
/// throttle the primary and steer requests past it before its breaker opened, and lift the
/// throttling a second later, after the requests. Returns the events seen by a direct bus
/// subscription.
async fn record_demo(path: &Path, redact: bool, prompt: &str, n: usize) -> Vec<Event> {
    let bus = Bus::new(1 << 16);
    let mut direct = bus.subscribe();
    let (config, setup, engine) = demo(&bus).await;
    setup
        .sim
        .as_ref()
        .unwrap()
        .set_fault("anthropic", "server_error".parse().unwrap())
        .unwrap();
    let header = session_header(setup.mode, &setup.infos, &config, &|_| None, redact);
    let recorder = Recorder::start(path, &header, &bus, redact).unwrap();
    bus.publish(session_started(setup.mode, setup.infos.clone(), Some(2)));
    send(&engine, prompt, n).await;
    let summary = recorder.finish().await;
    assert_eq!(summary.lost, 0);
    assert_eq!(summary.error, None);
    let mut seen = Vec::new();
    while let Ok(e) = direct.try_recv() {
        seen.push((*e).clone());
    }
    assert_eq!(summary.events, seen.len() as u64);
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recording_holds_exactly_the_events_on_the_bus() {
    let path = temp("exact.jsonl");
    let seen = record_demo(&path, false, "tell me about breakers", 4).await;
    let types: Vec<&str> = seen.iter().map(|e| e.kind.type_name()).collect();
    for ty in [
        "attempt_failed",
        "breaker_changed",
        "attempt_skipped",
        "text_delta",
    ] {
        assert!(
            types.contains(&ty),
            "the session should include {ty}: {types:?}"
        );
    }

    // Byte for byte: line N+1 is the bus's event N serialized.
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(text.ends_with('\n'));
    assert_eq!(lines.len(), seen.len() + 1);
    for (line, event) in lines[1..].iter().zip(&seen) {
        assert_eq!(*line, serde_json::to_string(event).unwrap());
    }

    let (header, events, warnings) = read_events(&path).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(header.format, "breakerbox-session");
    assert_eq!(header.format_version, 1);
    assert_eq!(header.breakerbox_version, env!("CARGO_PKG_VERSION"));
    assert!(!header.redacted);
    assert_eq!(header.providers.len(), 2);
    assert_eq!(events.len(), seen.len());
    for (read, bus) in events.iter().zip(&seen) {
        assert_eq!(read.seq, bus.seq);
        // The same as the bus's event through JSON: serde_json (without its `float_roundtrip`
        // feature) may parse a cost 1 ULP off the value it printed, so compare like with like.
        let via_json: Event = serde_json::from_str(&serde_json::to_string(bus).unwrap()).unwrap();
        assert_eq!(read, &via_json);
    }
    let _ = std::fs::remove_file(&path);
}

#[tokio::test(flavor = "multi_thread")]
async fn redact_content_leaves_out_prompts_and_replies() {
    let path = temp("redacted.jsonl");
    let prompt = "PROMPT-MARKER-qwxz";
    let seen = record_demo(&path, true, prompt, 2).await;
    let reply: String = seen
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::TextDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(reply.len() > 20, "the session had a reply: {reply:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(prompt), "the prompt was recorded");
    let (header, events, warnings) = read_events(&path).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(header.redacted);
    assert_eq!(events.len(), seen.len());
    let mut deltas = 0;
    for e in &events {
        match &e.kind {
            EventKind::TextDelta { text, .. } => {
                deltas += 1;
                assert!(text.is_empty(), "reply text recorded: {text:?}");
            }
            EventKind::RequestStarted { prompt, .. } => assert_eq!(prompt, &None),
            _ => {}
        }
    }
    assert!(deltas > 0, "text deltas are still recorded (without text)");
    // Every word of the reply longer than a few letters is absent from the file.
    for word in reply.split_whitespace().filter(|w| w.len() > 9) {
        assert!(!text.contains(word), "reply text `{word}` was recorded");
    }
    let _ = std::fs::remove_file(&path);
}

/// Real-provider mode against the simulator with a secret key in the environment: neither the key
/// nor its parts may reach the recording.
#[tokio::test(flavor = "multi_thread")]
async fn the_recording_holds_no_secret() {
    use crate::support::sim::{self, fast};
    use breakerbox::provider::Protocol;
    use breakerbox::sim::SimConfig;
    let sim = sim::start(SimConfig {
        providers: vec![
            fast("anthropic", Protocol::Anthropic),
            fast("openai", Protocol::Openai),
        ],
        seed: 1,
    })
    .await;
    let anthropic_url = sim.base_url("anthropic").unwrap();
    let openai_url = sim.base_url("openai").unwrap();
    let env = move |var: &str| match var {
        "ANTHROPIC_API_KEY" => Some("sk-test-SECRET-anthropic".to_string()),
        "OPENAI_API_KEY" => Some("sk-test-SECRET-openai".to_string()),
        "ANTHROPIC_BASE_URL" => Some(anthropic_url.clone()),
        "OPENAI_BASE_URL" => Some(openai_url.clone()),
        _ => None,
    };
    let config = Config::parse("", "empty config").unwrap();
    let bus = Bus::new(1 << 16);
    let setup = setup::build(&CommonArgs::default(), &config, bus.clone(), &env)
        .await
        .unwrap();
    let engine = setup.engine(None).unwrap();
    let path = temp("secret.jsonl");
    let header = session_header(setup.mode, &setup.infos, &config, &env, false);
    let recorder = Recorder::start(&path, &header, &bus, false).unwrap();
    sim.set_fault("anthropic", "auth".parse().unwrap()).unwrap();
    send(&engine, "hi", 2).await;
    recorder.finish().await;

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("SECRET"), "a key reached the recording");
    let (header, events, _) = read_events(&path).unwrap();
    assert!(events.len() > 5);
    let config = header.config.to_string();
    // What the reader needs is there: the variables' names and where requests went.
    assert!(config.contains("ANTHROPIC_API_KEY"), "{config}");
    assert!(config.contains("127.0.0.1"), "{config}");
    let _ = std::fs::remove_file(&path);
}

fn breakerbox() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_breakerbox"));
    cmd.env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("BREAKERBOX_CONFIG")
        .env("NO_COLOR", "1");
    cmd
}

#[test]
fn ask_record_writes_a_readable_session() {
    let path = temp("ask.jsonl");
    let out = breakerbox()
        .args(["ask", "--demo", "--record"])
        .arg(&path)
        .arg("hi")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (header, events, warnings) = read_events(&path).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(header.mode, breakerbox::event::Mode::Demo);
    assert!(!header.redacted);
    assert_eq!(events[0].kind.type_name(), "session_started");
    assert_eq!(events.last().unwrap().kind.type_name(), "request_finished");
    // Every event the engine published: sequence numbers without gaps. (Bus order may differ
    // from `seq` order where two tasks publish at once; the file keeps bus order.)
    let mut seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    let prompt = events.iter().find_map(|e| match &e.kind {
        EventKind::RequestStarted { prompt, .. } => prompt.clone(),
        _ => None,
    });
    assert_eq!(prompt.as_deref(), Some("hi"));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_sigkilled_recording_replays_up_to_the_kill() {
    let path = temp("killed.jsonl");
    let mut child = breakerbox()
        .args([
            "ask",
            "--demo",
            "--count",
            "50",
            "--interval",
            "20ms",
            "--record",
        ])
        .arg(&path)
        .arg("hi")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it mid-way: once the file has a good number of lines, but long before 50 requests end.
    let start = Instant::now();
    loop {
        let lines = std::fs::read(&path)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0);
        if lines > 30 || start.elapsed() > Duration::from_secs(10) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success(), "the process was killed mid-way");

    let bytes = std::fs::read(&path).unwrap();
    let complete = bytes.iter().filter(|&&c| c == b'\n').count();
    assert!(complete > 30, "only {complete} lines were flushed");
    let mut reader = Reader::open(&path).unwrap();
    let mut events = 0;
    let mut errors = Vec::new();
    for item in reader.by_ref() {
        match item {
            Ok(_) => events += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    // Every complete line is an event; only a torn last line may be skipped, and it says so.
    assert!(
        events >= complete - 1,
        "{events} events of {complete} lines"
    );
    assert!(errors.len() <= 1, "{errors:?}");
    if let Some(e) = errors.first() {
        assert!(e.contains("the last line is incomplete"), "{e}");
        assert!(!bytes.ends_with(b"\n"));
    }
    assert_eq!(reader.warnings(), errors.as_slice());
    let _ = std::fs::remove_file(&path);
}

const HEADER: &str = r#"{"format":"breakerbox-session","format_version":1,"breakerbox_version":"0.1.0","started_at":"2026-01-01T00:00:00Z","mode":"demo","providers":[{"name":"anthropic","protocol":"anthropic","model":"m"}],"config":{},"redacted":false}"#;

fn event_line(seq: u64) -> String {
    format!(
        r#"{{"ts":"2026-01-01T00:00:0{}.000Z","seq":{seq},"type":"operator_action","action":"trip","provider":"anthropic","detail":""}}"#,
        seq % 10
    )
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = temp(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn open_err(path: &Path) -> String {
    match Reader::open(path) {
        Ok(_) => panic!("{} should not open", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_files_are_refused_with_a_clear_message() {
    let empty = write("empty.jsonl", b"");
    let e = open_err(&empty);
    assert!(
        e.contains("empty.jsonl: the file is empty; not a recording"),
        "{e}"
    );

    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let binary = write("binary.jsonl", &garbage);
    let e = open_err(&binary);
    assert!(
        e.contains("binary.jsonl:1: not a breakerbox recording"),
        "{e}"
    );

    let other = write(
        "other.jsonl",
        b"{\"resourceSpans\":[]}\n{\"resourceSpans\":[]}\n",
    );
    let e = open_err(&other);
    assert!(
        e.contains("other.jsonl:1: not a breakerbox recording"),
        "{e}"
    );
    assert!(e.contains("line 1 should be its header"), "{e}");

    let wrong_format = write(
        "wrong.jsonl",
        b"{\"format\":\"har\",\"format_version\":1}\n",
    );
    let e = open_err(&wrong_format);
    assert!(e.contains("format is \"har\""), "{e}");

    let newer = HEADER.replace("\"format_version\":1", "\"format_version\":2");
    let newer = write("newer.jsonl", format!("{newer}\n").as_bytes());
    let e = open_err(&newer);
    assert!(
        e.contains("recorded by a newer breakerbox (format version 2)"),
        "{e}"
    );
    assert!(e.contains("upgrade breakerbox"), "{e}");

    let dir = std::env::temp_dir();
    let e = match Reader::open(&dir) {
        Ok(_) => panic!("a directory opened"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("is a directory"), "{e}");

    let missing = temp("no-such-file.jsonl");
    let e = open_err(&missing);
    assert!(e.contains("cannot open the recording"), "{e}");
}

#[test]
fn an_invalid_line_is_reported_with_its_number_and_reading_goes_on() {
    let text = format!(
        "{HEADER}\n{}\nthis is not json\n{}\n\u{0}\u{ff}\n{{\"ts\":\"2026-01-01T00:00:00.000Z\",\"seq\":9,\"type\":\"no_such_event\"}}\n{}\n",
        event_line(1),
        event_line(2),
        event_line(3)
    );
    let mut bytes = text.into_bytes();
    // Invalid UTF-8 on line 5.
    let at = bytes.windows(2).position(|w| w == [0xc3, 0xbf]).unwrap();
    bytes[at] = 0xff;
    let path = write("middle.jsonl", &bytes);
    let mut reader = Reader::open(&path).unwrap();
    let items: Vec<Result<Event, String>> = reader
        .by_ref()
        .map(|r| r.map_err(|e| e.to_string()))
        .collect();
    let seqs: Vec<u64> = items
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|e| e.seq))
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    let errors: Vec<&String> = items.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].contains("middle.jsonl:3: not a valid event"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("middle.jsonl:5: not valid UTF-8"),
        "{}",
        errors[1]
    );
    assert!(errors[2].contains("middle.jsonl:6:"), "{}", errors[2]);
    assert!(errors[2].contains("no_such_event"), "{}", errors[2]);
    assert_eq!(reader.warnings().len(), 3);
    assert_eq!(reader.warning_count(), 3);
}

#[test]
fn a_torn_last_line_is_reported_as_such_and_skipped() {
    let full = event_line(2);
    let text = format!("{HEADER}\n{}\n{}", event_line(1), &full[..full.len() / 2]);
    let path = write("torn.jsonl", text.as_bytes());
    let (_, events, warnings) = read_events(&path).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains(
            "torn.jsonl:3: the last line is incomplete (the recording was cut off); skipped"
        ),
        "{warnings:?}"
    );

    // A complete last event without its newline is still an event.
    let text = format!("{HEADER}\n{}\n{}", event_line(1), event_line(2));
    let path = write("no-newline.jsonl", text.as_bytes());
    let (_, events, warnings) = read_events(&path).unwrap();
    assert_eq!(events.len(), 2);
    assert!(warnings.is_empty());

    // Cut off inside the header: nothing to read, and it says why.
    let path = write("torn-header.jsonl", &HEADER.as_bytes()[..40]);
    let e = open_err(&path);
    assert!(e.contains("the header is incomplete"), "{e}");
}

#[test]
fn a_huge_line_is_skipped_without_holding_it() {
    let path = temp("huge.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(f, "{HEADER}").unwrap();
        writeln!(f, "{}", event_line(1)).unwrap();
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..20 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\n").unwrap();
        writeln!(f, "{}", event_line(2)).unwrap();
    }
    let mut reader = Reader::open(&path).unwrap();
    assert_eq!(reader.next().unwrap().unwrap().seq, 1);
    let e = reader.next().unwrap().unwrap_err().to_string();
    assert!(
        e.contains("huge.jsonl:3: the line is 20971520 bytes long"),
        "{e}"
    );
    assert!(e.contains(&format!("{} MiB limit", MAX_LINE >> 20)), "{e}");
    assert_eq!(reader.next().unwrap().unwrap().seq, 2);
    assert!(reader.next().is_none());
    let _ = std::fs::remove_file(&path);
}

/// What the operator saw live is what the replay shows: the dashboard folded from the bus and the
/// one folded from the recording are the same, to the last field.
#[tokio::test(flavor = "multi_thread")]
async fn record_then_replay_gives_the_same_dashboard() {
    let path = temp("same-dashboard.jsonl");
    let live_events = record_demo(&path, false, "What went wrong?", 6).await;
    let mut live = breakerbox::console::dashboard::Dashboard::new();
    for event in &live_events {
        live.apply(event);
    }
    let (_, replayed, warnings) = read_events(&path).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut replay = breakerbox::console::dashboard::Dashboard::new();
    for event in &replayed {
        replay.apply(event);
    }
    assert!(
        live.totals.requests == 6 && live.totals.failed_over > 0,
        "a real incident was recorded"
    );
    let (a, b) = (format!("{live:?}"), format!("{replay:?}"));
    if let Some(at) = a.chars().zip(b.chars()).position(|(x, y)| x != y) {
        let around = |s: &str| {
            s.chars()
                .skip(at.saturating_sub(80))
                .take(160)
                .collect::<String>()
        };
        panic!(
            "the replayed dashboard differs:\nlive:   …{}…\nreplay: …{}…",
            around(&a),
            around(&b)
        );
    }
    assert_eq!(a.len(), b.len());
}
