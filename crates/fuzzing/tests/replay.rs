//! Replays every committed fuzz input (the seed corpora, what fuzzing runs kept, and the
//! regressions: inputs that once crashed a target) on the stable toolchain. A target that
//! panics on any of them fails this test, naming the file.

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = read.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn every_committed_fuzz_input_runs_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut failures = Vec::new();
    for (name, target) in phivault_fuzzing::TARGETS {
        let files: Vec<PathBuf> =
            ["corpus", "regressions"].iter().flat_map(|kind| inputs(&root.join(kind).join(name))).collect();
        assert!(!files.is_empty(), "target {name} has no committed corpus under fuzz/corpus/{name}");
        for file in files {
            let data = std::fs::read(&file).expect("read input");
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "inputs that panic: {failures:#?}");
}
