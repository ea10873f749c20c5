//! Finding the interpreter with the official Python clients, for the SDK tests.

use std::process::Command;

/// `BREAKERBOX_REQUIRE_SDK=1` (CI): a missing SDK fails the test instead of skipping it.
pub fn required() -> bool {
    std::env::var("BREAKERBOX_REQUIRE_SDK").is_ok_and(|v| v == "1")
}

/// `$BREAKERBOX_SDK_PYTHON` (default `python3`) when it can import `anthropic` and `openai`. Else
/// `None` after a notice naming `test` — or a failure when the SDKs are required.
pub fn python_with_sdks(test: &str) -> Option<String> {
    python_importing(test, "anthropic, openai")
}

/// [`python_with_sdks`] for the interpreter that can import `modules` (`google.genai`).
pub fn python_importing(test: &str, modules: &str) -> Option<String> {
    let python = std::env::var("BREAKERBOX_SDK_PYTHON").unwrap_or_else(|_| "python3".into());
    let import = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output();
    if import.as_ref().is_ok_and(|o| o.status.success()) {
        return Some(python);
    }
    let why = match &import {
        // The last line of the traceback says what is missing.
        Ok(o) => String::from_utf8_lossy(&o.stderr)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string(),
        Err(e) => e.to_string(),
    };
    assert!(
        !required(),
        "BREAKERBOX_REQUIRE_SDK=1 but `{python}` cannot import {modules}: {why}"
    );
    eprintln!(
        "\n*** SKIPPED {test}: `{python}` cannot import {modules} ({why}).\n*** Install \
         them: pip install -r tests/sdk/requirements.txt, and point BREAKERBOX_SDK_PYTHON at that \
         interpreter.\n"
    );
    None
}
