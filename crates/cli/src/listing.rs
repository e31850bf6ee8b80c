//! Listings meant to be piped (`phivault user list | head`): written line by line to stdout,
//! and a reader that stops early (a closed pipe) ends the listing quietly instead of the
//! panic `println!` gives.

use std::io::Write;

/// Writes each line; a closed pipe stops the listing without error, other failures are
/// errors.
pub fn print_lines(lines: impl IntoIterator<Item = String>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for line in lines {
        match writeln!(out, "{line}") {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other?,
        }
    }
    match out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
