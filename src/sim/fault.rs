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
