//! `Address` elements and the ZIP-3 rule (Safe Harbor item (B)).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::profile::AddressRule;

/// The restricted prefixes, one per line with their census years.
const RESTRICTED_ZIP3: &str = include_str!("../../data/restricted_zip3.txt");

/// Address elements that may stay under each rule. Everything else
/// (`line`, `text`, `district`, and under Safe Harbor `city`) is removed;
/// `postalCode` is handled on its own. `period` and `use`/`type` say
/// nothing about where the person lives beyond what stays.
const KEEP_ZIP3: &[&str] = &["use", "type", "state", "country", "period"];
const KEEP_CITY_STATE_ZIP: &[&str] = &["use", "type", "city", "state", "country", "period"];

/// The ZIP-3 table, parsed once per [`crate::fhir::Deidentifier`].
#[derive(Debug)]
pub(crate) struct Zip3 {
    restricted: HashSet<String>,
}

impl Zip3 {
    /// Parses the embedded table.
    pub(crate) fn new() -> Zip3 {
        let restricted = RESTRICTED_ZIP3
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
        Zip3 { restricted }
    }

    /// The Safe Harbor form of a US ZIP code: its first three digits, or
    /// "000" for a sparsely populated prefix. `None` when the value is not
    /// a US ZIP (five digits, optionally `-` and four more): a foreign
    /// postcode cannot be checked against the table, so it is removed.
    pub(crate) fn generalise(&self, zip: &str) -> Option<String> {
        let zip = zip.trim();
        let b = zip.as_bytes();
        let five = b.len() >= 5 && b[..5].iter().all(u8::is_ascii_digit);
        let tail_ok = b.len() == 5 || (b.len() == 10 && b[5] == b'-' && b[6..].iter().all(u8::is_ascii_digit));
        if !five || !tail_ok {
            return None;
        }
        let prefix = &zip[..3];
        Some(if self.restricted.contains(prefix) { "000".into() } else { prefix.into() })
    }
}

/// The de-identified form of one `Address` object, before its remaining
/// elements are walked (for dates in `period`). `None` when nothing is
/// left.
pub(crate) fn address(map: &Map<String, Value>, rule: AddressRule, zip3: &Zip3) -> Option<Map<String, Value>> {
    let keep = match rule {
        AddressRule::Zip3 => KEEP_ZIP3,
        AddressRule::CityStateZip => KEEP_CITY_STATE_ZIP,
    };
    let mut out: Map<String, Value> =
        map.iter().filter(|(k, _)| keep.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(Value::String(zip)) = map.get("postalCode") {
        let kept = match rule {
            AddressRule::Zip3 => zip3.generalise(zip),
            AddressRule::CityStateZip => Some(zip.clone()),
        };
        if let Some(z) = kept {
            out.insert("postalCode".into(), Value::String(z));
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip3_table() {
        let z = Zip3::new();
        assert_eq!(z.restricted.len(), 19);
        assert_eq!(z.generalise("91521").as_deref(), Some("915"));
        assert_eq!(z.generalise("91521-0001").as_deref(), Some("915"));
        assert_eq!(z.generalise("03601").as_deref(), Some("000"));
        assert_eq!(z.generalise("20500").as_deref(), Some("000"));
        assert_eq!(z.generalise("SW1A 1AA"), None);
        assert_eq!(z.generalise("9152"), None);
    }
}
