//! Opaque page cursors: the next-page link carries the search sealed under a server key,
//! so URLs hold no readable search values (names, identifiers) and cannot be forged.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use phivault_fhir::FhirError;
use serde::{Deserialize, Serialize};

use super::Records;
use crate::RecordError;

const PURPOSE: &str = "phivault/search-page/v1";
/// How long a page cursor stays valid.
pub const CURSOR_LIFETIME_MS: i64 = 60 * 60 * 1000;

/// What a page cursor carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageCursor {
    /// `Type` for a search, `Type/_history` or `Type/id/_history` for history.
    pub target: String,
    pub query: Vec<(String, String)>,
    pub offset: u64,
    pub issued_ms: i64,
}

impl Records {
    /// Seals a cursor for the page starting at `offset`.
    pub fn seal_page_cursor(
        &self,
        target: &str,
        query: &[(String, String)],
        offset: u64,
    ) -> Result<String, RecordError> {
        let cursor =
            PageCursor { target: target.to_owned(), query: query.to_vec(), offset, issued_ms: self.clock.now_ms() };
        let json = serde_json::to_vec(&cursor).map_err(|_| FhirError::invalid("cursor"))?;
        let sealed = self.keys.ring().seal_token(PURPOSE, &json).map_err(RecordError::Keys)?;
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// Opens a cursor made by this deployment for `target`; refuses forged, altered,
    /// expired or misdirected ones.
    pub fn open_page_cursor(&self, target: &str, token: &str) -> Result<PageCursor, RecordError> {
        let bad =
            || RecordError::Invalid(FhirError::invalid("the page link is invalid or has expired; repeat the search"));
        let sealed = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
        let json = self.keys.ring().open_token(PURPOSE, &sealed).map_err(|_| bad())?;
        let cursor: PageCursor = serde_json::from_slice(&json).map_err(|_| bad())?;
        let age = self.clock.now_ms() - cursor.issued_ms;
        if cursor.target != target || !(0..=CURSOR_LIFETIME_MS).contains(&age) {
            return Err(bad());
        }
        Ok(cursor)
    }
}
