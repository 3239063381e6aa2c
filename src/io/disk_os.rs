//! The real disk: std::fs with real fsync (skipped only under `--unsafe-no-fsync`).

use super::disk::{Disk, DiskFile};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct OsDisk {
    /// etcd's `--unsafe-no-fsync`: skip every fsync. Loses acknowledged writes on a crash.
    pub unsafe_no_fsync: bool,
}

impl Disk for OsDisk {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn read_at(&self, path: &Path, offset: u64, length: usize) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let file = File::open(path)?;
        let available = file.metadata()?.len().saturating_sub(offset);
        let mut data = vec![0; length.min(available as usize)];
        file.read_exact_at(&mut data, offset)?;
        Ok(data)
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(Box::new(OsFile {
            file,
            path: path.to_path_buf(),
            len,
            unsafe_no_fsync: self.unsafe_no_fsync,
        }))
    }

    fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut file = File::create(path)?;
        file.write_all(data)?;
        if !self.unsafe_no_fsync {
            file.sync_all()?;
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        if !self.unsafe_no_fsync {
            file.sync_all()?;
        }
        Ok(())
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.unsafe_no_fsync {
            return Ok(());
        }
        File::open(dir)?.sync_all()
    }
}

struct OsFile {
    file: File,
    path: PathBuf,
    len: u64,
    unsafe_no_fsync: bool,
}

impl DiskFile for OsFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.len += data.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        if self.unsafe_no_fsync {
            return Ok(());
        }
        self.file.sync_data()
    }

    fn size_bytes(&self) -> u64 {
        self.len
    }

    fn path(&self) -> PathBuf {
        self.path.clone()
    }
}
