//! etcd snapshot files: what `talosctl etcd snapshot` writes, kept the way
//! a backup wants them. A snapshot is etcd's database followed by the
//! SHA-256 of it (etcd `server/etcdserver/api/v3rpc/maintenance.go`
//! `Snapshot` appends the hash; `etcdutl snapshot restore` checks it when
//! the size is 32 bytes past a multiple of 512, the bbolt page size,
//! `server/storage/schema` / `etcdutl/snapshot/v3_snapshot.go`), so a file
//! is verified before it is kept. Files are written 0600 under a temporary
//! name and renamed, so a partial file never has the final name.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// Why a snapshot is not usable, or could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes are not an etcd snapshot with its integrity hash.
    #[error("the snapshot ({size} bytes) {why}")]
    Corrupt {
        /// Its size.
        size: usize,
        /// What is wrong.
        why: &'static str,
    },
    /// Writing or pruning failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Checks the hash etcd appends to the database.
pub fn verify(bytes: &[u8]) -> Result<(), SnapshotError> {
    let size = bytes.len();
    if size < 512 + 32 || size % 512 != 32 {
        return Err(SnapshotError::Corrupt { size, why: "is not an etcd database followed by its SHA-256" });
    }
    let (db, hash) = bytes.split_at(size - 32);
    if Sha256::digest(db).as_slice() != hash {
        return Err(SnapshotError::Corrupt { size, why: "does not match its SHA-256 (damaged in transfer?)" });
    }
    Ok(())
}

/// Writes `bytes` as `<dir>/<prefix>-<UTC time>.snapshot` (0600) and keeps
/// the newest `keep` files of that prefix (at least 1). Returns the path
/// and how many older files it removed.
pub fn keep(dir: &Path, prefix: &str, bytes: &[u8], keep: usize) -> Result<(PathBuf, usize), SnapshotError> {
    let stamp: String = crate::resources::shared::common::rfc3339(SystemTime::now())
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let path = dir.join(format!("{prefix}-{stamp}.snapshot"));
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| SnapshotError::Io { path: p, source }
    };
    write_private(dir, &path, bytes).map_err(io(&path))?;
    let removed = prune(dir, prefix, keep).map_err(io(dir))?;
    Ok((path, removed))
}

fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("snapshot.part");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn prune(dir: &Path, prefix: &str, keep: usize) -> std::io::Result<usize> {
    let prefix = format!("{prefix}-");
    let mut mine: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".snapshot"))
        })
        .collect();
    mine.sort();
    let extra = mine.len().saturating_sub(keep.max(1));
    for p in mine.into_iter().take(extra) {
        std::fs::remove_file(p)?;
    }
    Ok(extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(db: &[u8]) -> Vec<u8> {
        let mut out = db.to_vec();
        out.extend_from_slice(&Sha256::digest(db));
        out
    }

    #[test]
    fn a_snapshot_carries_the_hash_of_its_database() {
        let good = snapshot(&[7u8; 4096]);
        assert!(verify(&good).is_ok());
        let mut bad = good.clone();
        bad[10] ^= 1;
        assert!(verify(&bad).unwrap_err().to_string().contains("does not match"));
        assert!(verify(&good[..4096]).unwrap_err().to_string().contains("not an etcd database"));
    }

    #[test]
    fn files_are_private_and_only_the_newest_stay() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for i in 0..3 {
            std::fs::write(dir.path().join(format!("c-2026120{i}T000000Z.snapshot")), b"x").unwrap();
        }
        std::fs::write(dir.path().join("other-20260101T000000Z.snapshot"), b"x").unwrap();
        let (path, removed) = keep(dir.path(), "c", &snapshot(&[1u8; 512]), 2).unwrap();
        assert_eq!(removed, 2);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.contains(&"other-20260101T000000Z.snapshot".to_string()));
    }
}
