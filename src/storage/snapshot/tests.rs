use super::*;
use crate::io::MemoryDisk;

fn store(disk: &MemoryDisk) -> SnapshotStore {
    SnapshotStore::open(Arc::new(disk.clone()), Path::new("/data/snap")).unwrap()
}

#[test]
fn keeps_newest_and_detects_damage() {
    let disk = MemoryDisk::default();
    let store = store(&disk);
    assert!(store.latest().unwrap().is_none());
    for index in 1..=4u64 {
        store.save(index, 1, &index).unwrap();
    }
    let path = store.latest().unwrap().unwrap();
    assert_eq!(store.load::<u64>(&path).unwrap(), 4);
    assert_eq!(
        disk.list(Path::new("/data/snap")).unwrap().len(),
        SNAPSHOTS_KEPT
    );
    disk.crash(7);
    assert_eq!(
        store
            .load::<u64>(&store.latest().unwrap().unwrap())
            .unwrap(),
        4,
        "a synced snapshot survives a crash"
    );
    disk.corrupt(&path, HEADER_BYTES as usize + 2);
    let error = store.load::<u64>(&path).unwrap_err().to_string();
    assert!(
        error.contains("0000000000000004-0000000000000001.snap")
            && error.contains("offset 12")
            && error.contains("CRC mismatch"),
        "{error}"
    );
}

#[test]
fn a_snapshot_being_read_outlives_pruning_until_released() {
    let disk = MemoryDisk::default();
    let store = store(&disk);
    drop(store.save(1, 1, &1u64).unwrap());
    let reading = store.latest_pinned().unwrap().unwrap();
    for index in 2..=5u64 {
        drop(store.save(index, 1, &index).unwrap());
    }
    assert_eq!(
        store.load::<u64>(reading.path()).unwrap(),
        1,
        "pinned: kept"
    );
    drop(reading);
    drop(store.save(6, 1, &6u64).unwrap());
    let names = disk.list(Path::new("/data/snap")).unwrap();
    assert_eq!(
        names.len(),
        SNAPSHOTS_KEPT,
        "released: pruned with the rest: {names:?}"
    );
}

#[test]
fn large_payloads_round_trip_in_pieces_and_torn_files_are_named() {
    let disk = MemoryDisk::default();
    let store = store(&disk);
    // Several pieces long, with a prefix readable on its own.
    let value: (String, Vec<u64>) = ("meta".into(), (0..200_000).collect());
    let path = store.save(9, 2, &value).unwrap().path().to_path_buf();
    assert!(disk.len(&path).unwrap() > 4 * PIECE_BYTES as u64);
    assert_eq!(store.load::<(String, Vec<u64>)>(&path).unwrap(), value);
    assert_eq!(store.load_prefix::<String>(&path).unwrap(), "meta");

    let length = disk.len(&path).unwrap();
    disk.set_len(&path, length - 3).unwrap();
    let error = store
        .load::<(String, Vec<u64>)>(&path)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("0000000000000009-0000000000000002.snap")
            && error.contains("missing snapshot trailer"),
        "{error}"
    );
}

#[test]
fn a_received_copy_is_checked_before_it_is_adopted() {
    let leader_disk = MemoryDisk::default();
    let leader = store(&leader_disk);
    let source = leader
        .save(5, 1, &vec![7u32; 100_000])
        .unwrap()
        .path()
        .to_path_buf();
    let length = leader_disk.len(&source).unwrap();

    let copy = |follower: &SnapshotStore, damage_at: Option<u64>| {
        let temporary = follower.temporary_path("receive");
        let mut file = follower.disk().open_append(&temporary).unwrap();
        let mut offset = 0;
        while offset < length {
            let mut piece = leader_disk.read_at(&source, offset, 64 * 1024).unwrap();
            if let Some(at) =
                damage_at.filter(|at| (offset..offset + piece.len() as u64).contains(at))
            {
                piece[(at - offset) as usize] ^= 0xff;
            }
            file.append(&piece).unwrap();
            offset += piece.len() as u64;
        }
        temporary
    };

    let follower_disk = MemoryDisk::default();
    let follower = store(&follower_disk);
    let damaged = copy(&follower, Some(length / 2));
    let error = follower
        .adopt_received::<Vec<u32>>(&damaged, 5, 1)
        .unwrap_err()
        .to_string();
    assert!(error.contains("CRC mismatch"), "{error}");
    assert!(
        follower.latest().unwrap().is_none(),
        "a damaged copy is not adopted"
    );
    assert!(!follower_disk.exists(&damaged), "nor left behind");

    let good = copy(&follower, None);
    let value: Vec<u32> = follower.adopt_received(&good, 5, 1).unwrap();
    assert_eq!(value, vec![7u32; 100_000]);
    let adopted = follower.latest().unwrap().unwrap();
    assert_eq!(
        follower_disk.read(&adopted).unwrap(),
        leader_disk.read(&source).unwrap()
    );
    follower_disk.crash(3);
    assert_eq!(
        follower.load::<Vec<u32>>(&adopted).unwrap().len(),
        100_000,
        "an adopted snapshot is durable"
    );
}
