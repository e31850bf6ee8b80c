//! Query string → search clauses.

use super::extract::{birth_date_terms, push_token};
use super::normalize::{contact_value, prefix_term, text_words};
use super::params::{ParamKind, params_for};
use crate::date::{Precision, parse_date_range};
use crate::{FhirError, IssueType, is_valid_id, parse_relative_reference};

/// Default and maximum page sizes.
pub const DEFAULT_COUNT: usize = 20;
pub const MAX_COUNT: usize = 500;
/// Range of years a birth-date range query expands over.
const BIRTH_YEARS: std::ops::RangeInclusive<i32> = 1850..=2100;

/// A date comparison (FHIR prefixes `eq`, `lt`, `gt`, `le`, `ge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOp {
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
}

/// One date condition: the stored range `[lo, hi)` is compared with `[q_lo, q_hi)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateCondition {
    pub op: DateOp,
    /// The searched range in Unix seconds (search dates are stored by the second).
    pub lo: i64,
    pub hi: i64,
    /// The same range in Unix milliseconds, as precise as written: for `_lastUpdated`,
    /// stored to the millisecond, so `gt` a resource's own `lastUpdated` finds what
    /// changed later in the same second.
    pub lo_ms: i64,
    pub hi_ms: i64,
}

/// One clause; all clauses of a request must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// The resource has, for `param`, every term of at least one of the sets.
    Terms { param: &'static str, any_of: Vec<Vec<String>> },
    /// A stored date range of `param` satisfies one of the conditions.
    Date { param: &'static str, any_of: Vec<DateCondition> },
    /// The resource is in the compartment of one of these patients (empty: matches nothing).
    Compartment(Vec<String>),
    /// The resource id is one of these.
    Ids(Vec<String>),
    /// The last-updated time satisfies one of the conditions.
    LastUpdated(Vec<DateCondition>),
}

/// Most parameters one search may carry.
pub const MAX_PARAMETERS: usize = 64;
/// Most values (each comma-separated alternative counts) one search may carry.
pub const MAX_VALUES: usize = 1000;

/// Result ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    LastUpdated { descending: bool },
    Date { param: &'static str, descending: bool },
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub clauses: Vec<Clause>,
    pub count: usize,
    pub sort: Sort,
    /// 1-based positions of query parameters ignored under lenient handling. Positions,
    /// not names: a parameter name is client text and may itself hold PHI.
    pub ignored: Vec<usize>,
    /// `_include` and `_revinclude`, in the order given.
    pub includes: Vec<super::include::Include>,
}

/// Parameters that control the result form rather than select: accepted and ignored.
pub(crate) const FORMAT_PARAMS: [&str; 5] = ["_format", "_pretty", "_total", "_summary", "_elements"];

/// Parses decoded query pairs for a search on `resource_type`. Unknown parameters are
/// ignored and listed unless `strict` (`Prefer: handling=strict`), where they are an error.
/// Unsupported modifiers are always an error: silently widening a search is worse.
pub fn parse_search(resource_type: &str, pairs: &[(String, String)], strict: bool) -> Result<SearchRequest, FhirError> {
    // A bound on the work one query string can ask for: a thousand AND-ed parameters are
    // the client's fault (400), not a database failure (they used to reach SQLite's
    // expression limits and answer 503).
    if pairs.len() > MAX_PARAMETERS {
        return Err(FhirError::invalid(format!(
            "a search takes at most {MAX_PARAMETERS} parameters; this one has {}",
            pairs.len()
        )));
    }
    let values: usize = pairs.iter().map(|(_, v)| v.split(',').count()).sum();
    if values > MAX_VALUES {
        return Err(FhirError::invalid(format!(
            "a search takes at most {MAX_VALUES} values in all (comma-separated values count one each)"
        )));
    }
    let mut request = SearchRequest {
        clauses: Vec::new(),
        count: DEFAULT_COUNT,
        sort: Sort::LastUpdated { descending: false },
        ignored: Vec::new(),
        includes: Vec::new(),
    };
    for (position, (key, value)) in pairs.iter().enumerate() {
        let (name, modifier) = match key.split_once(':') {
            Some((n, m)) => (n, Some(m)),
            None => (key.as_str(), None),
        };
        match name {
            "_count" => {
                request.count = value
                    .parse::<usize>()
                    .map_err(|_| FhirError::invalid("_count must be a non-negative integer"))?
                    .min(MAX_COUNT);
            }
            "_sort" => request.sort = parse_sort(resource_type, value)?,
            // Unknown include targets are refused even under lenient handling: an include
            // left out would silently narrow what a chart viewer shows.
            "_include" | "_revinclude" => {
                let include =
                    super::include::parse_include(resource_type, modifier, value, name == "_revinclude", position + 1)?;
                // The same include twice is followed once (each costs reads or searches).
                if !request.includes.contains(&include) {
                    request.includes.push(include);
                }
            }
            "_id" => {
                no_modifier(name, modifier)?;
                let ids: Vec<String> = value.split(',').map(str::to_owned).collect();
                if ids.iter().any(|id| !is_valid_id(id)) {
                    return Err(FhirError::invalid("_id holds an invalid id"));
                }
                request.clauses.push(Clause::Ids(ids));
            }
            "_lastUpdated" => {
                no_modifier(name, modifier)?;
                let conditions = value.split(',').map(|v| date_condition(name, v)).collect::<Result<_, _>>()?;
                request.clauses.push(Clause::LastUpdated(conditions));
            }
            _ if FORMAT_PARAMS.contains(&name) => {}
            _ => match params_for(resource_type).find(|d| d.name == name) {
                Some(def) => request.clauses.push(clause_for(def.name, def.index_as, def.kind, modifier, value)?),
                None if strict => {
                    return Err(FhirError::new(
                        IssueType::NotSupported,
                        format!(
                            "query parameter {} is not a search parameter of {resource_type} (see /metadata)",
                            position + 1
                        ),
                    ));
                }
                None => request.ignored.push(position + 1),
            },
        }
    }
    Ok(request)
}

fn no_modifier(name: &str, modifier: Option<&str>) -> Result<(), FhirError> {
    match modifier {
        None => Ok(()),
        Some(_) => Err(FhirError::new(IssueType::NotSupported, format!("modifiers are not supported on '{name}'"))),
    }
}

fn parse_sort(resource_type: &str, value: &str) -> Result<Sort, FhirError> {
    let (descending, name) = match value.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, value),
    };
    if name == "_lastUpdated" {
        return Ok(Sort::LastUpdated { descending });
    }
    match params_for(resource_type).find(|d| d.name == name && d.kind == ParamKind::Date) {
        Some(def) => Ok(Sort::Date { param: def.index_as, descending }),
        None => Err(FhirError::new(
            IssueType::NotSupported,
            format!("_sort names no sortable parameter of {resource_type}; use _lastUpdated or a date parameter"),
        )),
    }
}

/// `name` is the parameter as queried (for messages and telecom systems), `param` the one
/// whose stored terms are searched.
fn clause_for(
    name: &'static str,
    param: &'static str,
    kind: ParamKind,
    modifier: Option<&str>,
    value: &str,
) -> Result<Clause, FhirError> {
    let alternatives = value.split(',');
    match (kind, modifier) {
        (ParamKind::Token, None) => {
            let any_of = alternatives.map(|v| vec![token_query_term(name, v)]).collect();
            Ok(Clause::Terms { param, any_of })
        }
        (ParamKind::Text, None) => {
            let mut any_of = Vec::new();
            for v in alternatives {
                let words: Vec<String> = text_words(v).iter().map(|w| prefix_term(w)).collect();
                if words.is_empty() {
                    return Err(FhirError::invalid(format!("search value for '{name}' has no letters or digits")));
                }
                any_of.push(words);
            }
            Ok(Clause::Terms { param, any_of })
        }
        (ParamKind::Text, Some("exact")) => {
            Ok(Clause::Terms { param, any_of: alternatives.map(|v| vec![format!("x:{}", v.trim())]).collect() })
        }
        (ParamKind::Date, None) => {
            let any_of = alternatives.map(|v| date_condition(name, v)).collect::<Result<_, _>>()?;
            Ok(Clause::Date { param, any_of })
        }
        (ParamKind::BirthDate, None) => {
            let mut any_of = Vec::new();
            for v in alternatives {
                any_of.extend(birth_date_query_terms(name, v)?.into_iter().map(|t| vec![t]));
            }
            Ok(Clause::Terms { param, any_of })
        }
        (ParamKind::Patient, None | Some("Patient")) => {
            let ids = alternatives
                .filter_map(|v| match parse_relative_reference(v) {
                    Some(("Patient", id)) => Some(id.to_owned()),
                    Some(_) => None,
                    None => is_valid_id(v).then(|| v.to_owned()),
                })
                .collect();
            Ok(Clause::Compartment(ids))
        }
        (_, Some(_)) => {
            Err(FhirError::new(IssueType::NotSupported, format!("this modifier is not supported on '{name}'")))
        }
    }
}

/// The single index term a token query value must match (see `push_token`). `phone` and
/// `email` search the telecom terms restricted to their ContactPoint system.
/// What a token query term (from [`parse_search`]) asks of the system: `Some(system)` for
/// `system|code` and `system|`, `None` for a code under any system or under none. One
/// definition beside the term format, for callers that must know which identifier system a
/// search looks at (minimum necessary).
pub fn token_term_system(term: &str) -> Option<&str> {
    term.strip_prefix("sc:").and_then(|t| t.rsplit_once('|').map(|(s, _)| s)).or_else(|| term.strip_prefix("s:"))
}

fn token_query_term(param: &'static str, value: &str) -> String {
    let normalise =
        |v: &str| if matches!(param, "telecom" | "phone" | "email") { contact_value(v) } else { v.trim().to_owned() };
    if matches!(param, "phone" | "email") && !value.contains('|') {
        return format!("sc:{param}|{}", normalise(value));
    }
    match value.split_once('|') {
        None => format!("c:{}", normalise(value)),
        Some(("", code)) => format!("ns:{}", normalise(code)),
        Some((system, "")) => format!("s:{}", system.trim()),
        Some((system, code)) => {
            let mut terms = Vec::new();
            push_token(param, Some(system), &normalise(code), &mut terms);
            terms.into_iter().map(|(_, t)| t).find(|t| t.starts_with("sc:")).unwrap_or_default()
        }
    }
}

fn split_prefix(value: &str) -> (DateOp, &str) {
    let ops = [("eq", DateOp::Eq), ("lt", DateOp::Lt), ("gt", DateOp::Gt), ("le", DateOp::Le), ("ge", DateOp::Ge)];
    for (prefix, op) in ops {
        if let Some(rest) = value.strip_prefix(prefix) {
            return (op, rest);
        }
    }
    (DateOp::Eq, value)
}

pub(crate) fn date_condition(param: &str, value: &str) -> Result<DateCondition, FhirError> {
    let (op, text) = split_prefix(value);
    let range = parse_date_range(text).ok_or_else(|| {
        FhirError::invalid(format!(
            "'{param}' needs a date such as 2024-03-01, optionally prefixed by eq, lt, gt, le or ge"
        ))
    })?;
    let (lo_ms, hi_ms) = range.millis(text);
    Ok(DateCondition { op, lo: range.lo, hi: range.hi, lo_ms, hi_ms })
}

/// Expands a birth-date query into the blind terms it covers: whole years, then months,
/// then days at the edges, so a range needs at most a few hundred terms.
fn birth_date_query_terms(param: &str, value: &str) -> Result<Vec<String>, FhirError> {
    let bad = || {
        FhirError::invalid(format!(
            "'{param}' needs a date such as 1980, 1980-05 or 1980-05-10, optionally prefixed by eq, lt, gt, le or ge"
        ))
    };
    let (op, text) = split_prefix(value);
    let range = parse_date_range(text).ok_or_else(bad)?;
    if range.precision == Precision::Time {
        return Err(bad());
    }
    let year: i32 = text[..4].parse().map_err(|_| bad())?;
    let month: Option<u32> = (range.precision >= Precision::Month).then(|| text[5..7].parse().unwrap_or(0));
    let day: Option<u32> = (range.precision >= Precision::Day).then(|| text[8..10].parse().unwrap_or(0));
    if op == DateOp::Eq {
        return birth_date_terms(text).and_then(|t| t.last().cloned()).map(|t| vec![t]).ok_or_else(bad);
    }
    let inclusive = matches!(op, DateOp::Le | DateOp::Ge);
    let before = matches!(op, DateOp::Lt | DateOp::Le);
    let mut terms = Vec::new();
    // Whole years strictly before / after.
    let years: Vec<i32> =
        if before { (*BIRTH_YEARS.start()..year).collect() } else { (year + 1..=*BIRTH_YEARS.end()).collect() };
    terms.extend(years.into_iter().map(|y| format!("Y:{y}")));
    match (month, day) {
        (None, _) => {
            if inclusive {
                terms.push(format!("Y:{year}"));
            }
        }
        (Some(m), None) => {
            let months: Vec<u32> = if before { (1..m).collect() } else { (m + 1..=12).collect() };
            terms.extend(months.into_iter().map(|mm| format!("M:{year}-{mm:02}")));
            if inclusive {
                terms.push(format!("M:{year}-{m:02}"));
            }
        }
        (Some(m), Some(d)) => {
            let months: Vec<u32> = if before { (1..m).collect() } else { (m + 1..=12).collect() };
            terms.extend(months.into_iter().map(|mm| format!("M:{year}-{mm:02}")));
            let days: Vec<u32> = if before { (1..d).collect() } else { (d + 1..=31).collect() };
            terms.extend(days.into_iter().map(|dd| format!("D:{year}-{m:02}-{dd:02}")));
            if inclusive {
                terms.push(format!("D:{year}-{m:02}-{d:02}"));
            }
        }
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn patient_search_clauses() {
        let r = parse_search(
            "Patient",
            &q(&[("family", "Du"), ("identifier", "urn:mrn|123456789"), ("_count", "5")]),
            false,
        )
        .expect("valid");
        assert_eq!(r.count, 5);
        assert_eq!(r.clauses[0], Clause::Terms { param: "family", any_of: vec![vec!["p:du".into()]] });
        assert_eq!(
            r.clauses[1],
            Clause::Terms { param: "identifier", any_of: vec![vec!["sc:urn:mrn|123456789".into()]] }
        );
    }

    #[test]
    fn aliases_search_the_canonical_terms() {
        let r = parse_search("Patient", &q(&[("phone", "(555) 014-2"), ("email", "Daffy@Example.org")]), true)
            .expect("valid");
        assert_eq!(r.clauses[0], Clause::Terms { param: "telecom", any_of: vec![vec!["sc:phone|5550142".into()]] });
        assert_eq!(
            r.clauses[1],
            Clause::Terms { param: "telecom", any_of: vec![vec!["sc:email|daffy@example.org".into()]] }
        );
        let r = parse_search("Immunization", &q(&[("code", "http://hl7.org/fhir/sid/cvx|140")]), true).expect("valid");
        assert!(matches!(&r.clauses[0], Clause::Terms { param: "vaccine-code", .. }));
        let r = parse_search("MedicationRequest", &q(&[("_sort", "date")]), true).expect("valid");
        assert_eq!(r.sort, Sort::Date { param: "authoredon", descending: false });
    }

    #[test]
    fn unknown_params_are_lenient_unless_strict() {
        let pairs = q(&[("shoe-size", "42")]);
        assert_eq!(parse_search("Patient", &pairs, false).expect("lenient").ignored, [1]);
        let err = parse_search("Patient", &pairs, true).expect_err("strict");
        assert_eq!(err.issue, IssueType::NotSupported);
        assert!(parse_search("Patient", &q(&[("name:contains", "x")]), false).is_err(), "modifier never ignored");
    }

    #[test]
    fn birth_date_ranges_expand_to_covering_terms() {
        let eq = birth_date_query_terms("birthdate", "1937-04-17").expect("eq");
        assert_eq!(eq, ["D:1937-04-17"]);
        let lt = birth_date_query_terms("birthdate", "lt1937-04-17").expect("lt");
        assert!(
            lt.contains(&"Y:1936".into()) && lt.contains(&"M:1937-03".into()) && lt.contains(&"D:1937-04-16".into())
        );
        assert!(!lt.iter().any(|t| t == "D:1937-04-17" || t == "Y:1937" || t == "M:1937-04"));
        let ge = birth_date_query_terms("birthdate", "ge1937").expect("ge");
        assert!(ge.contains(&"Y:1937".into()) && ge.contains(&"Y:2000".into()) && !ge.contains(&"Y:1936".into()));
        assert!(lt.len() < 200);
        assert!(birth_date_query_terms("birthdate", "lt1937-02-30").is_err());
    }

    #[test]
    fn invalid_values_are_refused() {
        assert!(parse_search("Observation", &q(&[("date", "gtyesterday")]), false).is_err());
        assert!(parse_search("Observation", &q(&[("_id", "a/b")]), false).is_err());
        assert!(parse_search("Observation", &q(&[("_count", "-1")]), false).is_err());
        assert!(parse_search("Observation", &q(&[("_sort", "code")]), false).is_err());
        assert!(parse_search("Patient", &q(&[("name", "  ")]), false).is_err());
    }

    #[test]
    fn compartment_accepts_reference_or_id() {
        let r = parse_search("Observation", &q(&[("patient", "Patient/p1,p2"), ("subject", "Group/g")]), false)
            .expect("valid");
        assert_eq!(r.clauses[0], Clause::Compartment(vec!["p1".into(), "p2".into()]));
        assert_eq!(r.clauses[1], Clause::Compartment(vec![]));
    }
}
