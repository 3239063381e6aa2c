//! Writes a bbolt file from buckets of sorted pairs, as a stream of bytes produced on demand:
//! nothing but one page being filled and each bucket's list of leaf first keys is held, so a
//! store of many GiB streams in bounded memory.
//!
//! The meta pages come first and name the root bucket's page and the number of pages, which
//! depend on everything after them. So the writer reads every bucket twice: a layout pass
//! that only counts pages, then the pass that writes them. Both run the same packing code,
//! so they agree page for page (asserted).
//!
//! File order: meta 0, meta 1, an empty freelist (page 2), each bucket's pages (its leaves
//! left to right, then each branch level bottom-up, the bucket's root last), and the root
//! bucket's leaf at the end. Pages are filled to the page size; a pair larger than a page
//! gets a leaf of its own with overflow pages.

use super::*;

/// A bucket's pairs in strictly increasing key order, readable twice.
pub trait BucketSource: Send {
    /// The next pair, or `None` after the last.
    fn next_pair(&mut self) -> Option<(Vec<u8>, Vec<u8>)>;
    /// Starts again from the first pair.
    fn rewind(&mut self);
}

/// A bucket held as its pairs (sorted here): for buckets of a bounded size.
pub struct Pairs {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    position: usize,
}

impl Pairs {
    pub fn new(mut pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Pairs {
        pairs.sort();
        Pairs { pairs, position: 0 }
    }
}

impl BucketSource for Pairs {
    fn next_pair(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        let pair = self.pairs.get(self.position).cloned();
        self.position += 1;
        pair
    }

    fn rewind(&mut self) {
        self.position = 0;
    }
}

pub struct NamedBucket {
    pub name: Vec<u8>,
    pub source: Box<dyn BucketSource>,
}

/// Where a bucket went, decided by the layout pass.
enum Placement {
    /// In the root bucket's leaf, as this leaf page (header and elements, unpadded).
    Inline(Vec<u8>),
    /// Pages from `first_pgid`, `page_count` of them, the last being the bucket's root.
    Pages { first_pgid: u64, page_count: u64 },
}

enum Phase {
    Header,
    Bucket { index: usize, tree: Tree },
    RootBucket,
    Done,
}

pub struct BoltWriter {
    buckets: Vec<NamedBucket>,
    placements: Vec<Placement>,
    root_pgid: u64,
    high_water_pgid: u64,
    txid: u64,
    phase: Phase,
    pending: Vec<u8>,
}

impl BoltWriter {
    /// Lays the file out (reading every bucket once: CPU work proportional to the data).
    /// `buckets` need not be sorted by name; names must be unique.
    pub fn new(mut buckets: Vec<NamedBucket>, txid: u64) -> BoltWriter {
        buckets.sort_by(|a, b| a.name.cmp(&b.name));
        assert!(
            buckets.windows(2).all(|pair| pair[0].name < pair[1].name),
            "bucket names are unique"
        );
        let mut next_pgid = 3;
        let mut placements = Vec::with_capacity(buckets.len());
        for bucket in &mut buckets {
            bucket.source.rewind();
            let mut tree = Tree::new(next_pgid);
            while tree.step(bucket.source.as_mut(), None) {}
            let placement = match tree.inline.take() {
                Some(page) => Placement::Inline(page),
                None => Placement::Pages {
                    first_pgid: next_pgid,
                    page_count: tree.next_pgid - next_pgid,
                },
            };
            if let Placement::Pages { page_count, .. } = placement {
                next_pgid += page_count;
            }
            placements.push(placement);
        }
        let mut writer = BoltWriter {
            buckets,
            placements,
            root_pgid: next_pgid,
            high_water_pgid: 0,
            txid,
            phase: Phase::Header,
            pending: Vec::new(),
        };
        let root_bytes = writer.root_leaf().len();
        writer.high_water_pgid = next_pgid + pages_spanned(root_bytes);
        writer
    }

    /// The size of the whole file.
    pub fn total_bytes(&self) -> u64 {
        self.high_water_pgid * PAGE_BYTES as u64
    }

    /// The next bytes of the file, at least `bytes_min` of them unless the file ends first
    /// (a page larger than that may make it longer); empty once the whole file was returned.
    pub fn next_chunk(&mut self, bytes_min: usize) -> Vec<u8> {
        while self.pending.len() < bytes_min && !matches!(self.phase, Phase::Done) {
            self.step();
        }
        std::mem::take(&mut self.pending)
    }

    fn step(&mut self) {
        match &mut self.phase {
            Phase::Header => {
                self.write_header();
                self.phase = self.bucket_phase(0);
            }
            Phase::Bucket { index, tree } => {
                let index = *index;
                let source = self.buckets[index].source.as_mut();
                if !tree.step(source, Some(&mut self.pending)) {
                    let Placement::Pages {
                        first_pgid,
                        page_count,
                    } = self.placements[index]
                    else {
                        unreachable!("only paged buckets are written");
                    };
                    assert_eq!(
                        tree.next_pgid,
                        first_pgid + page_count,
                        "bucket {:?} laid out and written the same",
                        String::from_utf8_lossy(&self.buckets[index].name)
                    );
                    self.phase = self.bucket_phase(index + 1);
                }
            }
            Phase::RootBucket => {
                let leaf = self.root_leaf();
                self.pending.extend_from_slice(&leaf);
                pad_to_page(&mut self.pending);
                self.phase = Phase::Done;
            }
            Phase::Done => {}
        }
    }

    /// The phase writing the first paged bucket at or after `index`.
    fn bucket_phase(&mut self, index: usize) -> Phase {
        for index in index..self.buckets.len() {
            if let Placement::Pages { first_pgid, .. } = self.placements[index] {
                self.buckets[index].source.rewind();
                return Phase::Bucket {
                    index,
                    tree: Tree::new(first_pgid),
                };
            }
        }
        Phase::RootBucket
    }

    fn write_header(&mut self) {
        for id in 0..2u64 {
            let meta = Meta {
                page_size: PAGE_BYTES as u32,
                root_pgid: self.root_pgid,
                freelist_pgid: 2,
                high_water_pgid: self.high_water_pgid,
                txid: self.txid + id,
            };
            PageHeader {
                id,
                flags: META_PAGE,
                count: 0,
                overflow: 0,
            }
            .encode(&mut self.pending);
            self.pending.extend_from_slice(&meta.encode());
            pad_to_page(&mut self.pending);
        }
        PageHeader {
            id: 2,
            flags: FREELIST_PAGE,
            count: 0,
            overflow: 0,
        }
        .encode(&mut self.pending);
        pad_to_page(&mut self.pending);
    }

    /// The root bucket's leaf: each bucket's header (and inline page), unpadded.
    fn root_leaf(&self) -> Vec<u8> {
        let values: Vec<Vec<u8>> = self
            .placements
            .iter()
            .map(|placement| {
                let mut value = Vec::new();
                let (root, inline): (u64, &[u8]) = match placement {
                    Placement::Inline(page) => (0, page),
                    Placement::Pages {
                        first_pgid,
                        page_count,
                    } => (first_pgid + page_count - 1, &[]),
                };
                value.extend_from_slice(&root.to_le_bytes());
                value.extend_from_slice(&0u64.to_le_bytes());
                value.extend_from_slice(inline);
                value
            })
            .collect();
        let elements: Vec<(u32, &[u8], &[u8])> = self
            .buckets
            .iter()
            .zip(&values)
            .map(|(bucket, value)| (BUCKET_ELEMENT, bucket.name.as_slice(), value.as_slice()))
            .collect();
        leaf_page(self.root_pgid, &elements)
    }
}

/// One bucket's B+tree, built bottom-up a step at a time.
struct Tree {
    next_pgid: u64,
    stage: Stage,
    /// The leaf being filled.
    leaf: Vec<(Vec<u8>, Vec<u8>)>,
    leaf_bytes: usize,
    last_key: Option<Vec<u8>>,
    /// Each written page of the level being built: its first key and page ID.
    level: Vec<(Vec<u8>, u64)>,
    /// Set when the whole bucket fits a quarter page: its leaf, to be inlined.
    inline: Option<Vec<u8>>,
}

enum Stage {
    Leaves,
    /// Packing `below` (the level under construction's children) from `position` on.
    Branches {
        below: Vec<(Vec<u8>, u64)>,
        position: usize,
    },
    Finished,
}

impl Tree {
    fn new(first_pgid: u64) -> Tree {
        Tree {
            next_pgid: first_pgid,
            stage: Stage::Leaves,
            leaf: Vec::new(),
            leaf_bytes: PAGE_HEADER_BYTES,
            last_key: None,
            level: Vec::new(),
            inline: None,
        }
    }

    /// Does one pair or one branch page, writing any finished page to `out` (`None`: only
    /// counting pages). Returns false once the tree is complete.
    fn step(&mut self, source: &mut dyn BucketSource, mut out: Option<&mut Vec<u8>>) -> bool {
        match &mut self.stage {
            Stage::Leaves => match source.next_pair() {
                Some((key, value)) => {
                    assert!(!key.is_empty(), "bbolt keys are not empty");
                    assert!(
                        self.last_key.as_ref().is_none_or(|last| *last < key),
                        "a bucket's keys come in increasing order"
                    );
                    self.last_key = Some(key.clone());
                    let bytes = ELEMENT_BYTES + key.len() + value.len();
                    if !self.leaf.is_empty() && self.leaf_bytes + bytes > PAGE_BYTES {
                        self.flush_leaf(out);
                    }
                    self.leaf_bytes += bytes;
                    self.leaf.push((key, value));
                }
                None => {
                    if self.level.is_empty() && self.leaf_bytes <= PAGE_BYTES / 4 {
                        self.inline = Some(self.leaf_page());
                        self.stage = Stage::Finished;
                        return false;
                    }
                    if !self.leaf.is_empty() {
                        self.flush_leaf(out);
                    }
                    self.next_level();
                }
            },
            Stage::Branches { below, position } => {
                let mut bytes = PAGE_HEADER_BYTES;
                let start = *position;
                while *position < below.len() {
                    let element = ELEMENT_BYTES + below[*position].0.len();
                    if *position > start && bytes + element > PAGE_BYTES {
                        break;
                    }
                    bytes += element;
                    *position += 1;
                }
                let children = &below[start..*position];
                let pgid = self.next_pgid;
                let page = branch_page(pgid, children);
                self.next_pgid += pages_spanned(page.len());
                self.level.push((children[0].0.clone(), pgid));
                if let Some(out) = out.as_mut() {
                    out.extend_from_slice(&page);
                    pad_to_page(out);
                }
                if *position == below.len() {
                    self.next_level();
                }
            }
            Stage::Finished => return false,
        }
        !matches!(self.stage, Stage::Finished)
    }

    /// After a level is complete: the bucket is done if it has one page, else the next
    /// level up packs it.
    fn next_level(&mut self) {
        let below = std::mem::take(&mut self.level);
        self.stage = if below.len() == 1 {
            Stage::Finished
        } else {
            Stage::Branches { below, position: 0 }
        };
    }

    fn leaf_page(&self) -> Vec<u8> {
        let elements: Vec<(u32, &[u8], &[u8])> = self
            .leaf
            .iter()
            .map(|(key, value)| (0, key.as_slice(), value.as_slice()))
            .collect();
        leaf_page(0, &elements)
    }

    fn flush_leaf(&mut self, out: Option<&mut Vec<u8>>) {
        let pgid = self.next_pgid;
        let mut page = self.leaf_page();
        page[..8].copy_from_slice(&pgid.to_le_bytes());
        self.next_pgid += pages_spanned(page.len());
        let first_key = std::mem::take(&mut self.leaf)
            .into_iter()
            .next()
            .map(|(key, _)| key)
            .expect("a flushed leaf has a pair");
        self.level.push((first_key, pgid));
        self.leaf_bytes = PAGE_HEADER_BYTES;
        if let Some(out) = out {
            out.extend_from_slice(&page);
            pad_to_page(out);
        }
    }
}

/// How many pages `bytes` of page content spans (at least one).
fn pages_spanned(bytes: usize) -> u64 {
    bytes.div_ceil(PAGE_BYTES).max(1) as u64
}

fn overflow(bytes: usize) -> u32 {
    u32::try_from(pages_spanned(bytes) - 1).expect("a page spans fewer than 2^32 pages")
}

fn pad_to_page(out: &mut Vec<u8>) {
    let padded = out.len().div_ceil(PAGE_BYTES) * PAGE_BYTES;
    out.resize(padded, 0);
}

/// A leaf page (unpadded) of `(element flags, key, value)`.
fn leaf_page(pgid: u64, elements: &[(u32, &[u8], &[u8])]) -> Vec<u8> {
    let data_bytes: usize = elements.iter().map(|(_, k, v)| k.len() + v.len()).sum();
    let bytes = PAGE_HEADER_BYTES + ELEMENT_BYTES * elements.len() + data_bytes;
    let mut page = Vec::with_capacity(bytes);
    PageHeader {
        id: pgid,
        flags: LEAF_PAGE,
        count: u16::try_from(elements.len()).expect("a leaf holds under 65536 elements"),
        overflow: overflow(bytes),
    }
    .encode(&mut page);
    let mut data_offset = ELEMENT_BYTES * elements.len();
    for (index, (flags, key, value)) in elements.iter().enumerate() {
        let position = data_offset - ELEMENT_BYTES * index;
        page.extend_from_slice(&flags.to_le_bytes());
        page.extend_from_slice(&(position as u32).to_le_bytes());
        page.extend_from_slice(&(key.len() as u32).to_le_bytes());
        page.extend_from_slice(&(value.len() as u32).to_le_bytes());
        data_offset += key.len() + value.len();
    }
    for (_, key, value) in elements {
        page.extend_from_slice(key);
        page.extend_from_slice(value);
    }
    page
}

/// A branch page (unpadded) of `(first key, child pgid)`.
fn branch_page(pgid: u64, children: &[(Vec<u8>, u64)]) -> Vec<u8> {
    let key_bytes: usize = children.iter().map(|(key, _)| key.len()).sum();
    let bytes = PAGE_HEADER_BYTES + ELEMENT_BYTES * children.len() + key_bytes;
    let mut page = Vec::with_capacity(bytes);
    PageHeader {
        id: pgid,
        flags: BRANCH_PAGE,
        count: u16::try_from(children.len()).expect("a branch holds under 65536 elements"),
        overflow: overflow(bytes),
    }
    .encode(&mut page);
    let mut key_offset = ELEMENT_BYTES * children.len();
    for (index, (key, child)) in children.iter().enumerate() {
        let position = key_offset - ELEMENT_BYTES * index;
        page.extend_from_slice(&(position as u32).to_le_bytes());
        page.extend_from_slice(&(key.len() as u32).to_le_bytes());
        page.extend_from_slice(&child.to_le_bytes());
        key_offset += key.len();
    }
    for (key, _) in children {
        page.extend_from_slice(key);
    }
    page
}
