//! Fault kinds and their parameters. (Being written.)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
}

impl Fault {
    pub fn none() -> Self {
        Fault {
            kind: FaultKind::None,
        }
    }
}

// Placeholder parsing until the fault kinds land: only `none` is known.
impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Fault::none()),
            other => Err(format!("unknown fault `{other}`")),
        }
    }
}

/// Parse `NAME=KIND[:PARAMS]`.
pub fn parse_assignment(text: &str) -> Result<(String, Fault), String> {
    let (name, fault) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected NAME=KIND[:PARAMS]"))?;
    Ok((name.to_string(), fault.parse()?))
}
