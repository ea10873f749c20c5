//! The recording policy: when a session is written to a file, and what the operator is told.
//!
//! A console records by default (a new file in the sessions directory) unless `--no-record`, and a
//! recording that cannot start never stops it: the header says why instead. A command without a
//! screen (`ask`, a headless gateway) records only when asked, and then a recording that cannot
//! start is an error.

use color_eyre::eyre::Result;
use std::io::Write;

use super::setup::Setup;
use crate::cli::RecordArgs;
use crate::config::Config;
use crate::event::{Bus, Mode};
use crate::record::writer::{
    Recorder, RecorderHandle, default_sessions_dir, session_file_name, session_header,
};

/// When to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Unless `--no-record`; where to is `--record`, else a new file in the sessions directory.
    ByDefault,
    /// Only with `--record FILE`.
    Asked,
}

/// A recording in progress (or why there is none).
pub struct Recording {
    pub recorder: Option<RecorderHandle>,
    /// What the console's header shows: the path, or "not recording: why"; `None` when off.
    pub shown: Option<String>,
}

impl Recording {
    /// Start recording `setup`'s session as `record` and `when` say. Call before the session's first
    /// event is published, so that the recording holds the whole session.
    pub fn start(
        record: &RecordArgs,
        when: When,
        mode: Mode,
        setup: &Setup,
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Recording> {
        let bus = &setup.shared.bus;
        let header = || session_header(mode, &setup.infos, config, env, record.redact_content);
        match when {
            When::Asked => Ok(match &record.record {
                Some(path) => Recording {
                    recorder: Some(Recorder::start(
                        path,
                        &header(),
                        bus,
                        record.redact_content,
                    )?),
                    shown: Some(path.display().to_string()),
                },
                None => Recording::off(),
            }),
            When::ByDefault => Ok(by_default(record, bus, &header())),
        }
    }

    fn off() -> Recording {
        Recording {
            recorder: None,
            shown: None,
        }
    }

    /// Flush and close the recording, and say where it is (a failure was already reported).
    /// Whether it is whole: written without error and without events lost to lag.
    pub async fn finish(self) -> bool {
        let Some(recorder) = self.recorder else {
            return true;
        };
        let path = recorder.path().display().to_string();
        let summary = recorder.finish().await;
        if summary.error.is_none() {
            // After a hangup the terminal is gone: saying where the recording is cannot fail loudly.
            let _ = writeln!(std::io::stderr(), "breakerbox: session recorded to {path}");
        }
        summary.error.is_none() && summary.lost == 0
    }
}

/// A console's recording: never an error, the reason shown instead.
fn by_default(record: &RecordArgs, bus: &Bus, header: &crate::record::SessionHeader) -> Recording {
    if record.no_record {
        return Recording::off();
    }
    let not = |why: String| Recording {
        recorder: None,
        shown: Some(format!("not recording: {why}")),
    };
    let path = match &record.record {
        Some(path) => path.clone(),
        None => {
            let dir = match default_sessions_dir() {
                Ok(dir) => dir,
                Err(why) => return not(why),
            };
            if let Err(e) = std::fs::create_dir_all(&dir) {
                return not(format!("cannot create {}: {e}", dir.display()));
            }
            dir.join(session_file_name(chrono::Utc::now()))
        }
    };
    match Recorder::start(&path, header, bus, record.redact_content) {
        Ok(recorder) => Recording {
            recorder: Some(recorder),
            shown: Some(path.display().to_string()),
        },
        Err(e) => not(e.to_string()),
    }
}
