//! Retention periods per resource type, read from `retention.toml` beside the policies.
//! Erasure (crypto-shredding a patient's records) is refused while any record is within its
//! period. Safeguard: 45 CFR 164.316(b)(2)(i) retention; 164.310(d)(2)(i) disposal.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::PolicyError;

/// Milliseconds in a (365.25-day) year.
const YEAR_MS: i64 = 31_557_600_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionFile {
    default_years: u32,
    #[serde(default)]
    years: BTreeMap<String, u32>,
}

/// How many years each resource type is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    default_years: u32,
    years: BTreeMap<String, u32>,
}

impl Retention {
    /// Parses `retention.toml`. Periods above 100 years are refused as a typo.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let file: RetentionFile =
            toml::from_str(text).map_err(|e| PolicyError::Config(format!("retention.toml: {}", e.message())))?;
        if file.default_years > 100 || file.years.values().any(|y| *y > 100) {
            return Err(PolicyError::Config("retention.toml: a period above 100 years is surely a typo".into()));
        }
        Ok(Self { default_years: file.default_years, years: file.years })
    }

    /// The period of a resource type, in years.
    pub fn years_for(&self, resource_type: &str) -> u32 {
        self.years.get(resource_type).copied().unwrap_or(self.default_years)
    }

    /// Given the newest last-updated time of each resource type in a patient's compartment,
    /// the types still within their period at `now_ms`, with when each period ends.
    pub fn still_retained(&self, newest: &[(String, i64)], now_ms: i64) -> Vec<(String, i64)> {
        newest
            .iter()
            .map(|(t, ms)| (t.clone(), ms.saturating_add(i64::from(self.years_for(t)) * YEAR_MS)))
            .filter(|(_, until)| *until > now_ms)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_kept_for_their_types_period() {
        let r = Retention::parse("default_years = 6\n[years]\nObservation = 10").expect("parse");
        assert_eq!((r.years_for("Observation"), r.years_for("Coverage")), (10, 6));
        let now = 40 * YEAR_MS;
        let newest = vec![("Coverage".to_owned(), now - 7 * YEAR_MS), ("Observation".to_owned(), now - 7 * YEAR_MS)];
        let kept = r.still_retained(&newest, now);
        assert_eq!(kept.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), ["Observation"]);
        assert!(Retention::parse("default_years = 600").is_err());
        assert!(Retention::parse("default_years = 6\nextra = 1").is_err());
    }
}
