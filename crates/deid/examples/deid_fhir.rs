//! Measures FHIR de-identification speed on Synthea bundles.
//!
//! ```text
//! cargo run --release -p phivault-deid --example deid_fhir -- [DIR] [--runs N] [--profile NAME] [--show TYPE]
//! ```
//!
//! DIR defaults to `<repo>/../shared/fhir-samples/synthea`. Every bundle is
//! parsed once up front; the timed part is `Deidentifier::deidentify` on
//! each whole bundle, run N times (default 3) on one thread. `--show TYPE`
//! prints the first de-identified resource of that type from the first
//! bundle, for eyeballing.

use std::path::PathBuf;
use std::time::Instant;

use phivault_deid::fhir::{Deidentifier, Profile};
use serde_json::Value;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fhir-samples/synthea");
    let (mut runs, mut profile, mut show) = (3usize, "safe-harbor".to_string(), None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().ok_or("--runs needs a number")?.parse()?,
            "--profile" => profile = args.next().ok_or("--profile needs a name")?,
            "--show" => show = Some(args.next().ok_or("--show needs a resource type")?),
            _ => dir = PathBuf::from(a),
        }
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut bundles = Vec::new();
    let (mut resources, mut bytes) = (0usize, 0usize);
    for p in &paths {
        let text = std::fs::read_to_string(p)?;
        bytes += text.len();
        let v: Value = serde_json::from_str(&text)?;
        resources += v["entry"].as_array().map_or(0, Vec::len);
        bundles.push(v);
    }
    let t = Instant::now();
    let profile = Profile::named(&profile)?;
    let d = Deidentifier::new(profile, b"deid_fhir example key");
    println!("built de-identifier in {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    println!("{} bundles, {resources} resources, {:.1} MB of JSON", bundles.len(), bytes as f64 / 1e6);
    if let (Some(ty), Some(first)) = (&show, bundles.first()) {
        let out = d.deidentify(first)?;
        let hit = out["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| &e["resource"])
            .find(|r| r["resourceType"] == ty.as_str());
        println!("{}", serde_json::to_string_pretty(&hit.unwrap_or(&Value::Null))?);
    }
    let mut rates = Vec::new();
    for run in 0..runs {
        let t = Instant::now();
        for b in &bundles {
            d.deidentify(b)?;
        }
        let s = t.elapsed().as_secs_f64();
        println!("run {run}: {s:.2} s, {:.0} resources/s, {:.2} MB/s", resources as f64 / s, bytes as f64 / 1e6 / s);
        rates.push(resources as f64 / s);
    }
    rates.sort_by(f64::total_cmp);
    if let Some(m) = rates.get(rates.len() / 2) {
        println!("median: {m:.0} resources/s");
    }
    Ok(())
}
