//! The real disk: std::fs with real fsync (skipped only under `--unsafe-no-fsync`).

use super::disk::{Capacity, Disk, DiskFile};
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

    fn allocate(&self, path: &Path, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let length = libc::off_t::try_from(len).map_err(io::Error::other)?;
        // SAFETY: the descriptor is open for writing for the duration of the call.
        let allocated = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, length) };
        if allocated != 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EOPNOTSUPP) {
                return Err(error);
            }
            // A file system without fallocate: write the bytes instead.
            let mut writer = io::BufWriter::new(&file);
            let zeros = vec![0u8; 1 << 20];
            let mut left = len;
            while left > 0 {
                let piece = left.min(zeros.len() as u64) as usize;
                writer.write_all(&zeros[..piece])?;
                left -= piece as u64;
            }
            writer.flush()?;
        }
        if !self.unsafe_no_fsync {
            file.sync_all()?;
        }
        Ok(())
    }

    fn capacity_bytes(&self, dir: &Path) -> io::Result<Capacity> {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
        // SAFETY: statvfs writes only into the zeroed struct passed; the path is a valid C
        // string for the duration of the call.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let block_bytes = stat.f_frsize as u64;
        Ok(Capacity {
            total_bytes: (stat.f_blocks as u64).saturating_mul(block_bytes),
            available_bytes: (stat.f_bavail as u64).saturating_mul(block_bytes),
        })
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
