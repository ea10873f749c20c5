//! The console's key bindings: the table itself lives in [`crate::keys`], where the config can
//! check its `[keys]` overrides without reaching into the console.

pub use crate::keys::*;
