//! The standalone audit verifier: checks an exported phivault audit log against the signed
//! checkpoints of a witness file, with only the public key. It reads no database and holds
//! no secret; an auditor can run it on their own machine.
//!
//! Usage: phivault-audit-verify --log EXPORT.jsonl --witness WITNESS.jsonl --public-key KEY.pub
//!        [--archive ARCHIVE.jsonl ...]
//!
//! Exit codes: 0 intact (at least one checkpoint verified, when there are entries), 1 not
//! intact, 2 bad usage or unreadable input, 3 not verified (no checkpoint verifies under the
//! key: the same verdict as `phivault audit verify`).
//!
//! Archive files (from `phivault audit archive`) supply the content of archived entries,
//! which the export holds as hashes only.

use std::io::BufRead;
use std::process::ExitCode;

use phivault_audit::Checkpoint;
use phivault_audit::checkpoint::{parse_public_key, parse_witness};
use phivault_audit::export::parse_line;

fn usage() -> ExitCode {
    eprintln!(
        "usage: phivault-audit-verify --log EXPORT.jsonl --witness WITNESS.jsonl --public-key KEY.pub [--archive FILE ...]"
    );
    ExitCode::from(2)
}

/// The command line, read strictly: each of `--log`, `--witness` and `--public-key` exactly
/// once, `--archive` any number of times, every flag followed by a value that is not a flag,
/// and nothing else (a mistyped flag must not be ignored by a verifier).
struct Args {
    log: String,
    witness: String,
    key: String,
    archives: Vec<String>,
}

fn parse_args(args: &[String]) -> Option<Args> {
    let (mut log, mut witness, mut key, mut archives) = (None, None, None, Vec::new());
    let mut words = args.iter();
    while let Some(flag) = words.next() {
        let value = words.next().filter(|v| !v.starts_with("--"))?.clone();
        let once = |slot: &mut Option<String>| slot.replace(value.clone()).is_none();
        let fresh = match flag.as_str() {
            "--log" => once(&mut log),
            "--witness" => once(&mut witness),
            "--public-key" => once(&mut key),
            "--archive" => {
                archives.push(value.clone());
                true
            }
            _ => false,
        };
        if !fresh {
            return None;
        }
    }
    Some(Args { log: log?, witness: witness?, key: key?, archives })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(Args { log, witness, key, archives }) = parse_args(&args) else {
        return usage();
    };
    let Some(key) = std::fs::read_to_string(&key).ok().as_deref().and_then(parse_public_key) else {
        eprintln!("error: {key} is not a base64 Ed25519 public key");
        return ExitCode::from(2);
    };
    let checkpoints: Vec<Checkpoint> = match std::fs::read_to_string(&witness).map(|t| parse_witness(&t)) {
        Ok(Ok(checkpoints)) => checkpoints,
        Ok(Err(line)) => {
            eprintln!("error: {witness} line {line} is not a checkpoint");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: cannot read {witness}: {e}");
            return ExitCode::from(2);
        }
    };
    let file = match std::fs::File::open(&log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot read {log}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut entries = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let Ok(line) = line else {
            eprintln!("error: cannot read {log}");
            return ExitCode::from(2);
        };
        match parse_line(&line) {
            Some(e) => entries.push(e),
            None => {
                println!("NOT INTACT: line {} of the export is malformed", i + 1);
                return ExitCode::from(1);
            }
        }
    }
    for path in &archives {
        let Ok(text) = std::fs::read_to_string(path) else {
            eprintln!("error: cannot read {path}");
            return ExitCode::from(2);
        };
        let mut archived = Vec::new();
        for (i, line) in text.lines().enumerate() {
            match parse_line(line) {
                Some(e) => archived.push(e),
                None => {
                    println!("NOT INTACT: line {} of the archive {path} is malformed", i + 1);
                    return ExitCode::from(1);
                }
            }
        }
        phivault_audit::export::fill_from_archive(&mut entries, archived);
    }
    let report = phivault_audit::verify(entries, &checkpoints, &key);
    println!("entries: {}", report.entries);
    if report.archived > 0 {
        println!("archived entries not checked (no --archive file held them): {}", report.archived);
    }
    println!("checkpoints verified: {} of {}", report.checkpoints_verified, checkpoints.len());
    if report.checkpoints_other_keys > 0 {
        println!(
            "checkpoints signed by other keys, not checked: {} (give every node the same audit signing key)",
            report.checkpoints_other_keys
        );
    }
    println!("root: {}", report.root);
    match report.first_problem {
        Some((seq, why)) => {
            println!("NOT INTACT: {why} (first bad entry #{seq})");
            ExitCode::from(1)
        }
        // Fail closed: a hash chain alone proves nothing (whoever controls the database can
        // recompute it); only a checkpoint signed under the auditor's key does.
        None if !report.is_verified() => {
            println!(
                "NOT verified: no checkpoint verifies under this public key, so nothing proves these {} entries \
                 were not rewritten",
                report.entries
            );
            ExitCode::from(3)
        }
        None => {
            println!("intact");
            ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &str) -> Option<Vec<String>> {
        let args: Vec<String> = words.split_whitespace().map(str::to_owned).collect();
        parse_args(&args).map(|a| [vec![a.log, a.witness, a.key], a.archives].concat())
    }

    #[test]
    fn the_command_line_is_read_strictly() {
        assert_eq!(
            parse("--log l --witness w --public-key k --archive a --archive b"),
            Some(["l", "w", "k", "a", "b"].map(String::from).to_vec())
        );
        for bad in [
            "--log l --witness w",                            // a required flag missing
            "--log l --witness w --public-key k --log other", // given twice
            "--log l --witness w --public-key k --archiv a",  // mistyped
            "--log --witness w --public-key k",               // a flag where a value belongs
            "--log l --witness w --public-key k extra",       // a stray word
            "--log l --witness w --public-key",               // no value
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
