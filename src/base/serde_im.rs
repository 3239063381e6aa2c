//! serde for `im` maps and sets read from bytes nobody vouches for (a damaged snapshot, a
//! peer's message). im's own `Deserialize` preallocates whatever length the input claims,
//! which a damaged length prefix turns into a capacity-overflow panic or a multi-gigabyte
//! allocation. These build the collection one entry at a time from the same encoding (a map,
//! or a sequence), so memory grows only with what is actually read. Use them as
//! `#[serde(with = "crate::base::serde_im::ord_map")]`.

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

pub mod ord_map {
    use super::*;
    use im::OrdMap;

    pub fn serialize<K, V, S>(map: &OrdMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize + Ord + Clone,
        V: Serialize + Clone,
        S: Serializer,
    {
        map.serialize(serializer)
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<OrdMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord + Clone,
        V: Deserialize<'de> + Clone,
        D: Deserializer<'de>,
    {
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }

    struct MapVisitor<K, V>(PhantomData<(K, V)>);

    impl<'de, K, V> Visitor<'de> for MapVisitor<K, V>
    where
        K: Deserialize<'de> + Ord + Clone,
        V: Deserialize<'de> + Clone,
    {
        type Value = OrdMap<K, V>;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a map")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut map = OrdMap::new();
            while let Some((key, value)) = access.next_entry()? {
                map.insert(key, value);
            }
            Ok(map)
        }
    }
}

pub mod ord_set {
    use super::*;
    use im::OrdSet;

    pub fn serialize<T, S>(set: &OrdSet<T>, serializer: S) -> Result<S::Ok, S::Error>
    where
        T: Serialize + Ord + Clone,
        S: Serializer,
    {
        set.serialize(serializer)
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<OrdSet<T>, D::Error>
    where
        T: Deserialize<'de> + Ord + Clone,
        D: Deserializer<'de>,
    {
        deserializer.deserialize_seq(SetVisitor(PhantomData))
    }

    struct SetVisitor<T>(PhantomData<T>);

    impl<'de, T> Visitor<'de> for SetVisitor<T>
    where
        T: Deserialize<'de> + Ord + Clone,
    {
        type Value = OrdSet<T>;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a sequence")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut set = OrdSet::new();
            while let Some(value) = access.next_element()? {
                set.insert(value);
            }
            Ok(set)
        }
    }
}

#[cfg(test)]
mod tests {
    use im::{OrdMap, OrdSet};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Both {
        #[serde(with = "super::ord_map")]
        map: OrdMap<u64, String>,
        #[serde(with = "super::ord_set")]
        set: OrdSet<u32>,
    }

    #[test]
    fn the_encoding_is_im_s_own_and_a_huge_length_is_an_error() {
        let both = Both {
            map: OrdMap::from(vec![(1u64, "a".to_string()), (2, "b".to_string())]),
            set: OrdSet::from(vec![3u32, 4]),
        };
        let bytes = bincode::serialize(&both).unwrap();
        assert_eq!(bytes, bincode::serialize(&(&both.map, &both.set)).unwrap());
        assert_eq!(bincode::deserialize::<Both>(&bytes).unwrap(), both);
        // A map claiming 2^60 entries: an error, not a panic or a huge allocation.
        let mut damaged = bytes.clone();
        damaged[..8].copy_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(bincode::deserialize::<Both>(&damaged).is_err());
    }
}
