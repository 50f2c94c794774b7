//! Paging of the list calls (`datasets.list`, `tables.list`, `jobs.list`): `maxResults` and the opaque
//! `pageToken` each page's `nextPageToken` hands out. It does not page `tabledata.list`, whose tokens are bound
//! to one table (see `tabledata.rs`), and it keeps no snapshot: a page is an offset into the current listing.

use std::ops::Range;

use super::errors::ApiError;
use super::routes::ApiRequest;

/// One page of a listing of `total` items: which of them, and the token for the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub items: Range<usize>,
    /// `nextPageToken`, present only when items remain.
    pub next_token: Option<String>,
}

fn token(offset: usize) -> String {
    format!("L{offset:x}")
}

fn parse_token(token: &str) -> Option<usize> {
    usize::from_str_radix(token.strip_prefix('L')?, 16).ok()
}

/// The page `request` asks for. Without `maxResults` (or with 0) the page runs to the end of the listing.
pub(crate) fn page(request: &ApiRequest<'_>, total: usize) -> Result<Page, ApiError> {
    let start = match request.query("pageToken").filter(|token| !token.is_empty()) {
        None => 0,
        Some(text) => parse_token(text)
            .filter(|offset| *offset <= total)
            .ok_or_else(|| ApiError::invalid(format!("Invalid page token: {text}")))?,
    };
    let limit = request.query_u64("maxResults")?.filter(|max| *max > 0);
    let end = limit.map_or(total, |max| start.saturating_add(usize::try_from(max).unwrap_or(usize::MAX)).min(total));
    Ok(Page { items: start..end, next_token: (end < total).then(|| token(end)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        assert_eq!(parse_token(&token(0)), Some(0));
        assert_eq!(parse_token(&token(4096)), Some(4096));
        assert_eq!(parse_token("4096"), None);
        assert_eq!(parse_token("Lzz"), None);
    }
}
