//! The one place values become bytes on disk: bincode 1.3 (final, frozen format), so the
//! encoding cannot drift under us. Each file format carries its own version
//! (`wal::FORMAT_VERSION`, `snapshot::FORMAT_VERSION`), bumped when a persisted type changes.

use super::StorageError;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serialize(value).expect("in-memory values always serialize")
}

pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StorageError> {
    bincode::deserialize(bytes).map_err(|error| StorageError::Decode {
        what,
        reason: error.to_string(),
    })
}

/// The options `bincode::serialize` uses, spelled out for the streaming calls (whose
/// defaults differ: varint integers).
fn options() -> impl bincode::Options {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .allow_trailing_bytes()
}

/// Encodes `value` into `writer` piece by piece, never holding the whole encoding.
pub fn encode_into<T: Serialize>(writer: impl std::io::Write, value: &T) -> std::io::Result<()> {
    use bincode::Options;
    options()
        .serialize_into(writer, value)
        .map_err(|error| match *error {
            bincode::ErrorKind::Io(error) => error,
            other => std::io::Error::other(other.to_string()),
        })
}

/// Decodes one value from `reader`, reading at most `limit_bytes` (so a damaged length
/// prefix cannot make it allocate without bound).
pub fn decode_from<T: DeserializeOwned>(
    what: &'static str,
    reader: impl std::io::Read,
    limit_bytes: u64,
) -> Result<T, StorageError> {
    use bincode::Options;
    options()
        .with_limit(limit_bytes)
        .deserialize_from(reader)
        .map_err(|error| StorageError::Decode {
            what,
            reason: error.to_string(),
        })
}

/// The length `encode` would produce, without encoding (bounds checks on hot paths).
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    bincode::serialized_size(value).expect("in-memory values always serialize") as usize
}
