//! `breakerbox ask`. (Being written.)
use color_eyre::eyre::Result;
pub async fn run(_c: &crate::cli::CommonArgs, _a: &crate::cli::AskArgs) -> Result<i32> {
    Ok(1)
}
pub fn no_console_yet() -> Result<i32> {
    Ok(2)
}
