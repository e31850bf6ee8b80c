//! The schema, policies and views that ship with phivault, compiled into the binary.
//! `phivault init` writes copies into the data directory for operators to read and edit.

use crate::engine::PolicySource;

/// The Cedar schema (built in; operators cannot change it).
pub const SCHEMA: &str = include_str!("../defaults/phivault.cedarschema");
/// The default views.
pub const VIEWS: &str = include_str!("../defaults/views.toml");
/// The default retention periods.
pub const RETENTION: &str = include_str!("../defaults/retention.toml");
/// The default decision table run by `phivault policy test`.
pub const CASES: &str = include_str!("../defaults/cases.toml");

/// The default policy files, by name.
pub const POLICY_FILES: [(&str, &str); 7] = [
    ("administration.cedar", include_str!("../defaults/administration.cedar")),
    ("clinical.cedar", include_str!("../defaults/clinical.cedar")),
    ("emergency.cedar", include_str!("../defaults/emergency.cedar")),
    ("patients.cedar", include_str!("../defaults/patients.cedar")),
    ("safeguards.cedar", include_str!("../defaults/safeguards.cedar")),
    ("sensitive.cedar", include_str!("../defaults/sensitive.cedar")),
    ("staff.cedar", include_str!("../defaults/staff.cedar")),
];

/// The default policy files as sources.
pub fn policy_sources() -> Vec<PolicySource> {
    POLICY_FILES
        .iter()
        .map(|(name, text)| PolicySource { name: (*name).to_owned(), text: (*text).to_owned() })
        .collect()
}

/// Writes the default policies, views and cases into `dir` (created if missing), leaving
/// files that already exist untouched. Returns the files written.
pub fn write_defaults(dir: &std::path::Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let files = POLICY_FILES.iter().copied().chain([
        ("views.toml", VIEWS),
        ("retention.toml", RETENTION),
        ("cases.toml", CASES),
        ("phivault.cedarschema", SCHEMA),
    ]);
    for (name, text) in files {
        let path = dir.join(name);
        if !path.exists() {
            std::fs::write(&path, text)?;
            written.push(name.to_owned());
        }
    }
    Ok(written)
}
