//! A folder that goes away with the work that made it, even when that work is cancelled.

use std::path::{Path, PathBuf};

/// Removes its folder when dropped, unless [`kept`](Self::kept) first. A dump or restore
/// whose future is dropped (a schedule stopped, a timeout) leaves no partial dump or
/// staging folder behind. The removal runs on the blocking pool when a runtime is there.
#[derive(Debug)]
pub(crate) struct Staging(Option<PathBuf>);

impl Staging {
    /// Guards `path`.
    pub(crate) fn new(path: &Path) -> Self {
        Self(Some(path.to_owned()))
    }

    /// The folder stays: it is a finished dump now.
    pub(crate) fn kept(mut self) {
        self.0 = None;
    }

    /// Removes the folder now.
    pub(crate) async fn remove(mut self) {
        if let Some(path) = self.0.take() {
            let _ = tokio::fs::remove_dir_all(&path).await;
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let Some(path) = self.0.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || {
                    let _ = std::fs::remove_dir_all(&path);
                });
            }
            Err(_) => {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Staging;

    #[tokio::test]
    async fn a_dropped_guard_removes_its_folder_and_a_kept_one_does_not() {
        let base = std::env::temp_dir().join(format!("qdr-staging-{}", std::process::id()));
        let (gone, stays) = (base.join("gone"), base.join("stays"));
        for d in [&gone, &stays] {
            std::fs::create_dir_all(d.join("sub")).unwrap();
            std::fs::write(d.join("sub/file"), b"x").unwrap();
        }
        drop(Staging::new(&gone));
        Staging::new(&stays).kept();
        for _ in 0..200 {
            if !gone.exists() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(!gone.exists(), "removed when dropped");
        assert!(stays.join("sub/file").exists(), "kept");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
