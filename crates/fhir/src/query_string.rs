/// Splits a URL query (`a=1&b=x%7Cy`) into decoded pairs; `+` is a space. Invalid
/// percent-escapes are kept literally rather than guessed at.
pub fn parse_query_string(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Reads a FHIR version ETag (`W/"3"` or `"3"`) as a version number.
pub fn parse_version_etag(etag: &str) -> Option<i64> {
    let trimmed = etag.trim();
    let unweak = trimmed.strip_prefix("W/").unwrap_or(trimmed);
    let inner = unweak.strip_prefix('"')?.strip_suffix('"')?;
    inner.parse().ok().filter(|v| *v >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        let pairs = parse_query_string("identifier=https://x.org|1&name=Daffy+Duck&b=%7C%41&bad=%zz&trail=%4");
        assert_eq!(pairs[0], ("identifier".into(), "https://x.org|1".into()));
        assert_eq!(pairs[1], ("name".into(), "Daffy Duck".into()));
        assert_eq!(pairs[2], ("b".into(), "|A".into()));
        assert_eq!(pairs[3], ("bad".into(), "%zz".into()));
        assert_eq!(pairs[4], ("trail".into(), "%4".into()));
        assert!(parse_query_string("").is_empty());
    }

    #[test]
    fn etags() {
        assert_eq!(parse_version_etag("W/\"3\""), Some(3));
        assert_eq!(parse_version_etag("\"12\""), Some(12));
        assert_eq!(parse_version_etag("3"), None);
        assert_eq!(parse_version_etag("W/\"0\""), None);
        assert_eq!(parse_version_etag("W/\"x\""), None);
    }
}
