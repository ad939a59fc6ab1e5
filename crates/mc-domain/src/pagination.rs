//! Cursor pagination: `limit` (default 20, max 100) and an opaque `cursor`; responses are
//! `{items, next_cursor, total?}`.

use crate::error::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size a caller may ask for.
pub const MAX_LIMIT: u32 = 100;

/// Query parameters of every list endpoint.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1-100 (default 20).
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A validated page request with a decoded cursor of key type `K`.
#[derive(Debug, Clone)]
pub struct PageRequest<K> {
    /// Items to return.
    pub limit: u32,
    /// Where the previous page ended, if any.
    pub after: Option<K>,
}

impl<K> PageRequest<K> {
    /// Rows to fetch: one more than the limit, to learn whether another page exists.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

impl PageParams {
    /// Validates the limit and decodes the cursor.
    pub fn parse<K: DeserializeOwned>(&self) -> Result<PageRequest<K>> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Error::invalid_field(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(decode_cursor(raw)?),
        };
        Ok(PageRequest { limit, after })
    }
}

/// Encodes a cursor key as an opaque string.
pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    let json = serde_json::to_vec(key).expect("cursor keys serialize");
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a cursor produced by [`encode_cursor`].
pub fn decode_cursor<K: DeserializeOwned>(raw: &str) -> Result<K> {
    let invalid = || Error::invalid_field("cursor", "is not a cursor returned by this endpoint");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

/// One page of results.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items, in the endpoint's order.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Total matching items, where cheap to count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows, using `key` to make the next cursor.
    pub fn from_rows<K: Serialize>(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> K) -> Self {
        let has_more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if has_more {
            rows.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
            total: None,
        }
    }

    /// Adds a total count.
    pub fn with_total(mut self, total: i64) -> Self {
        self.total = Some(total);
        self
    }

    /// Transforms the items, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
            total: self.total,
        }
    }
}

/// The usual keyset for lists ordered newest first: `(created_at, id)`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct TimeKey {
    /// Creation time of the last item seen.
    pub t: chrono::DateTime<chrono::Utc>,
    /// Id of the last item seen (tie-breaker).
    pub id: uuid::Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_bounds_are_enforced() {
        let over = PageParams {
            limit: Some(101),
            cursor: None,
        };
        assert!(over.parse::<TimeKey>().is_err());
        let zero = PageParams {
            limit: Some(0),
            cursor: None,
        };
        assert!(zero.parse::<TimeKey>().is_err());
        let default = PageParams::default().parse::<TimeKey>().unwrap();
        assert_eq!(default.limit, 20);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        let key = TimeKey {
            t: chrono::Utc::now(),
            id: uuid::Uuid::now_v7(),
        };
        let raw = encode_cursor(&key);
        let back: TimeKey = decode_cursor(&raw).unwrap();
        assert_eq!(back.id, key.id);
        let err = decode_cursor::<TimeKey>("not!base64").unwrap_err();
        assert_eq!(err.details()[0].field, "cursor");
    }

    #[test]
    fn pages_know_when_there_is_more() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(
            decode_cursor::<i32>(page.next_cursor.as_deref().unwrap()).unwrap(),
            2
        );
        let last = Page::from_rows(vec![1, 2], 2, |n| *n);
        assert!(last.next_cursor.is_none());
    }
}
