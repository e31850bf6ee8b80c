//! Reading a FHIR JSON request body: content type, size limit, parse errors, all answered
//! with an OperationOutcome and without echoing the body.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use phivault_fhir::IssueType;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;

/// A parsed FHIR JSON body.
#[derive(Debug)]
pub struct FhirBody(pub Value);

impl FromRequest<AppState> for FhirBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        json_value(&json_bytes(request, state).await?).map(Self)
    }
}

/// A Bundle body: a [`FhirBody`] whose entries are counted before anything is built, so a
/// Bundle over the entry limit is refused at the cost of one pass over its bytes, not of
/// the several hundred megabytes its parsed form would take (a 24 MB, 100,000-entry Bundle
/// did).
#[derive(Debug)]
pub struct BundleBody(pub Value);

impl FromRequest<AppState> for BundleBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(request, state).await?;
        let limit = phivault_service::records::MAX_BUNDLE_ENTRIES;
        match serde_json::from_slice::<EntryCount>(&bytes) {
            Ok(EntryCount(count)) if count > limit => {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    IssueType::TooCostly,
                    format!("a Bundle holds at most {limit} entries; this one has {count}: split it"),
                ));
            }
            // Not JSON at all: said from this pass, so a huge array before the break is never
            // built by the full parse only to fail there.
            Err(e) if e.is_syntax() || e.is_eof() => return Err(not_json(&e)),
            // Valid JSON of another shape (not an object, `entry` not an array): the full
            // parse and the Bundle rules say what is wrong.
            _ => {}
        }
        json_value(&bytes).map(Self)
    }
}

/// The number of elements of a JSON object's top-level `entry` array, read without
/// building them (0 when there is none).
struct EntryCount(usize);

impl<'de> serde::Deserialize<'de> for EntryCount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Top;
        struct Elements;
        impl<'de> serde::de::Visitor<'de> for Elements {
            type Value = usize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
                let mut count = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    count += 1;
                }
                Ok(count)
            }
        }
        struct ElementCount(usize);
        impl<'de> serde::Deserialize<'de> for ElementCount {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_seq(Elements).map(ElementCount)
            }
        }
        impl<'de> serde::de::Visitor<'de> for Top {
            type Value = EntryCount;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<EntryCount, A::Error> {
                let mut count = 0;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "entry" {
                        // A repeated key counts its largest array: the full parse keeps the
                        // last, but builds every one on the way.
                        count = count.max(map.next_value::<ElementCount>()?.0);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(EntryCount(count))
            }
        }
        deserializer.deserialize_map(Top)
    }
}

/// The request's JSON body as bytes: content type checked, size limited.
async fn json_bytes(request: Request, state: &AppState) -> Result<bytes::Bytes, ApiError> {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime != "application/fhir+json" && mime != "application/json" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IssueType::NotSupported,
            "send the resource as application/fhir+json",
        ));
    }
    let limit = state.config.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            IssueType::TooCostly,
            format!("the body exceeds the limit of {limit} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(Body::new(request.into_body()), limit).await.map_err(|_| too_large())
}

fn json_value(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| not_json(&e))
}

fn not_json(e: &serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        IssueType::Structure,
        format!("the body is not valid JSON (line {}, column {})", e.line(), e.column()),
    )
}

#[cfg(test)]
mod tests {
    use super::EntryCount;

    fn count(text: &str) -> Option<usize> {
        serde_json::from_str::<EntryCount>(text).ok().map(|c| c.0)
    }

    #[test]
    fn entries_are_counted_without_building_them() {
        assert_eq!(count(r#"{"resourceType":"Bundle","entry":[{"a":[1,{"b":2}]},{},3]}"#), Some(3));
        assert_eq!(count(r#"{"resourceType":"Bundle"}"#), Some(0));
        // Only the top level's `entry`: a nested one is some resource's own element.
        assert_eq!(count(r#"{"x":{"entry":[1,2]},"entry":[1]}"#), Some(1));
        // An escaped key is still the same key; a repeated one counts its largest array.
        assert_eq!(count(r#"{"\u0065ntry":[1,2]}"#), Some(2));
        assert_eq!(count(r#"{"entry":[1,2,3],"entry":[]}"#), Some(3));
        assert_eq!(count("[1,2]"), None);
        assert_eq!(count("{\"entry\": 5}"), None);
    }
}
