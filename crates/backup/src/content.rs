//! A table's content digest, independent of row order: the sum, modulo 2^256, of the
//! SHA-256 of each row's canonical encoding. SQLite and PostgreSQL return rows without a
//! common order (collations, tables without a key), so this is what shows that a restore
//! into either engine holds exactly the rows that were backed up. It is a check of
//! faithful copying; what protects a backup against an adversary is the chunk names, the
//! AEAD and the manifest signature.

use crate::manifest::hex;
use crate::{BackupError, TableSchema, TableSink, Value, encode_row};

/// The running sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentDigest {
    limbs: [u64; 4],
    rows: u64,
}

impl ContentDigest {
    pub fn add_encoded(&mut self, encoded_row: &[u8]) {
        let hash = phivault_crypto::sha256(encoded_row);
        let mut carry = 0u128;
        for (i, limb) in self.limbs.iter_mut().enumerate() {
            let part = u64::from_be_bytes(hash[24 - 8 * i..32 - 8 * i].try_into().unwrap_or_default());
            let sum = u128::from(*limb) + u128::from(part) + carry;
            *limb = sum as u64;
            carry = sum >> 64;
        }
        self.rows += 1;
    }

    pub fn add(&mut self, row: &[Value]) {
        let mut encoded = Vec::new();
        encode_row(row, &mut encoded);
        self.add_encoded(&encoded);
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn to_hex(&self) -> String {
        let bytes: Vec<u8> = self.limbs.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
        hex(&bytes)
    }
}

/// A sink that only digests: what a database holds, table by table.
#[derive(Debug, Default)]
pub struct DigestSink {
    pub tables: Vec<(TableSchema, ContentDigest)>,
    open: Option<(TableSchema, ContentDigest)>,
}

impl TableSink for DigestSink {
    fn begin_table(&mut self, schema: TableSchema) -> Result<(), BackupError> {
        self.open = Some((schema, ContentDigest::default()));
        Ok(())
    }

    fn row(&mut self, row: &[Value]) -> Result<(), BackupError> {
        match self.open.as_mut() {
            Some((_, digest)) => {
                digest.add(row);
                Ok(())
            }
            None => Err(BackupError::Io("a row came outside any table".into())),
        }
    }

    fn end_table(&mut self) -> Result<(), BackupError> {
        let open = self.open.take().ok_or_else(|| BackupError::Io("a table ended that was not begun".into()))?;
        self.tables.push(open);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter_but_content_and_multiplicity_do() {
        let rows = [vec![Value::Integer(1)], vec![Value::Text("Daffy".into())], vec![Value::Null]];
        let digest = |order: &[usize]| {
            let mut d = ContentDigest::default();
            for &i in order {
                d.add(&rows[i]);
            }
            d.to_hex()
        };
        assert_eq!(digest(&[0, 1, 2]), digest(&[2, 0, 1]));
        assert_ne!(digest(&[0, 1, 2]), digest(&[0, 1]));
        assert_ne!(digest(&[0, 1, 2]), digest(&[0, 1, 2, 2]));
        assert_ne!(digest(&[0, 0]), digest(&[1, 1]));
        assert_eq!(ContentDigest::default().to_hex(), "0".repeat(64));
    }
}
