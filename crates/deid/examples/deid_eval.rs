//! Reproducible accuracy and speed evaluation of phivault-deid.
//!
//! ```text
//! cargo run --release -p phivault-deid --example deid_eval -- \
//!     /work/shared/deid-corpus/physionet-deid-gold.jsonl [--errors FILE] [--runs N] \
//!     [--split odd|even] [--show-errors N] [--write-predictions FILE] [--score-predictions FILE]
//! ```
//!
//! `--split odd|even` keeps only the notes of patients with an odd (even)
//! id, so rules can be developed on one half and checked on the other.
//! `--show-errors N` prints the first N misses and the first N false
//! positives. `--score-predictions FILE` scores another tool's output
//! (JSONL, one `{"id": "<note id>", "spans": [{"start", "end"}]}` per
//! note, byte offsets) with the same scorer instead of running ours, so
//! every peer is measured by one rule. `--write-predictions FILE` writes
//! what was scored in that format (ids and offsets, no text), for unions
//! and other experiments.
//!
//! Scoring (see docs/DEID.md):
//! - span recall: a gold PHI span counts as found when any predicted span
//!   overlaps it (the usual lenient measure, and the one deid.pl reports);
//! - span precision: a predicted span is right when it overlaps a gold PHI
//!   span, wrong when it overlaps none; one that only overlaps a gold
//!   `YEAR` span is left out of both counts, because a bare year is not
//!   Safe Harbor PHI (keeping or removing it is neither a leak nor an error);
//! - token level (stricter): alphanumeric tokens of the text; a token is
//!   gold PHI when it overlaps a gold PHI span, predicted when it overlaps a
//!   predicted span. Character coverage is the share of gold PHI
//!   non-blank characters inside predicted spans.

#[path = "../tests/synth/mod.rs"]
mod synth;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use phivault_deid::{PhiKind, PhiSpan, Replacement, Scrubber, ScrubberConfig};

/// One gold annotation.
struct Gold {
    start: usize,
    end: usize,
    raw: String,
    phi: bool,
}

/// One corpus note.
struct Record {
    id: String,
    text: String,
    gold: Vec<Gold>,
}

fn load(path: &str) -> Result<Vec<Record>, String> {
    let data = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    let mut out = Vec::new();
    for (n, line) in data.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let text = v["text"].as_str().ok_or("record without text")?.to_string();
        let mut gold = Vec::new();
        // The offsets are character offsets, as in the PhysioNet corpus (pure
        // ASCII, so bytes too); other texts get a map to byte offsets.
        let byte_at: Vec<usize> = text.char_indices().map(|(b, _)| b).chain([text.len()]).collect();
        for s in v["spans"].as_array().ok_or("record without spans")? {
            let start = s["start"].as_u64().ok_or("span start")? as usize;
            let end = s["end"].as_u64().ok_or("span end")? as usize;
            let (Some(&start), Some(&end)) = (byte_at.get(start), byte_at.get(end)) else {
                return Err(format!("record {}: span {start}..{end} is outside the text", v["id"]));
            };
            gold.push(Gold {
                start,
                end,
                raw: s["raw"].as_str().unwrap_or("?").to_string(),
                phi: s["phi"].as_bool().unwrap_or(true),
            });
        }
        out.push(Record { id: v["id"].as_str().unwrap_or("?").to_string(), text, gold });
    }
    Ok(out)
}

/// The patient id of a note id `<pid>-<note>`.
fn patient(id: &str) -> u64 {
    id.split('-').next().and_then(|p| p.parse().ok()).unwrap_or(0)
}

/// Another tool's predictions: note id → spans (byte offsets).
fn load_predictions(path: &str) -> Result<BTreeMap<String, Vec<PhiSpan>>, String> {
    let data = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    let mut out = BTreeMap::new();
    for (n, line) in data.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("{path} line {}: {e}", n + 1))?;
        let id = v["id"].as_str().ok_or("prediction without id")?.to_string();
        let mut spans = Vec::new();
        for s in v["spans"].as_array().ok_or("prediction without spans")? {
            let start = s["start"].as_u64().ok_or("prediction start")? as usize;
            let end = s["end"].as_u64().ok_or("prediction end")? as usize;
            // The kind is not scored (recall is per gold type), so any will do.
            spans.push(PhiSpan { start, end, kind: PhiKind::Id });
        }
        out.insert(id, spans);
    }
    Ok(out)
}

fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

#[derive(Default)]
struct Score {
    per_type: BTreeMap<String, (usize, usize)>,
    gold_found: usize,
    gold_total: usize,
    pred_tp: usize,
    pred_fp: usize,
    pred_neutral: usize,
    tok_gold: usize,
    tok_hit: usize,
    tok_pred: usize,
    chars_gold: usize,
    chars_hit: usize,
    /// Gold `Date` spans that are only a year ("1977", "'79"): Safe Harbor
    /// keeps years, so they are counted apart as well.
    year_only_dates: usize,
    year_only_found: usize,
}

/// A gold date that is a bare year: 2 or 4 digits, apostrophes allowed.
fn year_only(s: &str) -> bool {
    let d: String = s.chars().filter(|c| *c != '\'').collect();
    (d.len() == 2 || d.len() == 4) && d.chars().all(|c| c.is_ascii_digit())
}

fn score(rec: &Record, pred: &[PhiSpan], s: &mut Score, errors: &mut Vec<String>) {
    let p = |g: &Gold| pred.iter().any(|x| overlaps((x.start, x.end), (g.start, g.end)));
    for g in &rec.gold {
        let e = s.per_type.entry(g.raw.clone()).or_default();
        e.1 += 1;
        let found = p(g);
        if found {
            e.0 += 1;
        }
        if g.phi && g.raw == "Date" && year_only(&rec.text[g.start..g.end]) {
            s.year_only_dates += 1;
            s.year_only_found += usize::from(found);
        }
        if g.phi {
            s.gold_total += 1;
            if found {
                s.gold_found += 1;
            } else {
                errors.push(format!("FN {} {:<18} {}", rec.id, g.raw, context(&rec.text, g.start, g.end)));
            }
            for (i, c) in rec.text[g.start..g.end].char_indices() {
                if !c.is_whitespace() {
                    s.chars_gold += 1;
                    let at = g.start + i;
                    if pred.iter().any(|x| x.start <= at && at < x.end) {
                        s.chars_hit += 1;
                    }
                }
            }
        }
    }
    for x in pred {
        let hits: Vec<&Gold> = rec.gold.iter().filter(|g| overlaps((x.start, x.end), (g.start, g.end))).collect();
        if hits.iter().any(|g| g.phi) {
            s.pred_tp += 1;
        } else if !hits.is_empty() {
            s.pred_neutral += 1;
        } else {
            s.pred_fp += 1;
            errors.push(format!(
                "FP {} {:<18} {}",
                rec.id,
                format!("{:?}", x.kind),
                context(&rec.text, x.start, x.end)
            ));
        }
    }
    // Token level.
    let b = rec.text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let st = i;
        while i < b.len() && b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let tok = (st, i);
        let gold_phi = rec.gold.iter().any(|g| g.phi && overlaps(tok, (g.start, g.end)));
        let gold_year = rec.gold.iter().any(|g| !g.phi && overlaps(tok, (g.start, g.end)));
        let predicted = pred.iter().any(|x| overlaps(tok, (x.start, x.end)));
        if gold_phi {
            s.tok_gold += 1;
            if predicted {
                s.tok_hit += 1;
            }
        }
        if predicted && !gold_year {
            s.tok_pred += 1;
        }
    }
}

fn context(text: &str, start: usize, end: usize) -> String {
    let a = text[..start].char_indices().rev().nth(29).map_or(0, |(i, _)| i);
    let z = text[end..].char_indices().nth(20).map_or(text.len(), |(i, _)| end + i);
    format!("{}<<{}>>{}", &text[a..start], &text[start..end], &text[end..z]).replace('\n', "\\n")
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().cloned().unwrap_or_else(|| "/work/shared/deid-corpus/physionet-deid-gold.jsonl".into());
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let errors_path = flag("--errors");
    let runs: usize = flag("--runs").and_then(|r| r.parse().ok()).unwrap_or(7);
    let split = flag("--split");
    let show: usize = flag("--show-errors").and_then(|r| r.parse().ok()).unwrap_or(0);
    let foreign = match flag("--score-predictions").map(|p| load_predictions(&p)).transpose() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("deid_eval: {e}");
            std::process::exit(2);
        }
    };

    let t0 = Instant::now();
    let scrubber = Scrubber::new(ScrubberConfig::default());
    let build = t0.elapsed();

    let records = match load(&path) {
        Ok(mut r) => {
            match split.as_deref() {
                Some("odd") => r.retain(|x| !patient(&x.id).is_multiple_of(2)),
                Some("even") => r.retain(|x| patient(&x.id).is_multiple_of(2)),
                Some(other) => {
                    eprintln!("deid_eval: --split takes odd or even, not {other}");
                    std::process::exit(2);
                }
                None => {}
            }
            r
        }
        Err(e) => {
            eprintln!("deid_eval: {e}");
            std::process::exit(2);
        }
    };
    let bytes: usize = records.iter().map(|r| r.text.len()).sum();

    let mut s = Score::default();
    let mut errors = Vec::new();
    let mut written = String::new();
    for r in &records {
        let pred = match &foreign {
            // A note the tool did not report on counts as "found nothing".
            Some(f) => f.get(&r.id).cloned().unwrap_or_default(),
            None => scrubber.find(&r.text),
        };
        // Spans only (ids and offsets), in the format --score-predictions reads.
        let spans: Vec<serde_json::Value> = pred
            .iter()
            .map(|p| serde_json::json!({"start": p.start, "end": p.end, "kind": format!("{:?}", p.kind)}))
            .collect();
        written.push_str(&serde_json::json!({"id": r.id, "spans": spans}).to_string());
        written.push('\n');
        score(r, &pred, &mut s, &mut errors);
    }
    if let Some(out) = flag("--write-predictions")
        && let Err(e) = std::fs::write(&out, &written)
    {
        eprintln!("deid_eval: writing {out}: {e}");
        std::process::exit(2);
    }
    let runs = if foreign.is_some() { 1 } else { runs };

    // Speed: the whole corpus, `runs` times, one thread.
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let mut n = 0usize;
            for r in &records {
                n += scrubber.find(&r.text).len();
            }
            std::hint::black_box(n);
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mbps = |t: f64| bytes as f64 / 1e6 / t;

    let recall = ratio(s.gold_found, s.gold_total);
    let precision = ratio(s.pred_tp, s.pred_tp + s.pred_fp);
    let f1 = if recall + precision > 0.0 { 2.0 * recall * precision / (recall + precision) } else { 0.0 };
    println!("corpus: {path}{}", split.as_ref().map(|s| format!(" ({s} patient ids only)")).unwrap_or_default());
    if foreign.is_some() {
        println!("scoring predictions from a file (the speed line below is ours, not the tool's)");
    }
    println!("records: {}  bytes: {bytes}  gold PHI spans: {}", records.len(), s.gold_total);
    println!();
    println!("span level (a gold span is found when any predicted span overlaps it)");
    println!("  recall    {recall:.4}  ({}/{})", s.gold_found, s.gold_total);
    println!(
        "  precision {precision:.4}  ({} right, {} wrong, {} on bare years left out)",
        s.pred_tp, s.pred_fp, s.pred_neutral
    );
    println!("  F1        {f1:.4}");
    let (yg, yf) = (s.year_only_dates, s.year_only_found);
    println!(
        "  recall without the {yg} gold Date spans that are bare years ({yf} of them found): {:.4}  ({}/{})",
        ratio(s.gold_found - yf, s.gold_total - yg),
        s.gold_found - yf,
        s.gold_total - yg
    );
    println!("token level (alphanumeric tokens; bare-year tokens left out of precision)");
    let tr = ratio(s.tok_hit, s.tok_gold);
    let tp = ratio(s.tok_hit, s.tok_pred);
    println!("  recall    {tr:.4}  ({}/{})", s.tok_hit, s.tok_gold);
    println!("  precision {tp:.4}  ({}/{})", s.tok_hit, s.tok_pred);
    println!("  PHI characters covered {:.4}  ({}/{})", ratio(s.chars_hit, s.chars_gold), s.chars_hit, s.chars_gold);
    println!();
    println!("per gold type (recall; DateYear is not PHI and not in the totals)");
    for (t, (f, n)) in &s.per_type {
        println!("  {t:<18} {:.4}  ({f}/{n})", ratio(*f, *n));
    }
    println!();
    println!(
        "speed: {} runs over {:.2} MB, one thread: median {:.1} MB/s (min {:.1}, max {:.1}); build {:.0} ms",
        runs,
        bytes as f64 / 1e6,
        mbps(median),
        mbps(times[times.len() - 1]),
        mbps(times[0]),
        build.as_secs_f64() * 1e3
    );

    // Synthetic notes with planted identifiers.
    let notes = synth::notes(2093, 2000);
    let mut by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut survived = 0;
    for n in &notes {
        let pred = scrubber.find(&n.text);
        for p in &n.planted {
            let e = by_kind.entry(p.kind).or_default();
            e.1 += 1;
            let covered = (p.start..p.end)
                .filter(|&i| {
                    !n.text.as_bytes()[i].is_ascii_whitespace() && n.text.as_bytes()[i].is_ascii_alphanumeric()
                })
                .all(|i| pred.iter().any(|x| x.start <= i && i < x.end));
            if covered {
                e.0 += 1;
            } else {
                errors.push(format!("SYN {:<10} {}", p.kind, context(&n.text, p.start, p.end)));
            }
        }
        let red = scrubber.redact(&n.text, Replacement::TypedPlaceholder);
        survived += n.planted.iter().filter(|p| red.contains(&n.text[p.start..p.end])).count();
    }
    let (f, t) = by_kind.values().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    println!();
    println!(
        "synthetic notes (seed 2093, {} notes): planted identifiers fully covered {:.4} ({f}/{t}); verbatim survivors after redact: {survived}",
        notes.len(),
        ratio(f, t)
    );
    for (k, (f, n)) in &by_kind {
        println!("  {k:<10} {:.4}  ({f}/{n})", ratio(*f, *n));
    }

    if show > 0 {
        println!();
        for e in errors.iter().filter(|e| e.starts_with("FN")).take(show) {
            println!("{e}");
        }
        for e in errors.iter().filter(|e| e.starts_with("FP")).take(show) {
            println!("{e}");
        }
    }

    if let Some(p) = errors_path {
        let mut file = match std::fs::File::create(&p) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("deid_eval: {p}: {e}");
                std::process::exit(2);
            }
        };
        for e in &errors {
            let _ = writeln!(file, "{e}");
        }
        println!("\n{} error lines written to {p}", errors.len());
    }
}
