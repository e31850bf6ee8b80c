//! De-identification profiles: which rule applies to each kind of
//! identifier. Two are built in (Safe Harbor and the limited data set);
//! others are read from TOML as a built-in base plus overrides, so a
//! custom profile can loosen only what it names.

use serde::Deserialize;

use crate::DeidError;

/// What happens to dates (Safe Harbor item (C)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DateRule {
    /// Cut to the year: what Safe Harbor requires.
    Year,
    /// Moved by a per-patient offset of 1 to 365 days either way, derived
    /// from the project key and the patient id, so intervals within one
    /// patient survive. Not Safe Harbor: it needs an expert determination.
    Shift,
    /// Kept as they are (limited data set).
    Keep,
}

/// What happens to addresses (item (B)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressRule {
    /// State and country stay; the ZIP code is cut to its first three
    /// digits, or "000" in sparsely populated areas; the rest goes.
    Zip3,
    /// Street lines, district and free-text address go; town, state, ZIP
    /// code and country stay (limited data set).
    CityStateZip,
}

/// What happens to `Identifier` elements (items (D)–(M), (R)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentifierRule {
    /// Removed.
    Remove,
    /// The value replaced by a keyed pseudonym, the system and type kept.
    Pseudonymise,
}

/// A named set of rules. Build one with [`Profile::safe_harbor`],
/// [`Profile::limited_data_set`], [`Profile::named`] or
/// [`Profile::from_toml`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The profile's name, for logs and reports.
    pub name: String,
    /// Date handling.
    pub dates: DateRule,
    /// Address handling.
    pub addresses: AddressRule,
    /// Whether ages over 89 (and birth dates implying them) are aggregated
    /// to "90 or older".
    pub cap_ages: bool,
    /// `Identifier` handling.
    pub identifiers: IdentifierRule,
    /// Extension URLs that are kept (with their content de-identified like
    /// any other element). Every other extension is removed.
    pub extension_allow: Vec<String>,
    /// The `meta.security` code added to every output resource, from
    /// `http://terminology.hl7.org/CodeSystem/v3-ObservationValue`.
    pub security_label: String,
    /// Free text gets fake but consistent surrogates ([`crate::Surrogates`], keyed on the
    /// project key) instead of typed placeholders.
    pub free_text_surrogates: bool,
}

/// US Core race and ethnicity: categories, not identifiers, and needed by
/// most research. They are quasi-identifiers in small areas, which the
/// k-anonymity check is there to catch.
const US_CORE_RACE: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race";
const US_CORE_ETHNICITY: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity";
const US_CORE_BIRTHSEX: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex";

impl Profile {
    /// HIPAA Safe Harbor, 45 CFR 164.514(b)(2): years only, ZIP-3, ages
    /// capped at 90, identifiers removed.
    pub fn safe_harbor() -> Profile {
        Profile {
            name: "safe-harbor".into(),
            dates: DateRule::Year,
            addresses: AddressRule::Zip3,
            cap_ages: true,
            identifiers: IdentifierRule::Remove,
            extension_allow: vec![US_CORE_RACE.into(), US_CORE_ETHNICITY.into(), US_CORE_BIRTHSEX.into()],
            // Resource ids and references are keyed pseudonyms that the key
            // holder can link back: "pseudonymised", not "anonymised".
            security_label: "PSEUDED".into(),
            free_text_surrogates: false,
        }
    }

    /// HIPAA limited data set, 45 CFR 164.514(e)(2): dates, town, state,
    /// ZIP code and ages stay; direct identifiers go. Needs a data use
    /// agreement.
    pub fn limited_data_set() -> Profile {
        Profile {
            name: "limited-data-set".into(),
            dates: DateRule::Keep,
            addresses: AddressRule::CityStateZip,
            cap_ages: false,
            ..Profile::safe_harbor()
        }
    }

    /// A built-in profile by name: `safe-harbor` or `limited-data-set`.
    pub fn named(name: &str) -> Result<Profile, DeidError> {
        match name {
            "safe-harbor" => Ok(Profile::safe_harbor()),
            "limited-data-set" => Ok(Profile::limited_data_set()),
            other => Err(DeidError::UnknownProfile(other.to_string())),
        }
    }

    /// A custom profile from TOML: a built-in `base` and overrides.
    ///
    /// ```toml
    /// name = "cohort-shifted"
    /// base = "safe-harbor"          # or "limited-data-set"
    /// dates = "shift"               # "year" | "shift" | "keep"
    /// addresses = "zip3"            # "zip3" | "city-state-zip"
    /// cap_ages = true
    /// identifiers = "pseudonymise"  # "remove" | "pseudonymise"
    /// extension_allow = ["http://example.org/fhir/StructureDefinition/x"]  # added to the base list
    /// security_label = "PSEUDED"
    /// free_text = "surrogates"      # "placeholders" (default) | "surrogates"
    /// ```
    pub fn from_toml(text: &str) -> Result<Profile, DeidError> {
        let raw: RawProfile = toml::from_str(text).map_err(|e| DeidError::InvalidProfile(e.to_string()))?;
        let mut p = Profile::named(&raw.base)?;
        p.name = raw.name;
        p.dates = raw.dates.unwrap_or(p.dates);
        p.addresses = raw.addresses.unwrap_or(p.addresses);
        p.cap_ages = raw.cap_ages.unwrap_or(p.cap_ages);
        p.identifiers = raw.identifiers.unwrap_or(p.identifiers);
        p.extension_allow.extend(raw.extension_allow);
        match raw.free_text.as_deref() {
            None => {}
            Some("placeholders") => p.free_text_surrogates = false,
            Some("surrogates") => p.free_text_surrogates = true,
            Some(_) => return Err(DeidError::InvalidProfile("free_text is placeholders or surrogates".into())),
        }
        if let Some(label) = raw.security_label {
            if !matches!(label.as_str(), "PSEUDED" | "ANONYED" | "MASKED") {
                return Err(DeidError::InvalidProfile(format!(
                    "security_label {label:?} is not PSEUDED, ANONYED or MASKED"
                )));
            }
            p.security_label = label;
        }
        Ok(p)
    }
}

/// The TOML form. Unknown keys are refused: a misspelt rule must not
/// silently fall back to the base.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    base: String,
    dates: Option<DateRule>,
    addresses: Option<AddressRule>,
    cap_ages: Option<bool>,
    identifiers: Option<IdentifierRule>,
    #[serde(default)]
    extension_allow: Vec<String>,
    security_label: Option<String>,
    free_text: Option<String>,
}
