//! What a check needs from outside the project, found where `.ci/run` installs it (or where the
//! environment says), and what to say when it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Software a check needs and cannot find: why, and the command that installs it.
#[derive(Debug, Clone)]
pub struct Missing {
    pub why: String,
    pub install: &'static str,
}

/// `BREAKERBOX_REQUIRE_SDK=1` (CI): a check whose software is missing fails instead of being
/// ignored.
pub fn required() -> bool {
    std::env::var("BREAKERBOX_REQUIRE_SDK").is_ok_and(|v| v == "1")
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The interpreter: `$BREAKERBOX_SDK_PYTHON`, else the venv `.ci/run` makes
/// (`target/sdk-venv`), else `python3`.
pub fn python() -> String {
    if let Some(python) = std::env::var_os("BREAKERBOX_SDK_PYTHON") {
        return python.to_string_lossy().into_owned();
    }
    let venv = manifest_dir().join("target/sdk-venv/bin/python");
    if venv.is_file() {
        return venv.to_string_lossy().into_owned();
    }
    "python3".to_string()
}

/// [`python`] when it can import every one of `modules`.
pub fn python_importing(modules: &[&str], install: &'static str) -> Result<String, Missing> {
    let python = python();
    let import = Command::new(&python)
        .args(["-c", &format!("import {}", modules.join(", "))])
        .output();
    let why = match &import {
        Ok(o) if o.status.success() => return Ok(python),
        // The last line of the traceback says what is missing.
        Ok(o) => String::from_utf8_lossy(&o.stderr)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string(),
        Err(e) => e.to_string(),
    };
    Err(Missing {
        why: format!("`{python}` cannot import {} ({why})", modules.join(", ")),
        install,
    })
}

/// The official Python clients (tests/sdk/requirements.txt).
pub fn python_sdks() -> Result<String, Missing> {
    python_importing(&["anthropic", "openai"], crate::PIP_SDKS)
}

/// The OpenAI Agents SDK (tests/agents/requirements.txt).
pub fn agents_sdk() -> Result<String, Missing> {
    python_importing(
        &["agents"],
        "bash .ci/run, or: target/sdk-venv/bin/pip install -r tests/agents/requirements.txt",
    )
}

/// `node` with the official JS clients installed in tests/sdk/js.
pub fn js_sdks() -> Result<PathBuf, Missing> {
    let dir = manifest_dir().join("tests/sdk/js");
    let install = "npm ci --prefix tests/sdk/js";
    let node = Command::new("node").arg("--version").output();
    let why = match &node {
        Err(e) => format!("`node` cannot run: {e}"),
        Ok(o) if !o.status.success() => "`node --version` failed".to_string(),
        Ok(_) => {
            let missing: Vec<&str> = ["openai", "@anthropic-ai/sdk"]
                .into_iter()
                .filter(|p| {
                    !dir.join("node_modules")
                        .join(p)
                        .join("package.json")
                        .is_file()
                })
                .collect();
            if missing.is_empty() {
                return Ok(dir);
            }
            format!("tests/sdk/js/node_modules lacks {}", missing.join(", "))
        }
    };
    Err(Missing { why, install })
}

/// An agent CLI installed by `npm ci --prefix tests/agents`, when `BIN --version` runs.
pub fn agent(bin: &str) -> Result<PathBuf, Missing> {
    let path = manifest_dir()
        .join("tests/agents/node_modules/.bin")
        .join(bin);
    let version = Command::new(&path).arg("--version").output();
    let why = match &version {
        Ok(o) if o.status.success() => return Ok(path),
        Ok(o) => format!(
            "`{} --version` failed ({}): {}",
            path.display(),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => format!("{} cannot run: {e}", path.display()),
    };
    Err(Missing {
        why,
        install: "npm ci --prefix tests/agents",
    })
}

/// `redis-server` (Debian's package), or `$BREAKERBOX_REDIS_SERVER`: the fleet checks start
/// their own on a free loopback port.
pub fn redis_server() -> Result<String, Missing> {
    let binary =
        std::env::var("BREAKERBOX_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string());
    let why = match Command::new(&binary).arg("--version").output() {
        Ok(o) if o.status.success() => return Ok(binary),
        Ok(o) => format!("`{binary} --version` failed ({})", o.status),
        Err(e) => format!("`{binary}` cannot run: {e}"),
    };
    Err(Missing {
        why,
        install: "apt-get install redis-server (Debian), or set BREAKERBOX_REDIS_SERVER",
    })
}
