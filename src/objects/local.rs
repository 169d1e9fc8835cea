//! Photos as files under one root directory.

use std::io::{self, ErrorKind};
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use tokio::fs;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::{ObjectKey, PhotoStore, StoreError};

#[derive(Debug)]
pub struct LocalStore {
    /// Canonical (absolute, symlink-free) so the containment check in
    /// `path_for` compares like with like.
    root: PathBuf,
}

impl LocalStore {
    /// Creates `root` if it does not exist yet.
    ///
    /// Synchronous on purpose: it runs once at startup, before the runtime
    /// serves requests.
    pub fn new(root: PathBuf) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&root)?;
        let root = std::fs::canonicalize(&root)?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_for(&self, key: &ObjectKey) -> Result<PathBuf, StoreError> {
        let path = self.root.join(key.as_str());
        // `ObjectKey` validation already rules out escapes; this re-checks
        // the joined path so a future loosening of key rules cannot turn
        // into a path traversal unnoticed.
        let contained = path
            .strip_prefix(&self.root)
            .is_ok_and(|rest| rest.components().all(|c| matches!(c, Component::Normal(_))));
        if contained {
            Ok(path)
        } else {
            Err(StoreError::Backend(format!(
                "object key {key} resolves outside the storage root"
            )))
        }
    }
}

/// A name no valid key segment can have (`~` is outside the key alphabet),
/// so a temp file is never returned by `get` nor overwritten by `put`.
fn temp_name() -> String {
    format!(".~tmp.{}", Uuid::new_v4().simple())
}

/// Errors that mean "no object under this key". A key whose path crosses
/// an existing *file* (`ENOTDIR`) or names a directory (`EISDIR`) cannot
/// hold an object either.
fn is_missing(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::NotFound | ErrorKind::NotADirectory | ErrorKind::IsADirectory
    )
}

async fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::File::create(path).await?;
    file.write_all(bytes).await?;
    // Without this, a crash shortly after the rename can leave a
    // zero-length file under the final name on common filesystems.
    file.sync_all().await
}

#[async_trait::async_trait]
impl PhotoStore for LocalStore {
    /// `content_type` is not stored: files are served by extension, and all
    /// photo keys end in `.jpg`.
    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        _content_type: &str,
    ) -> Result<(), StoreError> {
        let path = self.path_for(key)?;
        let dir = path.parent().ok_or_else(|| {
            StoreError::Backend(format!("object key {key} has no parent directory"))
        })?;
        fs::create_dir_all(dir).await?;

        // Same directory as the target so the rename stays on one
        // filesystem and is therefore atomic.
        let tmp = dir.join(temp_name());
        let written = match write_synced(&tmp, &bytes).await {
            Ok(()) => fs::rename(&tmp, &path).await,
            Err(err) => Err(err),
        };
        if let Err(err) = written {
            if let Err(cleanup) = fs::remove_file(&tmp).await
                && cleanup.kind() != ErrorKind::NotFound
            {
                tracing::warn!(path = %tmp.display(), error = %cleanup, "could not remove temp file after failed write");
            }
            return Err(err.into());
        }

        // Persist the rename itself; the database will reference this key as
        // soon as we return.
        #[cfg(unix)]
        fs::File::open(dir).await?.sync_all().await?;
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>, StoreError> {
        match fs::read(self.path_for(key)?).await {
            Ok(data) => Ok(Some(Bytes::from(data))),
            Err(err) if is_missing(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Empty parent directories are left behind: pruning them would race
    /// with a concurrent `put` into the same directory.
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        match fs::remove_file(self.path_for(key)?).await {
            Ok(()) => Ok(()),
            Err(err) if is_missing(&err) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    async fn check(&self) -> Result<(), StoreError> {
        let key = ObjectKey::probe();
        let payload = Bytes::from_static(b"civicsnap readiness probe");
        self.put(&key, payload.clone(), "text/plain").await?;
        // Delete before judging the read so a failed probe does not leave
        // its file behind.
        let read = self.get(&key).await;
        self.delete(&key).await?;
        match read? {
            Some(found) if found == payload => Ok(()),
            Some(_) => Err(StoreError::Backend(format!(
                "probe object {key} read back different bytes than were written"
            ))),
            None => Err(StoreError::Backend(format!(
                "probe object {key} vanished between write and read"
            ))),
        }
    }

    fn kind(&self) -> &'static str {
        "local"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().expect("create temp dir");
        let store = LocalStore::new(dir.path().join("objects")).expect("create store");
        (dir, store)
    }

    fn key(raw: &str) -> ObjectKey {
        ObjectKey::parse(raw).expect("test key is valid")
    }

    /// Every file under `dir`, relative to it.
    fn files_under(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            for entry in std::fs::read_dir(&current).expect("read dir") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let rel = path.strip_prefix(dir).expect("under dir");
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn new_creates_missing_root() {
        let dir = tempfile::tempdir().expect("create temp dir");
        let root = dir.path().join("a/b/c");
        let store = LocalStore::new(root.clone()).expect("create store");
        assert!(root.is_dir());
        assert_eq!(
            store.root(),
            std::fs::canonicalize(&root).expect("canonical root")
        );
        assert_eq!(store.kind(), "local");
    }

    #[tokio::test]
    async fn put_get_delete_roundtrip() {
        let (_dir, store) = store();
        let k = key("photos/ab/some-id/display.jpg");
        store
            .put(&k, Bytes::from_static(b"jpeg bytes"), "image/jpeg")
            .await
            .expect("put");
        assert_eq!(
            store.get(&k).await.expect("get").as_deref(),
            Some(&b"jpeg bytes"[..])
        );

        store
            .put(&k, Bytes::from_static(b"replaced"), "image/jpeg")
            .await
            .expect("overwrite");
        assert_eq!(
            store.get(&k).await.expect("get").as_deref(),
            Some(&b"replaced"[..])
        );

        store.delete(&k).await.expect("delete");
        assert_eq!(store.get(&k).await.expect("get after delete"), None);
    }

    #[tokio::test]
    async fn missing_objects_read_as_none() {
        let (_dir, store) = store();
        assert_eq!(store.get(&key("nope.jpg")).await.expect("get"), None);
        // A key that names a directory, or passes through a file, is not an
        // object either.
        store
            .put(&key("dir/file.jpg"), Bytes::from_static(b"x"), "image/jpeg")
            .await
            .expect("put");
        assert_eq!(store.get(&key("dir")).await.expect("get dir"), None);
        assert_eq!(
            store
                .get(&key("dir/file.jpg/below"))
                .await
                .expect("get through file"),
            None
        );
    }

    #[tokio::test]
    async fn delete_is_idempotent() {
        let (_dir, store) = store();
        let k = key("photos/00/x/thumb.jpg");
        store.delete(&k).await.expect("delete never-existing");
        store
            .put(&k, Bytes::from_static(b"x"), "image/jpeg")
            .await
            .expect("put");
        store.delete(&k).await.expect("first delete");
        store.delete(&k).await.expect("second delete");
    }

    #[tokio::test]
    async fn writes_leave_only_final_files() {
        let (_dir, store) = store();
        for variant in ["original", "display", "thumb"] {
            let k = ObjectKey::for_photo(Uuid::nil(), variant).expect("valid key");
            store
                .put(&k, Bytes::from(vec![7u8; 64 * 1024]), "image/jpeg")
                .await
                .expect("put");
        }
        let id = Uuid::nil();
        assert_eq!(
            files_under(store.root()),
            vec![
                format!("photos/00/{id}/display.jpg"),
                format!("photos/00/{id}/original.jpg"),
                format!("photos/00/{id}/thumb.jpg"),
            ]
        );
    }

    #[tokio::test]
    async fn failed_write_leaves_no_temp_file_and_keeps_old_object() {
        let (_dir, store) = store();
        let k = key("a/b.jpg");
        store
            .put(&k, Bytes::from_static(b"old"), "image/jpeg")
            .await
            .expect("put");
        // Make the rename fail: a non-empty directory cannot be replaced by
        // a file.
        let blocker = key("a/c.jpg/inner");
        store
            .put(&blocker, Bytes::from_static(b"x"), "image/jpeg")
            .await
            .expect("put blocker");
        let err = store
            .put(&key("a/c.jpg"), Bytes::from_static(b"new"), "image/jpeg")
            .await
            .expect_err("rename onto a directory must fail");
        assert!(matches!(err, StoreError::Io(_)), "{err:?}");
        assert_eq!(files_under(store.root()), vec!["a/b.jpg", "a/c.jpg/inner"]);
        assert_eq!(
            store.get(&k).await.expect("get").as_deref(),
            Some(&b"old"[..])
        );
    }

    #[tokio::test]
    async fn check_round_trips_and_cleans_up() {
        let (_dir, store) = store();
        store.check().await.expect("check");
        assert!(files_under(store.root()).is_empty());
    }

    #[tokio::test]
    async fn check_reports_unwritable_root() {
        let (_dir, store) = store();
        // Replace the root with a file: every write below it must fail.
        std::fs::remove_dir(store.root()).expect("remove root");
        std::fs::write(store.root(), b"not a dir").expect("write file");
        assert!(store.check().await.is_err());
    }
}
