//! openraft's `SnapshotData`: a snapshot file read or written in bounded pieces through the
//! `Disk`. openraft's chunked transport seeks and reads it one chunk at a time to send it,
//! and seeks and writes a leader's chunks into it to receive one, so neither side ever holds
//! a whole snapshot in memory.

use crate::io::{Disk, DiskFile};
use crate::storage::snapshot::{SnapshotPin, PIECE_BYTES};
use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

pub struct SnapshotData {
    disk: Arc<dyn Disk>,
    path: PathBuf,
    position: u64,
    /// Set while receiving; a mutex only because openraft wants the data `Sync`.
    receiving: Option<Mutex<Box<dyn DiskFile>>>,
    /// Set while sending: the file stays on disk until the transfer is done.
    _pin: Option<SnapshotPin>,
}

impl SnapshotData {
    /// A complete snapshot file, to be read (sent to a follower).
    pub fn sending(disk: Arc<dyn Disk>, pin: SnapshotPin) -> SnapshotData {
        SnapshotData {
            disk,
            path: pin.path().to_path_buf(),
            position: 0,
            receiving: None,
            _pin: Some(pin),
        }
    }

    /// A new file at `path` that a leader's chunks are written into.
    pub fn receiving(disk: Arc<dyn Disk>, path: PathBuf) -> io::Result<SnapshotData> {
        let file = disk.open_append(&path)?;
        Ok(SnapshotData {
            disk,
            path,
            position: 0,
            receiving: Some(Mutex::new(file)),
            _pin: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl std::fmt::Debug for SnapshotData {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SnapshotData")
            .field("path", &self.path)
            .field("position", &self.position)
            .field("receiving", &self.receiving.is_some())
            .finish()
    }
}

impl AsyncRead for SnapshotData {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let wanted = buffer.remaining().min(PIECE_BYTES);
        let data = self.disk.read_at(&self.path, self.position, wanted)?;
        self.position += data.len() as u64;
        buffer.put_slice(&data);
        Poll::Ready(Ok(()))
    }
}

impl AsyncSeek for SnapshotData {
    fn start_seek(mut self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let length = self.disk.len(&self.path)?;
        let target = match position {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => length.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        if let Some(file) = &self.receiving {
            if target > length {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("snapshot chunk at {target} leaves a gap after {length} bytes"),
                ));
            }
            if target < length {
                // The leader resent chunks already written (its request timed out after we
                // wrote them): drop everything from the resent offset on.
                self.disk.set_len(&self.path, target)?;
                *file.lock().unwrap() = self.disk.open_append(&self.path)?;
            }
        }
        self.position = target;
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, _context: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.position))
    }
}

impl AsyncWrite for SnapshotData {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let Some(file) = &self.receiving else {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a snapshot being sent is read-only",
            )));
        };
        file.lock().unwrap().append(data)?;
        self.position += data.len() as u64;
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Syncing waits for `install_snapshot`, which runs it off the async executor.
    fn poll_shutdown(self: Pin<&mut Self>, _context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemoryDisk;
    use crate::storage::snapshot::SnapshotStore;
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

    #[tokio::test]
    async fn chunks_are_read_and_written_in_place_and_resent_chunks_replace_the_tail() {
        let disk: Arc<dyn Disk> = Arc::new(MemoryDisk::default());
        let store = SnapshotStore::open(disk.clone(), Path::new("/snap")).unwrap();
        let value: Vec<u8> = (0..3 * PIECE_BYTES as u32 + 17).map(|i| i as u8).collect();
        let pin = store.save(3, 1, &value).unwrap();
        let content = disk.read(pin.path()).unwrap();
        let mut source = SnapshotData::sending(disk.clone(), pin);
        let end = source.seek(SeekFrom::End(0)).await.unwrap();
        assert_eq!(end, content.len() as u64);
        assert!(
            source.write_all(b"x").await.is_err(),
            "sending data is read-only"
        );

        let target_path = PathBuf::from("/snap/target.tmp");
        let mut target = SnapshotData::receiving(disk.clone(), target_path.clone()).unwrap();
        let chunk_bytes = PIECE_BYTES + PIECE_BYTES / 2;
        let mut offset = 0u64;
        let mut resent = false;
        while offset < end {
            source.seek(SeekFrom::Start(offset)).await.unwrap();
            let mut chunk = Vec::with_capacity(chunk_bytes);
            while chunk.len() < chunk.capacity() {
                if source.read_buf(&mut chunk).await.unwrap() == 0 {
                    break;
                }
            }
            target.seek(SeekFrom::Start(offset)).await.unwrap();
            target.write_all(&chunk).await.unwrap();
            if !resent {
                // As if the first chunk's answer was lost and the leader sent it again.
                resent = true;
                continue;
            }
            offset += chunk.len() as u64;
        }
        assert_eq!(disk.read(&target_path).unwrap(), content);
        assert!(
            target.seek(SeekFrom::Start(end + 1)).await.is_err(),
            "a gap is refused"
        );
    }
}
