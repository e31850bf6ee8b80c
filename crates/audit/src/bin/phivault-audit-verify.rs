//! The standalone audit verifier: checks an exported phivault audit log against the signed
//! checkpoints of a witness file, with only the public key. It reads no database and holds
//! no secret; an auditor can run it on their own machine.
//!
//! Usage: phivault-audit-verify --log EXPORT.jsonl --witness WITNESS.jsonl --public-key KEY.pub

use std::io::BufRead;
use std::process::ExitCode;

use base64::Engine;
use phivault_audit::Checkpoint;
use phivault_audit::export::parse_line;

fn usage() -> ExitCode {
    eprintln!("usage: phivault-audit-verify --log EXPORT.jsonl --witness WITNESS.jsonl --public-key KEY.pub");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let (Some(log), Some(witness), Some(key)) = (value("--log"), value("--witness"), value("--public-key")) else {
        return usage();
    };
    let key = match std::fs::read_to_string(&key)
        .ok()
        .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t.trim()).ok())
    {
        Some(k) if k.len() == 32 => k,
        _ => {
            eprintln!("error: {key} is not a base64 Ed25519 public key");
            return ExitCode::from(2);
        }
    };
    let checkpoints: Vec<Checkpoint> = match std::fs::read_to_string(&witness) {
        Ok(text) => {
            let mut out = Vec::new();
            for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
                match serde_json::from_str(line) {
                    Ok(cp) => out.push(cp),
                    Err(_) => {
                        eprintln!("error: {witness} line {} is not a checkpoint", i + 1);
                        return ExitCode::from(2);
                    }
                }
            }
            out
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
    let report = phivault_audit::verify(entries, &checkpoints, &key);
    println!("entries: {}", report.entries);
    println!("checkpoints verified: {} of {}", report.checkpoints_verified, checkpoints.len());
    println!("root: {}", report.root);
    match report.first_problem {
        Some((seq, why)) => {
            println!("NOT INTACT: {why} (first bad entry #{seq})");
            ExitCode::from(1)
        }
        None => {
            println!("intact");
            ExitCode::SUCCESS
        }
    }
}
