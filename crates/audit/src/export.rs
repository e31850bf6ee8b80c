//! The export format read by the standalone verifier: one JSON object per line,
//! `{"seq": n, "entry": "<base64 of the exact stored bytes>", "leaf": "<hex>", "chain": "<hex>"}`.
//! Base64 keeps the entry's bytes exact, which the hashes are over.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::StoredEntry;
use crate::checkpoint::{hex, unhex};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seq: u64,
    entry: String,
    leaf: String,
    chain: String,
}

/// One export line for `entry` (without the newline).
pub fn export_line(entry: &StoredEntry) -> String {
    let line =
        Line { seq: entry.seq, entry: B64.encode(&entry.bytes), leaf: hex(&entry.leaf), chain: hex(&entry.chain) };
    serde_json::to_string(&line).unwrap_or_default()
}

/// Parses one export line; `None` if it is malformed.
pub fn parse_line(text: &str) -> Option<StoredEntry> {
    let line: Line = serde_json::from_str(text).ok()?;
    Some(StoredEntry {
        seq: line.seq,
        bytes: B64.decode(line.entry).ok()?,
        leaf: unhex(&line.leaf)?,
        chain: unhex(&line.chain)?,
    })
}

/// Puts archived content back: for each archive entry whose position holds an emptied
/// (archived) entry, the archive's bytes. The verifier then checks them against the stored
/// leaf hashes, so a changed archive shows. Returns how many entries were filled.
pub fn fill_from_archive(entries: &mut [StoredEntry], archive: impl IntoIterator<Item = StoredEntry>) -> u64 {
    let mut filled = 0;
    for archived in archive {
        let Ok(index) = usize::try_from(archived.seq) else { continue };
        if let Some(entry) = entries.get_mut(index)
            && entry.seq == archived.seq
            && entry.bytes.is_empty()
        {
            entry.bytes = archived.bytes;
            filled += 1;
        }
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_exactly() {
        let e = StoredEntry { seq: 7, bytes: b"{\"time_ms\":1}".to_vec(), leaf: [1; 32], chain: [2; 32] };
        let parsed = parse_line(&export_line(&e)).expect("parses");
        assert_eq!((parsed.seq, parsed.bytes, parsed.leaf, parsed.chain), (7, e.bytes.clone(), [1; 32], [2; 32]));
        assert!(parse_line("{\"seq\": 1}").is_none());
        assert!(parse_line("not json").is_none());
    }
}
