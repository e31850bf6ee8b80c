//! Search clauses → store filters, hashing identifying values into blind terms.

use phivault_fhir::search::{Clause, SearchRequest};

use super::Records;
use crate::{Filter, StoreQuery};

impl Records {
    pub(crate) fn store_query(&self, resource_type: &str, request: &SearchRequest, offset: u64) -> StoreQuery {
        let index = self.keys.ring().blind_index();
        let filters = request
            .clauses
            .iter()
            .map(|clause| match clause {
                Clause::Terms { param, any_of } => Filter::Terms {
                    param,
                    any_of: any_of.iter().map(|set| set.iter().map(|t| index.term(param, t)).collect()).collect(),
                },
                Clause::Date { param, any_of } => Filter::Date { param, any_of: any_of.clone() },
                Clause::Compartment(ids) => Filter::Compartment(ids.clone()),
                Clause::Ids(ids) => Filter::Ids(ids.clone()),
                Clause::LastUpdated(conditions) => Filter::LastUpdated(conditions.clone()),
            })
            .collect();
        StoreQuery {
            resource_type: resource_type.to_owned(),
            filters,
            sort: request.sort,
            offset,
            limit: request.count as u64,
            count_total: true,
        }
    }
}
