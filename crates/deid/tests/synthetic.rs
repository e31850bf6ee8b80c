//! Planted identifiers in generated notes must never survive redaction.

mod synth;

use phivault_deid::{Replacement, Scrubber, ScrubberConfig, Surrogates};

#[test]
fn no_planted_identifier_survives_redact() {
    let scrubber = Scrubber::new(ScrubberConfig::default());
    let surrogates = Surrogates::new(b"synthetic test project key");
    for seed in [1_u64, 2, 3, 2093] {
        for note in synth::notes(seed, 150) {
            let spans = scrubber.find(&note.text);
            for p in &note.planted {
                // Every letter and digit of the planted identifier is covered.
                let missed: Vec<usize> = (p.start..p.end)
                    .filter(|&i| note.text.as_bytes()[i].is_ascii_alphanumeric())
                    .filter(|&i| !spans.iter().any(|s| s.start <= i && i < s.end))
                    .collect();
                assert!(
                    missed.is_empty(),
                    "seed {seed}: planted {} {:?} not fully covered in {:?}",
                    p.kind,
                    &note.text[p.start..p.end],
                    note.text
                );
            }
            let out = scrubber.redact(&note.text, Replacement::TypedPlaceholder);
            let fake = scrubber.redact_with_surrogates(&note.text, &surrogates);
            for p in &note.planted {
                let secret = &note.text[p.start..p.end];
                assert!(!out.contains(secret), "{secret:?} survived: {out:?}");
                assert!(!fake.contains(secret), "{secret:?} survived surrogates: {fake:?}");
            }
        }
    }
}
