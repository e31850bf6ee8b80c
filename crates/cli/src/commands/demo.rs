//! `phivault demo`: a throwaway data dir full of obviously fake patients, served on
//! https://127.0.0.1:8443.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::serve::serve;

use super::import::{ImportSummary, import_paths, import_value};
use super::init::{InitOptions, init};
use crate::config::Config;
use crate::{progress, wiring};

/// Where the Synthea samples are looked for when `--samples` is not given.
const SAMPLE_CANDIDATES: [&str; 2] = ["../shared/fhir-samples/synthea", "shared/fhir-samples/synthea"];

/// Creates and loads a demo data dir; returns its config and what was loaded.
pub async fn prepare(data_dir: &Path, samples: Option<&Path>) -> Result<(Config, ImportSummary, Option<PathBuf>)> {
    init(&InitOptions { data_dir: data_dir.to_owned(), insecure_dev_keys: true, database: None, hsm: None }).await?;
    let config = Config::load(data_dir)?;
    let services = wiring::open(&config).await?;
    let bundles = phivault_demo::fake_patient_bundles();
    let bar = progress::bar(bundles.len() as u64, "demo data");
    let mut summary = ImportSummary::default();
    let started = std::time::Instant::now();
    for bundle in bundles {
        import_value(&services.records, bundle, "demo patients", &mut summary, &bar).await;
    }
    bar.finish_and_clear();
    summary.elapsed = started.elapsed();
    let samples =
        samples.map(Path::to_owned).or_else(|| SAMPLE_CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_dir()));
    if let Some(dir) = &samples {
        let synthea = import_paths(&services.records, std::slice::from_ref(dir)).await?;
        summary.created += synthea.created;
        summary.existing += synthea.existing;
        summary.failed += synthea.failed;
        summary.problems.extend(synthea.problems);
        summary.files += synthea.files;
        summary.elapsed += synthea.elapsed;
    }
    services.store.close().await;
    Ok((config, summary, samples))
}

/// Prepares the demo data dir, reports what was loaded, and serves it on `listen` unless
/// `no_serve`.
pub async fn run(dir: &Path, samples: Option<&Path>, listen: &str, no_serve: bool) -> Result<()> {
    let (mut config, summary, samples) = prepare(dir, samples).await?;
    println!("demo data dir: {} (throwaway; keys are NOT sealed)", dir.display());
    println!(
        "loaded {} resources ({} already present, {} failed){}",
        summary.created,
        summary.existing,
        summary.failed,
        samples.map(|s| format!(", including Synthea samples from {}", s.display())).unwrap_or_default()
    );
    for problem in summary.problems.iter().take(10) {
        eprintln!("  {problem}");
    }
    if no_serve {
        return Ok(());
    }
    config.server.listen = listen.to_owned();
    config.server.public_base_url = format!("https://{listen}");
    println!("open https://{listen}/fhir/Patient?family=Duck (self-signed certificate: accept it, or use curl -k)");
    let services = wiring::open(&config).await?;
    serve(&config, services).await
}
