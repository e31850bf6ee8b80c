//! Database rows in an engine-neutral, canonical encoding: the same rows give the same bytes
//! whether they were read from SQLite or PostgreSQL, so a table's digest proves a restore
//! into either engine exact.
//!
//! A row is its values in column order; each value is a tag byte then its payload:
//! `0` null, `1` integer (i64, big-endian), `2` real (f64 bits, big-endian), `3` text and
//! `4` bytes (u32 big-endian length, then the bytes).

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::BackupError;

/// How a column's values are stored, as far as a restore needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    Integer,
    Real,
    Text,
    Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    pub name: String,
    pub kind: ColumnKind,
}

/// A table's name and columns, in the order its rows are encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    pub name: String,
    pub columns: Vec<ColumnSpec>,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// Appends `row`'s canonical encoding to `out`.
pub fn encode_row(row: &[Value], out: &mut Vec<u8>) {
    for value in row {
        match value {
            Value::Null => out.push(0),
            Value::Integer(i) => {
                out.push(1);
                out.extend_from_slice(&i.to_be_bytes());
            }
            Value::Real(f) => {
                out.push(2);
                out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
            Value::Text(s) => {
                out.push(3);
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Value::Bytes(b) => {
                out.push(4);
                out.extend_from_slice(&(b.len() as u32).to_be_bytes());
                out.extend_from_slice(b);
            }
        }
    }
}

/// Reads one row of `columns` values; `Ok(None)` at a clean end of the stream. A stream that
/// ends inside a row, or holds an unknown tag, is an error naming the table.
pub fn decode_row(input: &mut impl Read, schema: &TableSchema) -> Result<Option<Vec<Value>>, BackupError> {
    let bad = |why: &str| BackupError::Table { table: schema.name.clone(), why: why.to_owned() };
    let mut row = Vec::with_capacity(schema.columns.len());
    for i in 0..schema.columns.len() {
        let mut tag = [0u8; 1];
        match input.read(&mut tag) {
            Ok(0) if i == 0 => return Ok(None),
            Ok(0) => return Err(bad("its data ends inside a row")),
            Ok(_) => {}
            Err(e) => return Err(bad(&format!("cannot be read: {e}"))),
        }
        let mut fixed = [0u8; 8];
        let value = match tag[0] {
            0 => Value::Null,
            1 => {
                input.read_exact(&mut fixed).map_err(|_| bad("its data ends inside a row"))?;
                Value::Integer(i64::from_be_bytes(fixed))
            }
            2 => {
                input.read_exact(&mut fixed).map_err(|_| bad("its data ends inside a row"))?;
                Value::Real(f64::from_bits(u64::from_be_bytes(fixed)))
            }
            3 | 4 => {
                let mut len = [0u8; 4];
                input.read_exact(&mut len).map_err(|_| bad("its data ends inside a row"))?;
                let len = u32::from_be_bytes(len) as usize;
                // Read through `take` so a corrupt length cannot make us allocate 4 GiB up front.
                let mut bytes = Vec::new();
                input.take(len as u64).read_to_end(&mut bytes).map_err(|_| bad("its data cannot be read"))?;
                if bytes.len() != len {
                    return Err(bad("its data ends inside a row"));
                }
                if tag[0] == 3 {
                    Value::Text(String::from_utf8(bytes).map_err(|_| bad("a text value is not UTF-8"))?)
                } else {
                    Value::Bytes(bytes)
                }
            }
            _ => return Err(bad("its data holds an unknown value tag")),
        };
        row.push(value);
    }
    Ok(Some(row))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(n: usize) -> TableSchema {
        TableSchema {
            name: "t".into(),
            columns: (0..n).map(|i| ColumnSpec { name: format!("c{i}"), kind: ColumnKind::Text }).collect(),
        }
    }

    #[test]
    fn rows_round_trip_exactly() {
        let rows = vec![
            vec![
                Value::Null,
                Value::Integer(-42),
                Value::Real(0.1),
                Value::Text("Daffy Duck".into()),
                Value::Bytes(vec![0, 255]),
            ],
            vec![
                Value::Integer(i64::MAX),
                Value::Text(String::new()),
                Value::Bytes(vec![]),
                Value::Null,
                Value::Real(-0.0),
            ],
        ];
        let mut bytes = Vec::new();
        for row in &rows {
            encode_row(row, &mut bytes);
        }
        let mut input = bytes.as_slice();
        let s = schema(5);
        assert_eq!(decode_row(&mut input, &s).expect("test step").expect("test step"), rows[0]);
        let second = decode_row(&mut input, &s).expect("test step").expect("test step");
        assert_eq!(second[..4], rows[1][..4]);
        assert!(matches!(second[4], Value::Real(f) if f.to_bits() == (-0.0f64).to_bits()));
        assert!(decode_row(&mut input, &s).expect("test step").is_none());
    }

    #[test]
    fn a_truncated_or_garbled_stream_is_an_error_not_a_short_table() {
        let mut bytes = Vec::new();
        encode_row(&[Value::Text("MRN 123456789".into()), Value::Integer(1)], &mut bytes);
        let s = schema(2);
        for cut in 1..bytes.len() {
            assert!(decode_row(&mut &bytes[..cut], &s).is_err(), "cut at {cut}");
        }
        let mut garbled = bytes.clone();
        garbled[0] = 9;
        assert!(decode_row(&mut garbled.as_slice(), &s).is_err());
        // A huge length does not allocate or panic.
        let huge = [3u8, 0xff, 0xff, 0xff, 0xff, b'x'];
        assert!(decode_row(&mut huge.as_slice(), &s).is_err());
    }
}
