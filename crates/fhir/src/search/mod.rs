//! Search parameters: which exist for each resource type, how index entries are extracted
//! from a resource, and how a query string becomes clauses over those entries.
//!
//! Index entries are plain strings here; the service turns each into a keyed blind index
//! term before anything is stored, so identifying values (names, identifiers, telecom,
//! birth dates) are never written in the clear. Clinical dates are kept as ranges of Unix
//! seconds so that range search and sorting work in the database.

mod extract;
mod history;
mod include;
mod normalize;
mod params;
mod query;

pub use extract::{IndexEntries, extract_index_entries};
pub use history::{HistoryWindow, history_window};
pub use include::{Include, parse_include, reference_params, reference_paths, referenced};
pub use normalize::{prefix_term, text_words};
pub use params::{ParamDef, ParamKind, params_for, search_param_names};
pub use query::{Clause, DateCondition, DateOp, MAX_COUNT, SearchRequest, Sort, parse_search, token_term_system};
