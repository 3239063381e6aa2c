use super::*;
use crate::io::{Disk, MemoryDisk};
use std::path::Path;

type Buckets = Vec<(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>)>;

fn write(buckets: &Buckets, chunk_bytes: usize) -> Vec<u8> {
    let named = buckets
        .iter()
        .map(|(name, pairs)| NamedBucket {
            name: name.clone(),
            source: Box::new(Pairs::new(pairs.clone())),
        })
        .collect();
    let mut writer = BoltWriter::new(named, 7);
    let total = writer.total_bytes();
    let mut file = Vec::new();
    loop {
        let chunk = writer.next_chunk(chunk_bytes);
        if chunk.is_empty() {
            break;
        }
        file.extend_from_slice(&chunk);
    }
    assert_eq!(
        file.len() as u64,
        total,
        "total_bytes tells the file's size"
    );
    assert_eq!(file.len() % PAGE_BYTES, 0);
    file
}

fn read(disk: &dyn Disk, path: &Path) -> Result<Buckets, crate::storage::StorageError> {
    let reader = BoltReader::open(disk, path)?;
    let mut buckets = Vec::new();
    for (name, root) in reader.buckets()? {
        let mut pairs = Vec::new();
        reader.visit(&root, &mut |_, key, value| {
            pairs.push((key.to_vec(), value.to_vec()));
            Ok(())
        })?;
        buckets.push((name, pairs));
    }
    Ok(buckets)
}

fn sample() -> Buckets {
    let many: Vec<(Vec<u8>, Vec<u8>)> = (0..20_000u32)
        .map(|i| {
            (
                format!("key-{i:08}").into_bytes(),
                vec![i as u8; (i % 97) as usize],
            )
        })
        .collect();
    let large = vec![
        (b"a".to_vec(), vec![1u8; 3 * PAGE_BYTES + 5]),
        (b"b".to_vec(), vec![2u8; 10]),
        (b"c".to_vec(), vec![3u8; PAGE_BYTES]),
    ];
    vec![
        (b"key".to_vec(), many),
        (b"empty".to_vec(), Vec::new()),
        (
            b"meta".to_vec(),
            vec![(b"consistent_index".to_vec(), 9u64.to_be_bytes().to_vec())],
        ),
        (b"large".to_vec(), large),
    ]
}

#[test]
fn what_is_written_reads_back_the_same_in_any_chunking() {
    let disk = MemoryDisk::default();
    let mut expected = sample();
    expected.sort();
    for expected_pairs in &mut expected {
        expected_pairs.1.sort();
    }
    let file = write(&sample(), 1);
    assert_eq!(
        write(&sample(), 1 << 20),
        file,
        "chunking does not change the bytes"
    );
    let path = Path::new("/db");
    disk.write_synced(path, &file).unwrap();
    assert_eq!(read(&disk, path).unwrap(), expected);
    let reader = BoltReader::open(&disk, path).unwrap();
    assert_eq!(reader.size_bytes(), file.len() as u64);
    let roots = reader.buckets().unwrap();
    assert!(
        matches!(
            roots.iter().find(|(name, _)| name == b"empty").unwrap().1,
            BucketRoot::Inline { .. }
        ),
        "small buckets are inline, as bbolt makes them"
    );
    assert!(matches!(
        roots.iter().find(|(name, _)| name == b"key").unwrap().1,
        BucketRoot::Pages(_)
    ));
}

#[test]
fn a_file_with_a_hash_after_it_still_reads() {
    let disk = MemoryDisk::default();
    let mut file = write(&sample(), 4096);
    file.extend_from_slice(&[0xAB; HASH_BYTES as usize]);
    disk.write_synced(Path::new("/db"), &file).unwrap();
    assert_eq!(read(&disk, Path::new("/db")).unwrap().len(), 4);
}

#[test]
fn every_page_below_the_high_water_mark_is_reachable() {
    // `bbolt check` (run by `etcdctl snapshot status`) reports unreachable pages: count the
    // pages the trees reach and compare with the file's page count.
    let file = write(&sample(), 4096);
    let pages = file.len() / PAGE_BYTES;
    let mut reachable = vec![false; pages];
    reachable[0] = true;
    reachable[1] = true;
    reachable[2] = true;
    fn mark(file: &[u8], pgid: usize, reachable: &mut [bool]) {
        let header = PageHeader::decode(&file[pgid * PAGE_BYTES..]);
        let span = &mut reachable[pgid..=pgid + header.overflow as usize];
        assert!(
            span.iter().all(|seen| !seen),
            "page {pgid} referenced twice"
        );
        span.fill(true);
        let page = &file[pgid * PAGE_BYTES..];
        for index in 0..usize::from(header.count) {
            let element = PAGE_HEADER_BYTES + index * ELEMENT_BYTES;
            if header.flags == BRANCH_PAGE {
                mark(file, u64_at(page, element + 8) as usize, reachable);
            } else if u32_at(page, element) & BUCKET_ELEMENT != 0 {
                let position = u32_at(page, element + 4) as usize;
                let key_bytes = u32_at(page, element + 8) as usize;
                let root = u64_at(page, element + position + key_bytes) as usize;
                if root != 0 {
                    mark(file, root, reachable);
                }
            }
        }
    }
    let meta = Meta::decode(&file[PAGE_HEADER_BYTES..]).unwrap();
    assert_eq!(meta.high_water_pgid as usize, pages);
    mark(&file, meta.root_pgid as usize, &mut reachable);
    assert!(
        reachable.iter().all(|page| *page),
        "no page is left unreachable"
    );
}

#[test]
fn damaged_files_are_errors_naming_the_file_never_panics() {
    let disk = MemoryDisk::default();
    let file = write(&sample(), 4096);
    let path = Path::new("/db");
    for cut in [0, 10, 100, PAGE_BYTES, 3 * PAGE_BYTES, file.len() - 1] {
        disk.write_synced(path, &file[..cut]).unwrap();
        let error = read(&disk, path).expect_err("a truncated file is refused");
        assert!(error.to_string().contains("/db"), "{error}");
    }
    // Flipped bytes all over the file: an error or the same pairs with another value, never
    // a panic or a hang.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..300 {
        let mut damaged = file.clone();
        for _ in 0..4 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = (seed >> 33) as usize % damaged.len();
            damaged[at] ^= (seed >> 13) as u8 | 1;
        }
        disk.write_synced(path, &damaged).unwrap();
        let _ = read(&disk, path);
    }
    let mut bad_magic = file.clone();
    bad_magic[PAGE_HEADER_BYTES] ^= 1;
    bad_magic[PAGE_BYTES + PAGE_HEADER_BYTES] ^= 1;
    disk.write_synced(path, &bad_magic).unwrap();
    let error = read(&disk, path).unwrap_err().to_string();
    assert!(error.contains("not a bbolt database"), "{error}");
}

#[test]
fn the_meta_checksum_is_bbolts_fnv1a() {
    // FNV-1a 64 of "a" from the algorithm's published test vectors.
    assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
}
