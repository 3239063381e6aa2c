//! etcd's key-range convention, shared by range, delete, compare and watch.

use bytes::Bytes;

/// `[start, end)` with etcd's encoding: an empty `end` means the single key `start`; an `end`
/// of `"\0"` means every key at or after `start` (and with `start` also `"\0"`, every key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct KeyRange {
    pub start: Bytes,
    pub end: Bytes,
}

impl KeyRange {
    pub fn new(start: impl Into<Bytes>, end: impl Into<Bytes>) -> Self {
        KeyRange {
            start: start.into(),
            end: end.into(),
        }
    }

    pub fn single(key: impl Into<Bytes>) -> Self {
        KeyRange {
            start: key.into(),
            end: Bytes::new(),
        }
    }

    /// Every key that starts with `prefix` (etcd's `WithPrefix`).
    pub fn prefix(prefix: &[u8]) -> Self {
        KeyRange::new(prefix.to_vec(), prefix_end(prefix))
    }

    pub fn is_single_key(&self) -> bool {
        self.end.is_empty()
    }

    /// True when the range has no upper bound (`end == "\0"`).
    pub fn is_unbounded(&self) -> bool {
        self.end.as_ref() == [0]
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        if self.is_single_key() {
            return key == self.start.as_ref();
        }
        if key < self.start.as_ref() {
            return false;
        }
        self.is_unbounded() || key < self.end.as_ref()
    }

    /// True when the two ranges share at least one key.
    pub fn overlaps(&self, other: &KeyRange) -> bool {
        let (a_start, a_end) = self.bounds();
        let (b_start, b_end) = other.bounds();
        let a_before_b_end = match &b_end {
            Some(end) => a_start.as_slice() < end.as_slice(),
            None => true,
        };
        let b_before_a_end = match &a_end {
            Some(end) => b_start.as_slice() < end.as_slice(),
            None => true,
        };
        a_before_b_end && b_before_a_end
    }

    /// Inclusive start and exclusive end (`None` = unbounded) as plain byte strings.
    pub fn bounds(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        if self.is_single_key() {
            let mut end = self.start.to_vec();
            end.push(0);
            return (self.start.to_vec(), Some(end));
        }
        if self.is_unbounded() {
            return (self.start.to_vec(), None);
        }
        (self.start.to_vec(), Some(self.end.to_vec()))
    }

    /// True for a range that can hold no key (`end <= start`, bounded).
    pub fn is_empty(&self) -> bool {
        !self.is_single_key() && !self.is_unbounded() && self.end.as_ref() <= self.start.as_ref()
    }
}

/// The range end that selects every key starting with `prefix` (etcd's `GetPrefixRangeEnd`).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): every key from the prefix on.
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_prefix_and_from_key_ranges() {
        let single = KeyRange::single(&b"a"[..]);
        assert!(single.contains(b"a"));
        assert!(!single.contains(b"ab"));
        let prefix = KeyRange::new(&b"a"[..], prefix_end(b"a"));
        assert!(prefix.contains(b"a") && prefix.contains(b"azz") && !prefix.contains(b"b"));
        let from = KeyRange::new(&b"b"[..], &b"\0"[..]);
        assert!(from.contains(b"b") && from.contains(b"zzz") && !from.contains(b"a"));
        let all = KeyRange::new(&b"\0"[..], &b"\0"[..]);
        assert!(all.contains(b"\0x") && all.contains(b"a"));
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn overlap_detects_shared_keys() {
        let a = KeyRange::new(&b"a"[..], &b"c"[..]);
        assert!(a.overlaps(&KeyRange::single(&b"b"[..])));
        assert!(!a.overlaps(&KeyRange::single(&b"c"[..])));
        assert!(a.overlaps(&KeyRange::new(&b"b"[..], &b"\0"[..])));
        assert!(!a.overlaps(&KeyRange::new(&b"c"[..], &b"d"[..])));
    }
}
