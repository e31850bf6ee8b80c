//! FHIR R4 rules for phivault, on `serde_json::Value` (no generated models: they dominate
//! build time and we validate only what we index and enforce).
//!
//! This crate knows resource types and ids, which search parameters exist and how their
//! values are extracted and matched, how a resource belongs to a patient compartment, how
//! references are found and rewritten, and how errors become `OperationOutcome`s. It does no
//! IO and knows nothing of HTTP, SQL or keys: the service turns the plain index terms it
//! produces into blind index terms.

mod compartment;
mod date;
mod elements;
mod error;
mod id;
mod outcome;
mod query_string;
mod references;
mod resource_types;
pub mod search;
mod validate;

pub use compartment::{check_one_patient, compartment_patients, patient_compartment, patient_compartment_types};
pub use date::{DateRange, format_instant, parse_date_range};
pub use elements::{Subset, apply_subset, parse_subset};
pub use error::{FhirError, IssueType};
pub use id::{is_valid_id, new_id};
pub use outcome::operation_outcome;
pub use query_string::{parse_query_string, parse_version_etag};
pub use references::{for_each_reference_mut, parse_relative_reference};
pub use resource_types::{RESOURCE_TYPES, is_resource_type};
pub use validate::validate_resource;
