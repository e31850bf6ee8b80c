//! Running the `phivault` binary in tests.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::Path;
use std::process::{Command, Output};

/// `phivault --data-dir DIR ARGS`, with no passphrase in its environment (for data dirs
/// made with `--insecure-dev-keys`) and progress bars off.
pub fn phivault(data_dir: &Path, args: &[&str]) -> Output {
    phivault_with(data_dir, args, None)
}

/// [`phivault`] with `PHIVAULT_PASSPHRASE` set to `passphrase`, when given.
pub fn phivault_with(data_dir: &Path, args: &[&str], passphrase: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_phivault"));
    command.arg("--data-dir").arg(data_dir).args(args).env("CI", "true").env_remove("PHIVAULT_PASSPHRASE_FILE");
    match passphrase {
        Some(p) => command.env("PHIVAULT_PASSPHRASE", p),
        None => command.env_remove("PHIVAULT_PASSPHRASE"),
    };
    command.output().expect("run phivault")
}

/// Everything the command printed, stdout then stderr.
pub fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}
