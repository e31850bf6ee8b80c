//! The parameters of a history interaction (`_since`, `_at`, `_count`, and the paging
//! token), read strictly: a malformed or unknown one is refused, since a history that
//! silently ignores `_since=2099-01-01` returns every version and breaks incremental sync.

use super::query::{FORMAT_PARAMS, date_condition};
use crate::{FhirError, IssueType};

/// Which versions a history may return.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryWindow {
    /// `_since`: versions written at or after this instant (Unix ms).
    pub since_ms: Option<i64>,
    /// `_at`: versions current at some moment of `[from, until)` (Unix ms), the period the
    /// value names (a day, a month, an instant to the second or millisecond).
    pub at: Option<(i64, i64)>,
}

/// Reads a history's query; `_count` and `_page` are left to the caller.
pub fn history_window(pairs: &[(String, String)]) -> Result<HistoryWindow, FhirError> {
    let mut window = HistoryWindow::default();
    for (position, (key, value)) in pairs.iter().enumerate() {
        match key.as_str() {
            "_count" | "_page" => {}
            "_since" | "_at" => {
                if value.starts_with(|c: char| c.is_ascii_alphabetic()) {
                    return Err(FhirError::invalid(format!("{key} takes a date or instant, without a prefix")));
                }
                let condition = date_condition(key, value)
                    .map_err(|_| FhirError::invalid(format!("{key} needs an instant such as 2026-12-01T08:00:00Z")))?;
                if key == "_since" {
                    window.since_ms = Some(condition.lo_ms);
                } else {
                    window.at = Some((condition.lo_ms, condition.hi_ms));
                }
            }
            // `_elements` is not applied to history entries: refused, not ignored.
            k if FORMAT_PARAMS.contains(&k) && k != "_elements" => {}
            _ => {
                return Err(FhirError::new(
                    IssueType::NotSupported,
                    format!(
                        "query parameter {} is not a history parameter (supported: _since, _at, _count)",
                        position + 1
                    ),
                ));
            }
        }
    }
    Ok(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn since_and_at_are_read_and_garbage_is_refused() {
        let w = history_window(&q(&[("_since", "2026-12-01T08:00:00Z"), ("_count", "10")])).expect("valid");
        assert_eq!(w.since_ms, Some(1_796_112_000_000));
        let day = history_window(&q(&[("_at", "2026-12-01")])).expect("valid").at.expect("at");
        assert_eq!(day.1 - day.0, 86_400_000, "a day is the whole day");
        for bad in [("_since", "garbage"), ("_since", "ge2026-01-01"), ("_at", "yesterday"), ("_elements", "id")] {
            assert!(history_window(&q(&[bad])).is_err(), "{bad:?}");
        }
    }
}
