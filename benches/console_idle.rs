//! CPU of the real console when idle: `breakerbox --demo` in a pseudo-terminal at 160×48, the
//! background load switched off (`l`), the screen left alone. CPU time is read from /proc before and
//! after a quiet spell (the demo's scenario still changes faults now and then, as it would live).
//!
//! Run: `cargo build --release && cargo bench --bench console_idle`.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark stops when its setup fails

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const QUIET: Duration = Duration::from_secs(10);

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of /proc/PID/stat: 12 and 13 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let binary = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/breakerbox");
    let binary = if binary.exists() {
        binary
    } else {
        env!("CARGO_BIN_EXE_breakerbox").into()
    };
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 48,
            cols: 160,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(&binary);
    cmd.arg("--demo");
    cmd.env("TERM", "xterm-256color");
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
    });
    let mut writer = pair.master.take_writer().unwrap();
    let pid = child.process_id().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    writer.write_all(b"l").unwrap(); // background load off
    writer.flush().unwrap();
    std::thread::sleep(Duration::from_secs(3)); // let the last requests finish
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    std::thread::sleep(QUIET);
    let (cpu1, wall) = (cpu_seconds(pid), t0.elapsed());
    println!(
        "console idle ({}): {:.2} % of one core over {:.0} s; RSS {:.1} MiB",
        binary.display(),
        100.0 * (cpu1 - cpu0) / wall.as_secs_f64(),
        wall.as_secs_f64(),
        rss_mib(pid)
    );
    writer.write_all(b"q").unwrap();
    writer.flush().unwrap();
    let _ = child.wait();
}
