//! `multipart/related` bodies as Google's media upload sends them: quoted or bare boundaries, CRLF or LF line
//! breaks, part headers in any case, and a closing `--BOUNDARY--` with or without a final line break (Python
//! sends none). It splits parts; it does not interpret them.

/// One body part: its headers (names lower-cased) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part<'a> {
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl Part<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MultipartError {
    #[error("the Content-Type {content_type:?} is not multipart/related with a boundary")]
    NoBoundary { content_type: String },
    #[error("the body does not start with the boundary delimiter --{boundary}")]
    NoOpeningDelimiter { boundary: String },
    #[error("part {index} is not followed by a boundary delimiter")]
    Unterminated { index: usize },
}

/// The `boundary` parameter of a `multipart/related` Content-Type.
pub(crate) fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let no_boundary = || MultipartError::NoBoundary { content_type: content_type.to_owned() };
    let mut params = content_type.split(';');
    let media_type = params.next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("multipart/related") && !media_type.eq_ignore_ascii_case("multipart/mixed") {
        return Err(no_boundary());
    }
    params
        .filter_map(|param| param.split_once('='))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|boundary| !boundary.is_empty())
        .ok_or_else(no_boundary)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > haystack.len() {
        return None;
    }
    haystack[from..].windows(needle.len()).position(|window| window == needle).map(|offset| from + offset)
}

/// Skip a line break (CRLF or LF) at `at`, after optional transport padding.
fn skip_line_break(body: &[u8], mut at: usize) -> usize {
    while matches!(body.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    match body.get(at..at + 2) {
        Some(b"\r\n") => at + 2,
        _ if body.get(at) == Some(&b'\n') => at + 1,
        _ => at,
    }
}

/// Split `body` into its parts.
pub(crate) fn parse<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, MultipartError> {
    let delimiter = format!("--{boundary}").into_bytes();
    let line_delimiter = [b"\n".as_slice(), &delimiter].concat();
    let opening = if body.starts_with(&delimiter) {
        0
    } else {
        find(body, &line_delimiter, 0)
            .map(|at| at + 1)
            .ok_or_else(|| MultipartError::NoOpeningDelimiter { boundary: boundary.to_owned() })?
    };
    let mut parts = Vec::new();
    let mut cursor = opening + delimiter.len();
    loop {
        if body.get(cursor..cursor + 2) == Some(b"--") {
            return Ok(parts);
        }
        let start = skip_line_break(body, cursor);
        let next =
            next_delimiter(body, &line_delimiter, start).ok_or(MultipartError::Unterminated { index: parts.len() })?;
        let end = if next > start && body[next - 1] == b'\r' { next - 1 } else { next };
        parts.push(split_part(&body[start..end.max(start)]));
        cursor = next + line_delimiter.len();
    }
}

/// The next `\n--BOUNDARY` that really is a delimiter: followed by `--`, padding, a line break or the end.
fn next_delimiter(body: &[u8], line_delimiter: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let at = find(body, line_delimiter, from)?;
        let after = at + line_delimiter.len();
        if matches!(body.get(after), None | Some(b'-' | b'\r' | b'\n' | b' ' | b'\t')) {
            return Some(at);
        }
        from = at + 1;
    }
}

fn split_part(raw: &[u8]) -> Part<'_> {
    // A part with no headers starts with its blank line.
    let (head, body) = if raw.starts_with(b"\r\n") {
        (&raw[..0], &raw[2..])
    } else if raw.starts_with(b"\n") {
        (&raw[..0], &raw[1..])
    } else if let Some(at) = find(raw, b"\r\n\r\n", 0) {
        (&raw[..at], &raw[at + 4..])
    } else if let Some(at) = find(raw, b"\n\n", 0) {
        (&raw[..at], &raw[at + 2..])
    } else {
        (raw, &raw[raw.len()..])
    };
    let headers = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Part { headers, body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(
        "multipart/related; boundary=\"===============7709692719097371713==\"",
        "===============7709692719097371713=="
    )]
    #[case("multipart/related;boundary=MDuXWGyeE33QFXGchb2VFWc4Z7945d", "MDuXWGyeE33QFXGchb2VFWc4Z7945d")]
    #[case("Multipart/Related; charset=x; BOUNDARY=abc", "abc")]
    fn boundaries_are_found_quoted_or_not(#[case] content_type: &str, #[case] expected: &str) {
        assert_eq!(boundary(content_type), Ok(expected.to_owned()));
    }

    #[test]
    fn other_content_types_have_no_boundary() {
        assert!(boundary("application/json").is_err());
        assert!(boundary("multipart/related").is_err());
    }

    #[rstest]
    #[case::python_without_final_crlf(b"--B\r\ncontent-type: application/json\r\n\r\n{}\r\n--B\r\ncontent-type: */*\r\n\r\n{\"a\":1}\n\r\n--B--".as_slice())]
    #[case::with_final_crlf(b"--B\r\nContent-Type: application/json\r\n\r\n{}\r\n--B\r\nContent-Type: */*\r\n\r\n{\"a\":1}\n\r\n--B--\r\n".as_slice())]
    #[case::bare_line_feeds(b"--B\nCONTENT-TYPE: application/json\n\n{}\n--B\ncontent-type: */*\n\n{\"a\":1}\n\n--B--".as_slice())]
    #[case::with_preamble(b"ignored\r\n--B\r\ncontent-type: application/json\r\n\r\n{}\r\n--B\r\ncontent-type: */*\r\n\r\n{\"a\":1}\n\r\n--B--".as_slice())]
    fn two_parts_come_out_whatever_the_framing(#[case] body: &[u8]) {
        let parts = parse(body, "B").expect("a well-formed body");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].header("content-type"), Some("application/json"));
        assert_eq!(parts[0].body, b"{}");
        assert_eq!(parts[1].body, b"{\"a\":1}\n");
    }

    #[test]
    fn a_missing_closing_delimiter_is_an_error() {
        assert_eq!(parse(b"--B\r\ncontent-type: a\r\n\r\n{}", "B"), Err(MultipartError::Unterminated { index: 0 }));
        assert!(matches!(parse(b"no boundary here", "B"), Err(MultipartError::NoOpeningDelimiter { .. })));
    }
}
