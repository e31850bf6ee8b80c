//! `phivault import`: FHIR Bundles (JSON), single resources and NDJSON files or folders.
//!
//! Batch bundles (shared infrastructure such as Synthea's hospital and practitioner files)
//! load first, so that patient transactions can resolve conditional references to them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use phivault_service::Records;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::progress;

/// NDJSON lines sent per batch (one durable commit per batch).
const NDJSON_BATCH: usize = 500;

/// Totals of an import.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub files: usize,
    pub created: u64,
    pub existing: u64,
    pub failed: u64,
    /// Files or lines that failed, with a PHI-free reason.
    pub problems: Vec<String>,
    pub elapsed: Duration,
}

impl ImportSummary {
    /// Resources written or matched per second.
    pub fn rate(&self) -> f64 {
        (self.created + self.existing) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    entry: Option<Vec<serde::de::IgnoredAny>>,
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        let mut children: Vec<PathBuf> = std::fs::read_dir(path)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for child in children {
            if child.is_dir() || matches!(child.extension().and_then(|e| e.to_str()), Some("json" | "ndjson")) {
                collect_files(&child, out)?;
            }
        }
    } else {
        out.push(path.to_owned());
    }
    Ok(())
}

/// Imports every file under `paths`.
pub async fn import_paths(records: &Records, paths: &[PathBuf]) -> Result<ImportSummary> {
    let started = Instant::now();
    let mut files = Vec::new();
    for path in paths {
        collect_files(path, &mut files)?;
    }
    // Classify cheaply (entries are skipped, not built) to order batches first and size the bar.
    let mut plan: Vec<(u8, PathBuf, u64)> = Vec::new();
    for file in files {
        if file.extension().and_then(|e| e.to_str()) == Some("ndjson") {
            let lines = std::fs::read(&file).map(|b| b.iter().filter(|c| **c == b'\n').count() as u64).unwrap_or(0);
            plan.push((2, file, lines));
            continue;
        }
        let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let (rank, count) = match serde_json::from_slice::<Head>(&bytes) {
            Ok(head) if head.resource_type.as_deref() == Some("Bundle") => {
                (if head.kind.as_deref() == Some("batch") { 0 } else { 1 }, head.entry.map_or(0, |e| e.len() as u64))
            }
            _ => (1, 1),
        };
        plan.push((rank, file, count));
    }
    plan.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let bar = progress::bar(plan.iter().map(|p| p.2).sum(), "importing");
    let mut summary = ImportSummary { files: plan.len(), ..ImportSummary::default() };
    for (_, file, _) in &plan {
        if file.extension().and_then(|e| e.to_str()) == Some("ndjson") {
            import_ndjson(records, file, &mut summary, &bar).await?;
        } else {
            let bytes = std::fs::read(file)?;
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(value) => import_value(records, value, &file.display().to_string(), &mut summary, &bar).await,
                Err(e) => {
                    summary.failed += 1;
                    summary.problems.push(format!(
                        "{}: not valid JSON (line {}, column {})",
                        file.display(),
                        e.line(),
                        e.column()
                    ));
                }
            }
        }
    }
    bar.finish_and_clear();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Imports one parsed Bundle or resource.
pub async fn import_value(
    records: &Records,
    value: Value,
    label: &str,
    summary: &mut ImportSummary,
    bar: &indicatif::ProgressBar,
) {
    let is_bundle = value.get("resourceType").and_then(Value::as_str) == Some("Bundle");
    let is_processable = matches!(value.get("type").and_then(Value::as_str), Some("batch" | "transaction"));
    if is_bundle && is_processable {
        let entries = value.get("entry").and_then(Value::as_array).map_or(0, |e| e.len() as u64);
        match records.process_bundle(value).await {
            Ok(bundle) => {
                for (i, entry) in bundle.entries.iter().enumerate() {
                    match entry {
                        Ok(done) if done.created => summary.created += 1,
                        Ok(_) => summary.existing += 1,
                        Err(e) => {
                            summary.failed += 1;
                            summary.problems.push(format!("{label}: entry {i}: {e}"));
                        }
                    }
                }
            }
            Err(e) => {
                summary.failed += entries;
                summary.problems.push(format!("{label}: refused: {e}"));
            }
        }
        bar.inc(entries);
        return;
    }
    let resource_type = value.get("resourceType").and_then(Value::as_str).unwrap_or_default().to_owned();
    match records.create(&resource_type, value, None).await {
        Ok(_) => summary.created += 1,
        Err(e) => {
            summary.failed += 1;
            summary.problems.push(format!("{label}: {e}"));
        }
    }
    bar.inc(1);
}

async fn import_ndjson(
    records: &Records,
    file: &Path,
    summary: &mut ImportSummary,
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {} as UTF-8", file.display()))?;
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(resource) => {
                let rtype = resource.get("resourceType").and_then(Value::as_str).unwrap_or_default().to_owned();
                // Keep the file's ids (PUT) so references between NDJSON files stay valid.
                let request = match resource.get("id").and_then(Value::as_str) {
                    Some(id) => json!({"method": "PUT", "url": format!("{rtype}/{id}")}),
                    None => json!({"method": "POST", "url": rtype}),
                };
                entries.push(json!({"resource": resource, "request": request}));
            }
            Err(e) => {
                summary.failed += 1;
                summary.problems.push(format!(
                    "{}: line {}: not valid JSON (column {})",
                    file.display(),
                    n + 1,
                    e.column()
                ));
            }
        }
        if entries.len() >= NDJSON_BATCH {
            let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": std::mem::take(&mut entries)});
            import_value(records, batch, &file.display().to_string(), summary, bar).await;
        }
    }
    if !entries.is_empty() {
        let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
        import_value(records, batch, &file.display().to_string(), summary, bar).await;
    }
    Ok(())
}
