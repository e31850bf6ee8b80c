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
    let (num, den) = s.split_once('/').map_or((0, 0), |(a, b)| (a.parse().unwrap_or(0), b.parse().unwrap_or(0)));
    let tb = text.as_bytes();
    let digit_at = |i: usize| tb.get(i).is_some_and(u8::is_ascii_digit);
    // A link in a chain of numbers: "CO/CI 5-6/3-4", "6/2.8/698", "3.6-2.5".
    // A date range ("7/22-7/23", "7/22-23") is no chain: the number
    // next to it belongs to a date too.
    let before_chain = start >= 2 && matches!(tb[start - 1], b'-' | b'.') && digit_at(start - 2) && {
        let mut k = start - 2;
        while k > 0 && digit_at(k - 1) {
            k -= 1;
        }
        k == 0 || tb[k - 1] != b'/'
    };
    let after_chain = match tb.get(end) {
        // "11/21.93" ends in a year; "6/2.8/698" goes on.
        Some(b'.') => {
            let mut k = end + 1;
            while digit_at(k) {
                k += 1;
            }
            let year = matches!(k - end - 1, 2 | 4) && !matches!(tb.get(k), Some(b'/' | b'.'));
            digit_at(end + 1) && !year
        }
        // "6/3-4" is a range of readings; "7/22-23" a range of days
        // (a day past 12 cannot be a reading's month).
        Some(b'-') if digit_at(end + 1) => {
            let mut k = end + 1;
            while digit_at(k) {
                k += 1;
            }
            tb.get(k) != Some(&b'/') && den <= 12
        }
        // "5/5/.40", "2/2/1mg", "8/4/460": a third part that is no year (a
        // year would have been taken into the match) makes a chain of
        // settings or doses; no date goes on so.
        Some(b'/') => true,
        _ => false,
    };
    // "70-80'2/30-40's": a reading's digits, an apostrophe, then more digits is a
    // range of pressures typed in a hurry; no date is written after "80'".
    let after_apostrophe = start >= 2 && tb[start - 1] == b'\'' && digit_at(start - 2);
    // "AC 500/50 / 5/10": the next link of a chain of settings.
    let slash_chain = {
        let head = text[..start].trim_end_matches(' ');
        head.len() < start
            && head.ends_with('/')
            && head[..head.len() - 1].trim_end().ends_with(|c: char| c.is_ascii_digit())
    };
    if before_chain || after_chain || slash_chain || after_apostrophe {
        return false;
    }
    // "1/2", "2/3", "1 1/2": halves, thirds and quarters are fractions.
    if num < den && den <= 4 {
        return false;
    }
    // "8/10 CP", "c/o 5/10": by a word of pain, a score out of ten.
    let before = lower_window(text, start.saturating_sub(40), start);
    let last_word =
        before.split(|c: char| !c.is_ascii_alphanumeric() && c != ':').rfind(|w| !w.is_empty()).unwrap_or("");
    // ... unless it reads as a date: after "on", "or", "since", or right
    // after another date ("8/2 - 8/10").
    // "to" is left out: "CP decreased to 3/10" is a score; a range of
    // dates ("8/2 to 8/10") is caught by `after_date`.
    const DATE_PREPS: &[&str] = &["on", "or", "since", "until", "from", "of", "thru", "through", "and"];
    let tail = &before.as_bytes()[before.len().saturating_sub(12)..];
    let after_date = tail.windows(3).any(|w| w[0].is_ascii_digit() && w[1] == b'/' && w[2].is_ascii_digit());
    // "PERRLA 3/3", "sputum (2/2", "4/4 bottles": a small number over itself
    // is a score or a count, unless a word of time leads to it ("on 3/3",
    // "post 3/3").
    if num == den && den <= 4 && !DATE_PREPS.contains(&last_word) && !matches!(last_word, "post" | "s/p") {
        return false;
    }
    let hurts = |w: &str| {
        w.split(|c: char| !c.is_ascii_alphanumeric() && c != '/').any(|x| {
            matches!(
                x,
                "cp" | "pain"
                    | "angina"
                    | "discomfort"
                    | "ache"
                    | "c/o"
                    | "sore"
                    | "painful"
                    | "pressure"
                    | "tightness"
            )
        })
    };
    let near_before = lower_window(text, start.saturating_sub(16), start);
    let after_near = lower_window(text, end, (end + 16).min(text.len()));
    let painful = hurts(&near_before) || hurts(&after_near) || text[..start].ends_with('#');
    if den == 10 && num <= 10 && painful && !DATE_PREPS.contains(&last_word) && !after_date {
        return false;
    }
    let after = lower_window(text, end, (end + 24).min(text.len()));
    #[rustfmt::skip]
    const BEFORE: &[&str] = &[
        "pain", "peep", "ps", "cpap", "bipap", "imv", "simv", "psv", "vent", "settings", "ratio",
        "scale", "rated", "rates", "score", "strength", "ie", "i:e", "x", "bp", "grade", "power",
        "motor", "murmur", "sofa", "apgar", "gave", "give", "given", "ci", "pap", "flowby", "up",
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
    let next_word = after.split(|c: char| !c.is_ascii_alphanumeric()).find(|w| !w.is_empty()).unwrap_or("");
    // A day past 12 ("8/29 cultures", "on 8/19 down") is no score,
    // fraction or setting, whatever word comes next.
    let day_only = den >= 13 && num <= 12;
    if !day_only && (BEFORE.contains(&last_word) || AFTER.contains(&next_word)) {
        return false;
    }
    // "5/10" right by the word pain anywhere close: a pain score.
    if s.ends_with("/10") && (before.contains("pain") || after.contains("pain")) {
        return false;
    }
    // Ventilator settings ("CPAP 5/5", "PS 15/5 40%") in the two words before.
    #[rustfmt::skip]
    const VENT: &[&str] = &[
        "cpap", "peep", "ps", "psv", "bipap", "vent", "simv", "imv", "settings", "ventilation",
        "mask", "wean",
    ];
    // Two words back always; four ("PSV increased to 10/5") unless the
    // second number is past 12 and so can only be a day.
    // A clause ends at "and" or "then", and extubation is no setting: "wean
    // from vent and extubate 3/11" is a date.
    let reach = if day_only { 2 } else { 4 };
    if before
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .rev()
        .take(reach)
        .take_while(|w| !matches!(*w, "and" | "then") && !w.starts_with("extubat"))
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
