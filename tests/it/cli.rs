//! The command line documents itself: help that shows no empty variable, completion scripts for
//! bash, zsh and fish, and man pages, all from the one definition.

use std::process::{Command, Output};

fn breakerbox(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_breakerbox"))
        .args(args)
        .env_remove("BREAKERBOX_CONFIG")
        .env_remove("BREAKERBOX_TOKEN")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "breakerbox {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(args: &[&str]) -> String {
    String::from_utf8(breakerbox(args).stdout).unwrap()
}

#[test]
fn help_names_the_variables_without_an_empty_value() {
    for args in [&["--help"][..], &["serve", "--help"], &["attach", "--help"]] {
        let help = stdout(args);
        assert!(
            help.contains("[env: BREAKERBOX_CONFIG]"),
            "{args:?}: {help}"
        );
        assert!(!help.contains("=]"), "{args:?}: {help}");
    }
    // A value set is not shown either (the token's never is).
    let output = Command::new(env!("CARGO_BIN_EXE_breakerbox"))
        .args(["serve", "--help"])
        .env("BREAKERBOX_TOKEN", "s3cret-token-value")
        .env("BREAKERBOX_CONFIG", "/somewhere/breakerbox.toml")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(!help.contains("s3cret-token-value"), "{help}");
    assert!(!help.contains("/somewhere"), "{help}");
}

#[test]
fn completion_scripts_cover_every_command_and_flag() {
    for (shell, marker) in [
        ("bash", "complete -F _breakerbox"),
        ("zsh", "#compdef breakerbox"),
        ("fish", "complete -c breakerbox"),
    ] {
        let script = stdout(&["completions", shell]);
        assert!(script.contains(marker), "{shell}: {}", &script[..200]);
        for word in [
            "serve",
            "replay",
            "attach",
            "fault",
            "scenario",
            "no-record",
        ] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_breakerbox"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("bash") && err.contains("fish"), "{err}");
}

#[test]
fn the_man_pages_come_from_the_command_line_itself() {
    let page = stdout(&["man"]);
    assert!(page.contains(".TH breakerbox 1"), "{page}");
    for command in ["ask", "sim", "replay", "serve", "attach"] {
        assert!(page.contains(command), "breakerbox(1) lists {command}");
    }
    assert!(page.contains("\\-\\-config"), "the global flags are there");

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("man-{}", std::process::id()));
    stdout(&["man", "--dir", dir.to_str().unwrap()]);
    let serve = std::fs::read_to_string(dir.join("breakerbox-serve.1")).unwrap();
    assert!(serve.contains(".TH breakerbox-serve 1"), "{serve}");
    assert!(serve.contains("\\-\\-listen"), "{serve}");
    assert!(dir.join("breakerbox.1").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}
