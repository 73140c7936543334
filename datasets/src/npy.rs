//! Minimal NumPy `.npy` reader and writer: the official builders store every array this
//! way, so a directory they wrote must load here unchanged. Only C-order integer arrays
//! are needed; anything else is refused with the file named.

use crate::error::{DataError, Result};
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// An integer array read from disk, converted to `T` whatever its stored dtype (a value
/// that does not fit `T` is an error, never a silent wrap).
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
    /// The stored dtype descriptor, e.g. `|u1` or `<i4`.
    pub descr: String,
}

/// Element types we read into.
pub trait NpyTarget: Copy + TryFrom<i64> {
    /// The file's own buffer, reused as the data when the stored dtype is exactly this type
    /// (no conversion pass, no second buffer).
    fn direct(_descr: &str, bytes: Vec<u8>) -> std::result::Result<Vec<Self>, Vec<u8>> {
        Err(bytes)
    }
}
impl NpyTarget for u8 {
    fn direct(descr: &str, bytes: Vec<u8>) -> std::result::Result<Vec<u8>, Vec<u8>> {
        if descr.ends_with("u1") {
            Ok(bytes)
        } else {
            Err(bytes)
        }
    }
}
impl NpyTarget for i32 {}
impl NpyTarget for i64 {}

/// Element types we write.
pub trait NpyElement: Copy {
    const DESCR: &'static str;
    fn put(self, out: &mut Vec<u8>);
}
impl NpyElement for u8 {
    const DESCR: &'static str = "|u1";
    fn put(self, out: &mut Vec<u8>) {
        out.push(self)
    }
}
impl NpyElement for i32 {
    const DESCR: &'static str = "<i4";
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes())
    }
}

/// Serialises an array in format version 1.0, the version NumPy writes for small headers.
pub fn encode<T: NpyElement>(shape: &[usize], data: &[T]) -> Vec<u8> {
    assert_eq!(
        shape.iter().product::<usize>(),
        data.len(),
        "npy shape does not match data"
    );
    let shape_text = match shape {
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        T::DESCR,
        shape_text
    );
    // Pad so that magic + version + length + header is a multiple of 64, ending in '\n'.
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(header.len() + 10 + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &x in data {
        x.put(&mut out);
    }
    out
}

/// Writes an array atomically.
pub fn write<T: NpyElement>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    crate::fsio::write_atomic(path, &encode(shape, data))
}

pub fn read<T: NpyTarget>(path: &Path) -> Result<NpyArray<T>> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode(bytes).map_err(|what| DataError::format(path, what))
}

/// Decodes straight into `T`: a `|u1` array read as `u8` is a plain copy, so multi-gigabyte
/// token arrays never pass through a wider type.
pub fn decode<T: NpyTarget>(bytes: Vec<u8>) -> std::result::Result<NpyArray<T>, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (bad magic)".into());
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated .npy header".into());
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let data_start = header_start + header_len;
    if bytes.len() < data_start {
        return Err("truncated .npy header".into());
    }
    let header = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| "header is not text".to_string())?;
    let descr = header_value(header, "descr")
        .map(|v| v.trim_matches(|c| c == '\'' || c == '"').to_string())
        .ok_or("header has no 'descr'")?;
    let fortran = header_value(header, "fortran_order").ok_or("header has no 'fortran_order'")?;
    if fortran != "False" {
        return Err("Fortran-ordered arrays are not supported".into());
    }
    let shape = parse_shape(header)?;
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} has more elements than memory can address"))?;
    let (width, read_one): (usize, fn(&[u8]) -> i64) = match descr.as_str() {
        "|u1" | "<u1" => (1, |b| b[0] as i64),
        "|i1" | "<i1" => (1, |b| b[0] as i8 as i64),
        "|b1" => (1, |b| (b[0] != 0) as i64),
        "<u2" => (2, |b| u16::from_le_bytes([b[0], b[1]]) as i64),
        "<i2" => (2, |b| i16::from_le_bytes([b[0], b[1]]) as i64),
        "<u4" => (4, |b| u32::from_le_bytes(b[..4].try_into().unwrap()) as i64),
        "<i4" => (4, |b| i32::from_le_bytes(b[..4].try_into().unwrap()) as i64),
        "<i8" => (8, |b| i64::from_le_bytes(b[..8].try_into().unwrap())),
        "<u8" => (8, |b| u64::from_le_bytes(b[..8].try_into().unwrap()) as i64),
        other => return Err(format!("unsupported dtype {other} (integer arrays only)")),
    };
    let available = bytes.len() - data_start;
    let needed = count
        .checked_mul(width)
        .ok_or_else(|| format!("shape {shape:?} needs more bytes than memory can address"))?;
    if available < needed {
        return Err(format!(
            "truncated data: shape {shape:?} needs {needed} bytes, file has {available}"
        ));
    }
    let mut bytes = bytes;
    bytes.truncate(data_start + needed);
    bytes.drain(..data_start);
    let bytes = match T::direct(&descr, bytes) {
        Ok(data) => return Ok(NpyArray { shape, data, descr }),
        Err(bytes) => bytes,
    };
    let data = bytes
        .chunks_exact(width)
        .enumerate()
        .map(|(i, b)| {
            let v = read_one(b);
            T::try_from(v)
                .map_err(|_| format!("value {v} at flat index {i} does not fit the expected type"))
        })
        .collect::<std::result::Result<Vec<T>, String>>()?;
    Ok(NpyArray { shape, data, descr })
}

fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let quoted = [format!("'{key}'"), format!("\"{key}\"")];
    let at = quoted
        .iter()
        .find_map(|k| header.find(k.as_str()).map(|i| i + k.len()))?;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

fn parse_shape(header: &str) -> std::result::Result<Vec<usize>, String> {
    let at = header.find("'shape'").ok_or("header has no 'shape'")?;
    let rest = &header[at..];
    let open = rest.find('(').ok_or("malformed shape")?;
    let close = open + rest[open..].find(')').ok_or("malformed shape")?;
    rest[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| format!("bad shape entry {s:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_alignment() {
        let bytes = encode(&[2, 3], &[1u8, 2, 3, 4, 5, 6]);
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let back = decode::<u8>(bytes.clone()).unwrap();
        assert_eq!(back.shape, vec![2, 3]);
        assert_eq!(back.data, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(
            decode::<i64>(bytes.clone()).unwrap().data,
            vec![1, 2, 3, 4, 5, 6]
        );
        let ints = decode::<i64>(encode(&[3], &[-1i32, 0, 7])).unwrap();
        assert_eq!(ints.shape, vec![3]);
        assert_eq!(ints.data, vec![-1, 0, 7]);
    }

    #[test]
    fn reads_numpy_written_header() {
        // Header text exactly as numpy 1.x/2.x writes it for an int64 vector of length 2.
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let mut h = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }".to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
        bytes.extend_from_slice(h.as_bytes());
        bytes.extend_from_slice(&5i64.to_le_bytes());
        bytes.extend_from_slice(&(-3i64).to_le_bytes());
        assert_eq!(decode::<i64>(bytes.clone()).unwrap().data, vec![5, -3]);
        // -3 does not fit u8: refused, not wrapped.
        assert!(decode::<u8>(bytes.clone())
            .unwrap_err()
            .contains("does not fit"));
    }

    /// A header with the given text after the magic, padded as NumPy pads it.
    fn with_header(text: &str) -> Vec<u8> {
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&((text.len() + 1) as u16).to_le_bytes());
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(b'\n');
        bytes
    }

    #[test]
    fn malformed_shapes_are_errors_not_panics() {
        // ')' before '(': used to slice backwards and panic.
        let h = "{'descr': '|u1', 'fortran_order': False, 'shape': ), (2,), }";
        assert!(decode::<u8>(with_header(h)).is_err());
        let h = "{'descr': '|u1', 'shape': ), 'fortran_order': False, }";
        assert!(decode::<u8>(with_header(h)).is_err());
        // A shape whose element count overflows: used to wrap and pass the length check.
        let h = "{'descr': '<i8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2), }";
        let err = decode::<i64>(with_header(h)).unwrap_err();
        assert!(err.contains("memory"), "{err}");
        let h = "{'descr': '<i8', 'fortran_order': False, 'shape': (2305843009213693952,), }";
        let err = decode::<i64>(with_header(h)).unwrap_err();
        assert!(err.contains("memory"), "{err}");
    }

    #[test]
    fn truncated_and_foreign_files_are_refused() {
        let bytes = encode(&[4], &[1i32, 2, 3, 4]);
        let err = decode::<i64>(bytes[..bytes.len() - 3].to_vec()).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        assert!(decode::<i64>(b"hello world, not numpy".to_vec())
            .unwrap_err()
            .contains("magic"));
        let mut float = encode(&[1], &[0u8]);
        let at = float.windows(3).position(|w| w == b"|u1").unwrap();
        float[at..at + 3].copy_from_slice(b"<f4");
        assert!(decode::<i64>(float)
            .unwrap_err()
            .contains("unsupported dtype"));
    }
}
