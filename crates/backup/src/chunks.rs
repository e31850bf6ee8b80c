//! Chunks: content-defined pieces of a stream, named by a keyed hash of their plaintext,
//! compressed, then sealed with AES-256-GCM (the id and key id bound as associated data, so
//! a chunk cannot be passed off under another name or key).

use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
use fastcdc::v2020::{FastCDC, Normalization};
use serde::{Deserialize, Serialize};

use crate::{BackupError, BackupKey};

const AAD_PREFIX: &[u8] = b"phivault-backup-chunk/1";
const ZSTD_LEVEL: i32 = 3;
/// The largest plaintext a chunk may decompress to (the chunker's maximum, with room).
const MAX_PLAINTEXT: usize = 8 * 1024 * 1024;

/// Cut points: 256 KiB minimum, 1 MiB on average, 4 MiB at most.
const MIN_CHUNK: usize = 256 * 1024;
const AVG_CHUNK: usize = 1024 * 1024;
const MAX_CHUNK: usize = 4 * 1024 * 1024;

/// A chunk's name: HMAC-SHA-256 of its plaintext under the chunk-id key, in hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChunkId(String);

impl ChunkId {
    fn from_mac(mac: &[u8; 32]) -> Self {
        Self(mac.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ChunkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ChunkId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Self(s))
        } else {
            Err("a chunk id is 64 lower-case hex digits".into())
        }
    }
}

impl From<ChunkId> for String {
    fn from(id: ChunkId) -> String {
        id.0
    }
}

fn aad(key: &BackupKey, id: &ChunkId) -> Vec<u8> {
    [AAD_PREFIX, key.id().as_bytes(), b"|", id.as_str().as_bytes()].concat()
}

/// The name `plaintext` is stored under.
pub(crate) fn name(key: &BackupKey, plaintext: &[u8]) -> ChunkId {
    ChunkId::from_mac(&key.chunk_mac(plaintext))
}

/// Compresses and seals `plaintext` under its name: `nonce ‖ ciphertext ‖ tag`.
pub(crate) fn seal(key: &BackupKey, id: &ChunkId, plaintext: &[u8]) -> Result<Vec<u8>, BackupError> {
    let mut body =
        zstd::bulk::compress(plaintext, ZSTD_LEVEL).map_err(|e| BackupError::io("cannot compress a chunk", e))?;
    let nonce_bytes: [u8; NONCE_LEN] = phivault_crypto::random_bytes().map_err(|_| BackupError::Crypto)?;
    key.seal_key()
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(aad(key, id)), &mut body)
        .map_err(|_| BackupError::Crypto)?;
    let mut sealed = Vec::with_capacity(NONCE_LEN + body.len());
    sealed.extend_from_slice(&nonce_bytes);
    sealed.extend_from_slice(&body);
    Ok(sealed)
}

/// Opens a sealed chunk and checks that its plaintext is the one its name says.
pub(crate) fn open(key: &BackupKey, id: &ChunkId, sealed: &[u8]) -> Result<Vec<u8>, BackupError> {
    let bad = |why: &str| BackupError::Chunk { id: id.to_string(), why: why.to_owned() };
    if sealed.len() < NONCE_LEN + 16 {
        return Err(bad("is truncated"));
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad("is truncated"))?;
    let mut body = body.to_vec();
    let compressed = key.seal_key().open_in_place(nonce, Aad::from(aad(key, id)), &mut body).map_err(|_| {
        bad("does not decrypt under this backup key: it was altered, or belongs to another chunk or key")
    })?;
    let plaintext = zstd::bulk::decompress(compressed, MAX_PLAINTEXT).map_err(|_| bad("does not decompress"))?;
    if key.chunk_mac(&plaintext) != *decode_hex(id).as_ref().ok_or_else(|| bad("has a malformed name"))? {
        return Err(bad("holds content other than its name says"));
    }
    Ok(plaintext)
}

fn decode_hex(id: &ChunkId) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    for (i, pair) in id.as_str().as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        *out.get_mut(i)? = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Cuts a stream written piecewise into content-defined chunks, so that an insertion early
/// in a table changes only the chunks around it, not every chunk after it.
#[derive(Debug)]
pub(crate) struct Chunker {
    buffer: Vec<u8>,
    seed: u64,
}

impl Chunker {
    pub(crate) fn new(seed: u64) -> Self {
        Self { buffer: Vec::with_capacity(2 * MAX_CHUNK), seed }
    }

    /// A placeholder that allocates nothing.
    pub(crate) fn empty(seed: u64) -> Self {
        Self { buffer: Vec::new(), seed }
    }

    /// Whether [`Chunker::drain`] would emit anything now (it cuts only with a full buffer
    /// or at the end): most rows just append.
    pub(crate) fn is_ready(&self, finish: bool) -> bool {
        finish || self.buffer.len() >= 2 * MAX_CHUNK
    }

    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buffer
    }

    /// Emits every chunk that is certainly complete; keeps the tail (whose cut point may
    /// move with more data) unless `finish`.
    pub(crate) fn drain(
        &mut self,
        finish: bool,
        mut emit: impl FnMut(&[u8]) -> Result<(), BackupError>,
    ) -> Result<(), BackupError> {
        if !self.is_ready(finish) {
            return Ok(());
        }
        let cuts: Vec<(usize, usize)> = FastCDC::with_level_and_seed(
            &self.buffer,
            MIN_CHUNK,
            AVG_CHUNK,
            MAX_CHUNK,
            Normalization::Level1,
            self.seed,
        )
        .map(|c| (c.offset, c.length))
        .collect();
        let keep_last = !finish && cuts.len() > 1;
        let emitted = if keep_last { cuts.len() - 1 } else { cuts.len() };
        let mut consumed = 0;
        for &(offset, length) in &cuts[..emitted] {
            emit(&self.buffer[offset..offset + length])?;
            consumed = offset + length;
        }
        self.buffer.drain(..consumed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_chunk_opens_only_unchanged_under_its_name_and_key() {
        let key = BackupKey::generate().expect("test step");
        let id = name(&key, b"Daffy Duck, MRN 123456789");
        let sealed = seal(&key, &id, b"Daffy Duck, MRN 123456789").expect("test step");
        assert_eq!(open(&key, &id, &sealed).expect("test step"), b"Daffy Duck, MRN 123456789");
        for i in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 1;
            assert!(open(&key, &id, &flipped).is_err(), "a flipped bit at {i} was accepted");
        }
        let other_id = name(&key, b"Porky Pig");
        let other = seal(&key, &other_id, b"Porky Pig").expect("test step");
        assert!(open(&key, &id, &other).is_err(), "a chunk under another name was accepted");
        assert!(open(&key, &other_id, &other).is_ok());
        assert!(open(&BackupKey::generate().expect("test step"), &id, &sealed).is_err(), "another key opened it");
        assert!(open(&key, &id, &sealed[..10]).is_err());
    }

    #[test]
    fn an_insertion_changes_only_nearby_chunks() {
        let mut data = Vec::new();
        let mut x: u64 = 1;
        while data.len() < 12 * 1024 * 1024 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            data.extend_from_slice(&x.to_le_bytes());
        }
        let cut = |bytes: &[u8]| {
            let mut chunker = Chunker::new(7);
            let mut out = Vec::new();
            for piece in bytes.chunks(100_000) {
                chunker.buffer().extend_from_slice(piece);
                chunker
                    .drain(false, |c| {
                        out.push(c.to_vec());
                        Ok(())
                    })
                    .expect("test step");
            }
            chunker
                .drain(true, |c| {
                    out.push(c.to_vec());
                    Ok(())
                })
                .expect("test step");
            out
        };
        let before = cut(&data);
        assert_eq!(before.concat(), data);
        let mut edited = data.clone();
        edited.splice(3_000_000..3_000_000, b"Porky Pig".iter().copied());
        let after = cut(&edited);
        assert_eq!(after.concat(), edited);
        let shared = after.iter().filter(|c| before.contains(c)).count();
        assert!(shared + 2 >= after.len(), "{shared} of {} chunks shared", after.len());
    }
}
