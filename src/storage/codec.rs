//! The one place values become bytes on disk: bincode 1.3 (final, frozen format) behind a
//! format version, so the encoding cannot drift under us.

use super::StorageError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Version of everything this codec writes; bumped on any change to a persisted type.
pub const FORMAT_VERSION: u32 = 1;

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serialize(value).expect("in-memory values always serialize")
}

pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StorageError> {
    bincode::deserialize(bytes).map_err(|error| StorageError::Decode {
        what,
        reason: error.to_string(),
    })
}
