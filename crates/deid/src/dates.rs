//! Telling dates from the numbers that look like them. "5/10" is a date
//! in one note and a pain score in the next; the words around it decide.

/// Decides whether a slash date like "5/10" is a date. With a year it always
/// is; without one it is not when the words around it say it is a pain
/// score, a ventilator setting, a fraction or a strength.
pub(crate) fn plausible_short_date(text: &str, start: usize, end: usize) -> bool {
    let s = &text[start..end];
    if text[end..].starts_with('%') {
        // "12/5/40%": pressure support, PEEP and oxygen.
        return false;
    }
    if s.matches('/').count() == 2 {
        return true;
    }
    let before = lower_window(text, start.saturating_sub(40), start);
    let after = lower_window(text, end, (end + 24).min(text.len()));
    #[rustfmt::skip]
    const BEFORE: &[&str] = &[
        "pain", "peep", "ps", "cpap", "bipap", "imv", "simv", "psv", "vent", "settings", "ratio",
        "scale", "rated", "rates", "score", "strength", "ie", "i:e", "x", "bp", "grade", "power",
        "motor", "murmur", "sofa", "apgar", "gave", "give", "given",
    ];
    #[rustfmt::skip]
    const AFTER: &[&str] = &[
        "pain", "ns", "normal", "strength", "str", "tab", "tabs", "cal", "of", "murmur", "scale",
        "peep", "ps", "cpap", "bipap", "sem", "amp", "amps", "rate", "dose", "doses", "bottle",
        "bottles", "bag", "unit", "units", "cc", "ml", "l", "mg", "hr", "hour", "hours", "cup",
        "inch", "cm", "mm", "way", "bld", "blood", "culture", "cultures", "sets", "times", "x",
        "assist", "saline", "max", "liter", "liters", "lpm", "pack", "packs", "ppd", "glass",
        "can", "cans", "power", "wt", "weight", "up", "down", "bilat", "bilaterally", "the",
        "lobe", "lobes", "field", "fields",
    ];
    let last_word =
        before.split(|c: char| !c.is_ascii_alphanumeric() && c != ':').rfind(|w| !w.is_empty()).unwrap_or("");
    let next_word = after.split(|c: char| !c.is_ascii_alphanumeric()).find(|w| !w.is_empty()).unwrap_or("");
    if BEFORE.contains(&last_word) || AFTER.contains(&next_word) {
        return false;
    }
    // "5/10" right by the word pain anywhere close: a pain score.
    if s.ends_with("/10") && (before.contains("pain") || after.contains("pain")) {
        return false;
    }
    // Ventilator settings ("CPAP 5/5", "PS 15/5 40%") in the two words before.
    #[rustfmt::skip]
    const VENT: &[&str] = &[
        "cpap", "peep", "ps", "psv", "bipap", "vent", "simv", "imv", "settings",
    ];
    if before
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .rev()
        .take(2)
        .any(|w| VENT.contains(&w))
    {
        return false;
    }
    // "5/5" is a strength grade far more often than May 5th.
    if s == "5/5" {
        return false;
    }
    true
}

/// Lower-cased copy of a byte window, widened to char boundaries.
fn lower_window(text: &str, mut a: usize, mut b: usize) -> String {
    while a > 0 && !text.is_char_boundary(a) {
        a -= 1;
    }
    while b < text.len() && !text.is_char_boundary(b) {
        b += 1;
    }
    text[a..b].to_ascii_lowercase()
}
