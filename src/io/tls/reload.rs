//! A configuration built from files, rebuilt when they change.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What identifies one version of a file: size, modification time and inode (a Kubernetes
/// secret is rotated by swapping a symlink, which changes the inode). `None` for a file that
/// cannot be read now, so its return also counts as a change.
type Stamp = Option<(u64, i64, i64, u64)>;

fn stamps(files: &[PathBuf]) -> Vec<Stamp> {
    files
        .iter()
        .map(|file| {
            std::fs::metadata(file)
                .ok()
                .map(|meta| (meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino()))
        })
        .collect()
}

type Build<T> = Box<dyn Fn() -> Result<T, String> + Send + Sync>;

pub struct Reloading<T> {
    /// What the log calls this configuration ("client listener", "peer listener", ...).
    what: &'static str,
    files: Vec<PathBuf>,
    build: Build<T>,
    state: Mutex<State<T>>,
}

struct State<T> {
    current: Arc<T>,
    /// The files' stamps when `current` was built.
    loaded: Vec<Stamp>,
    /// The stamps of the last set that failed to build: logged once, not on every connection.
    refused: Option<Vec<Stamp>>,
}

impl<T> Reloading<T> {
    /// Builds the first configuration; an error here fails the start.
    pub fn new(what: &'static str, files: Vec<PathBuf>, build: Build<T>) -> Result<Self, String> {
        let loaded = stamps(&files);
        let current = Arc::new(build()?);
        Ok(Reloading {
            what,
            files,
            build,
            state: Mutex::new(State {
                current,
                loaded,
                refused: None,
            }),
        })
    }

    /// The configuration for a new connection: rebuilt first if a file changed since the last
    /// build; on a failed rebuild the one in use stays, and the reason is logged.
    pub fn current(&self) -> Arc<T> {
        let now = stamps(&self.files);
        let mut state = self.state.lock().unwrap();
        if now != state.loaded && state.refused.as_ref() != Some(&now) {
            match (self.build)() {
                Ok(config) => {
                    state.current = Arc::new(config);
                    state.loaded = now;
                    state.refused = None;
                    tracing::info!(what = self.what, "TLS files changed: reloaded them");
                }
                Err(reason) => {
                    tracing::warn!(
                        what = self.what,
                        %reason,
                        "TLS files changed but do not load: keeping the ones in use"
                    );
                    state.refused = Some(now);
                }
            }
        }
        state.current.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_reloaded_and_a_bad_one_keeps_the_old() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("number");
        std::fs::write(&file, "1").unwrap();
        let builds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (read, counted) = (file.clone(), builds.clone());
        let reloading = Reloading::new(
            "test",
            vec![file.clone()],
            Box::new(move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let text = std::fs::read_to_string(&read).map_err(|error| error.to_string())?;
                text.trim()
                    .parse::<u32>()
                    .map_err(|error| error.to_string())
            }),
        )
        .unwrap();
        assert_eq!(*reloading.current(), 1);
        assert_eq!(*reloading.current(), 1);
        assert_eq!(
            builds.load(std::sync::atomic::Ordering::Relaxed),
            1,
            "unchanged: no rebuild"
        );

        // Same size, new contents: the modification time and inode tell.
        let staged = directory.path().join("staged");
        std::fs::write(&staged, "2").unwrap();
        std::fs::rename(&staged, &file).unwrap();
        assert_eq!(*reloading.current(), 2);

        // A bad version keeps the old one and is tried once, not on every connection.
        std::fs::write(&staged, "not a number").unwrap();
        std::fs::rename(&staged, &file).unwrap();
        assert_eq!(*reloading.current(), 2);
        let after_refusal = builds.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(*reloading.current(), 2);
        assert_eq!(
            builds.load(std::sync::atomic::Ordering::Relaxed),
            after_refusal
        );

        // A deleted file keeps the old one too; its return is a change.
        std::fs::remove_file(&file).unwrap();
        assert_eq!(*reloading.current(), 2);
        std::fs::write(&file, "3").unwrap();
        assert_eq!(*reloading.current(), 3);
    }
}
