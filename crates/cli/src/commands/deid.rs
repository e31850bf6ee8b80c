//! `phivault deid`: de-identifies files outside the server: clinical notes as plain text and
//! FHIR resources as NDJSON (one resource per line), by profile (Safe Harbor, limited data
//! set, or a custom TOML profile). Streams: memory stays flat whatever the file size.
//! Each output is written to a temporary file and renamed only when the whole input went
//! through, so nothing half-written is ever left.
//!
//! Safeguards: 45 CFR 164.514(a)-(b) de-identification; 164.514(e) limited data sets.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use phivault_deid::fhir::{Deidentifier, Profile};
use phivault_deid::{Replacement, Scrubber, ScrubberConfig, Surrogates};

use crate::progress;

/// Longest NDJSON line (one resource) accepted; a longer one is refused, not buffered.
const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;
/// Text is scrubbed in blocks of about this size, cut at line ends.
const TEXT_BLOCK_BYTES: usize = 256 * 1024;

/// What to de-identify and how.
#[derive(Debug)]
pub struct DeidOptions {
    pub inputs: Vec<PathBuf>,
    pub out_dir: PathBuf,
    /// `safe-harbor`, `limited-data-set`, or a path to a TOML profile.
    pub profile: String,
    /// A file of names (one per line) always redacted in free text: a roster of the
    /// patients and relatives in the input makes notes far safer, since a name that no
    /// dictionary knows and no cue announces can otherwise survive.
    pub names: Option<PathBuf>,
    /// File holding the project key (created, 32 random bytes, when missing): keyed
    /// pseudonyms are stable within one project and unlinkable across projects.
    pub key_file: PathBuf,
    /// Free text gets fake but consistent surrogates (keyed on the project key) instead of
    /// typed placeholders.
    pub surrogates: bool,
}

fn profile(name: &str) -> Result<Profile> {
    if Path::new(name).extension().is_some_and(|e| e == "toml") {
        let text = std::fs::read_to_string(name).with_context(|| format!("cannot read the profile {name}"))?;
        return Profile::from_toml(&text).with_context(|| format!("{name} is not a valid de-identification profile"));
    }
    Profile::named(name).context("profiles are safe-harbor, limited-data-set, or a .toml file")
}

/// The project key from `path`, created (mode 0600) when the file does not exist.
fn project_key(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= 32 => Ok(bytes),
        Ok(_) => bail!("{} is too short to be a project key (32 bytes or more)", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = vec![0u8; 32];
            aws_lc_rs::rand::fill(&mut key).map_err(|_| anyhow::anyhow!("the system random source failed"))?;
            crate::private_file::write_new(path, &key)
                .with_context(|| format!("cannot create the project key {}", path.display()))?;
            eprintln!("created a new project key in {} (keep it with the project)", path.display());
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the project key {}", path.display())),
    }
}

/// De-identifies every input into `out_dir` (same file names). Returns (files, units done).
pub fn run(options: &DeidOptions) -> Result<(usize, u64)> {
    let key = project_key(&options.key_file)?;
    let deidentifier = Deidentifier::new(profile(&options.profile)?, &key);
    // Surrogates are keyed apart from pseudonyms (their own HMAC domain), on the same key.
    let surrogates = options.surrogates.then(|| Surrogates::new(&key));
    let mut config = ScrubberConfig::default();
    if let Some(names) = &options.names {
        let text = std::fs::read_to_string(names).with_context(|| format!("cannot read {}", names.display()))?;
        config.deny = text.lines().flat_map(str::split_whitespace).map(str::to_owned).collect();
    }
    let scrubber = Scrubber::new(config);
    std::fs::create_dir_all(&options.out_dir)
        .with_context(|| format!("cannot create {}", options.out_dir.display()))?;
    let mut units = 0;
    for input in &options.inputs {
        let name = input.file_name().with_context(|| format!("{} is not a file", input.display()))?;
        let target = options.out_dir.join(name);
        if target == *input {
            bail!("{} would overwrite its input; choose another --out", target.display());
        }
        let size = std::fs::metadata(input).with_context(|| format!("cannot read {}", input.display()))?.len();
        let bar = progress::bar(size, "de-identify");
        let partial = target.with_extension("partial");
        let result = (|| -> Result<u64> {
            let reader = BufReader::new(std::fs::File::open(input)?);
            let mut writer = BufWriter::new(std::fs::File::create(&partial)?);
            let is_ndjson = input.extension().is_some_and(|e| e == "ndjson" || e == "jsonl");
            let done = if is_ndjson {
                ndjson(reader, &mut writer, &deidentifier, &bar)?
            } else {
                text(reader, &mut writer, &scrubber, surrogates.as_ref(), &bar)?
            };
            writer.flush()?;
            writer.get_ref().sync_all()?;
            Ok(done)
        })();
        bar.finish_and_clear();
        match result {
            Ok(done) => {
                std::fs::rename(&partial, &target)?;
                units += done;
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e.context(format!("{} was not de-identified; nothing was written for it", input.display())));
            }
        }
    }
    Ok((options.inputs.len(), units))
}

/// One resource per line; returns the number of resources.
fn ndjson(
    reader: impl BufRead,
    out: &mut impl Write,
    deid: &Deidentifier,
    bar: &indicatif::ProgressBar,
) -> Result<u64> {
    let mut count = 0;
    let mut reader = reader;
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let read = (&mut reader).take(MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        if line.len() > MAX_LINE_BYTES {
            bail!("line {number} is longer than {} MiB", MAX_LINE_BYTES / (1024 * 1024));
        }
        bar.inc(read as u64);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // The message names the line, never its content (it is PHI).
        let resource: serde_json::Value =
            serde_json::from_slice(&line).map_err(|_| anyhow::anyhow!("line {number} is not a JSON resource"))?;
        let clean = deid.deidentify(&resource).with_context(|| format!("line {number} cannot be de-identified"))?;
        serde_json::to_writer(&mut *out, &clean)?;
        out.write_all(b"\n")?;
        count += 1;
    }
    Ok(count)
}

/// Plain text in blocks cut at line ends; returns the number of bytes read.
fn text(
    reader: impl BufRead,
    out: &mut impl Write,
    scrubber: &Scrubber,
    surrogates: Option<&Surrogates>,
    bar: &indicatif::ProgressBar,
) -> Result<u64> {
    let mut reader = reader;
    let mut total = 0u64;
    let mut block = Vec::with_capacity(TEXT_BLOCK_BYTES + 4096);
    let mut line_number = 1u64;
    loop {
        block.clear();
        while block.len() < TEXT_BLOCK_BYTES {
            let read = (&mut reader).take(MAX_LINE_BYTES as u64).read_until(b'\n', &mut block)?;
            if read == 0 {
                break;
            }
        }
        if block.is_empty() {
            return Ok(total);
        }
        let text = std::str::from_utf8(&block).map_err(|e| {
            let line = line_number + block[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() as u64;
            anyhow::anyhow!("line {line} is not UTF-8 text")
        })?;
        let clean = match surrogates {
            Some(surrogates) => scrubber.redact_with_surrogates(text, surrogates),
            None => scrubber.redact(text, Replacement::TypedPlaceholder),
        };
        out.write_all(clean.as_bytes())?;
        line_number += block.iter().filter(|b| **b == b'\n').count() as u64;
        total += block.len() as u64;
        bar.inc(block.len() as u64);
    }
}
