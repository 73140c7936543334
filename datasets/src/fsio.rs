//! Every file the harness writes goes through here, so that no crash, full disk or second
//! process leaves a half-written output:
//! - whole files are written atomically: a uniquely named temporary file in the same folder,
//!   fsync, rename over the target, fsync of the folder;
//! - rows are appended to logs and tables whole or not at all (a failed write is cut back);
//! - folders that one process owns at a time (a run, a dataset) take an exclusive lock that
//!   names its holder, and a second process waits for it with a message.

use crate::error::{DataError, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name beside `path` that no other writer (thread or process) uses at the same time.
fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| DataError::format(path, "not a file name"))?;
    let unique = format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    Ok(path.with_file_name(unique))
}

/// Makes a finished rename durable: the folder's entry is on disk too.
fn sync_parent(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| DataError::io(parent, e))
}

/// Writes `path` through `write`, which receives a temporary path beside it; the target is
/// replaced only once the temporary file is complete and synced, and is never seen half-written.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temp_path(path)?;
    let result = write(&tmp).and_then(|()| {
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| DataError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| DataError::io(path, e))?;
        sync_parent(path)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Replaces `path` with `bytes`, atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |tmp| {
        std::fs::write(tmp, bytes).map_err(|e| DataError::io(tmp, e))
    })
}

/// Appends `rows` (whole lines) to a table whose first line is `header`, writing the header
/// when the file is new and refusing a file with another header. The rows land in one write
/// under an exclusive lock of the file; if the write fails (a full disk) the file is cut back
/// to its old length, so it never ends in half a row. Returns the new length in bytes.
pub fn append_rows(path: &Path, header: &str, rows: &str) -> Result<u64> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| DataError::io(path, e))?;
    let _lock = FileLock::acquire(&file, path)?;
    let mut handle = &file;
    let old_len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let mut text = String::new();
    if old_len == 0 {
        text.push_str(header);
        text.push('\n');
    } else {
        let mut first = vec![0u8; header.len() + 1];
        let read = handle
            .seek(SeekFrom::Start(0))
            .and_then(|_| handle.read(&mut first))
            .map_err(|e| DataError::io(path, e))?;
        if first[..read] != *format!("{header}\n").as_bytes() {
            return Err(DataError::format(
                path,
                "its header is not the one this harness writes (another schema?); move it aside",
            ));
        }
    }
    text.push_str(rows);
    let written = handle
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_data());
    if let Err(e) = written {
        let _ = file.set_len(old_len);
        return Err(DataError::io(path, e));
    }
    Ok(old_len + text.len() as u64)
}

/// Cuts a log back to `len` bytes: the length it had when the state that continues it was
/// saved. A file shorter than that is not the log that state belongs to.
pub fn truncate_to(path: &Path, len: u64) -> Result<()> {
    if len == 0 {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DataError::io(path, e)),
            _ => Ok(()),
        };
    }
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| DataError::io(path, e))?;
    let actual = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    if actual < len {
        return Err(DataError::format(
            path,
            format!(
                "{actual} bytes, but the saved state says it had {len}: it was changed or replaced"
            ),
        ));
    }
    file.set_len(len)
        .and_then(|()| file.sync_data())
        .map_err(|e| DataError::io(path, e))
}

/// An exclusive `flock` on an open file, released when dropped (or when the process dies,
/// however it dies: the kernel drops it).
struct FileLock<'a> {
    file: &'a File,
}

impl<'a> FileLock<'a> {
    fn acquire(file: &'a File, path: &Path) -> Result<Self> {
        flock(file, libc::LOCK_EX).map_err(|e| DataError::io(path, e))?;
        Ok(FileLock { file })
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        let _ = flock(self.file, libc::LOCK_UN);
    }
}

fn flock(file: &File, op: libc::c_int) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    loop {
        // SAFETY: flock on a descriptor this File owns.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "unknown host".into()
    }
}

/// Exclusive ownership of a folder (a run, a dataset) by this process, through a lock file
/// that names the holder (pid, host, start time). A second process that asks waits, saying
/// whom it waits for; a holder that dies releases it.
pub struct DirLock {
    file: File,
    path: PathBuf,
}

impl DirLock {
    /// Locks through the lock file `lock_path`, waiting for another holder; `what` names
    /// the folder in the waiting message.
    pub fn acquire(lock_path: &Path, what: &str) -> Result<Self> {
        if let Some(dir) = lock_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(lock_path)
            .map_err(|e| DataError::io(lock_path, e))?;
        if flock(&file, libc::LOCK_EX | libc::LOCK_NB).is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            eprintln!(
                "waiting for {what}: it is in use by {} (lock file {})",
                holder.trim(),
                lock_path.display()
            );
            flock(&file, libc::LOCK_EX).map_err(|e| DataError::io(lock_path, e))?;
        }
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let holder = format!(
            "pid {} on host {} since unix time {since}\n",
            std::process::id(),
            host_name()
        );
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|()| file.write_all(holder.as_bytes()))
            .map_err(|e| DataError::io(lock_path, e))?;
        Ok(DirLock {
            file,
            path: lock_path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who holds the lock file `lock_path` now, without waiting: `None` when nobody does
    /// (or the file does not exist).
    pub fn holder(lock_path: &Path) -> Result<Option<String>> {
        let mut file = match OpenOptions::new().read(true).write(true).open(lock_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DataError::io(lock_path, e)),
        };
        if flock(&file, libc::LOCK_EX | libc::LOCK_NB).is_ok() {
            let _ = flock(&file, libc::LOCK_UN);
            return Ok(None);
        }
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        Ok(Some(holder.trim().to_string()))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = flock(&self.file, libc::LOCK_UN);
    }
}

/// Every file below `dir`, in its subfolders too (the one directory walk: ARC task folders,
/// a dataset's files for its manifest, a task's files for the memory plan).
pub fn files_below(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| DataError::io(&d, e))? {
            let path = entry.map_err(|e| DataError::io(&d, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_leave_no_temporary_files_and_replace_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let failed = write_atomic_with(&path, |tmp| {
            std::fs::write(tmp, b"half").unwrap();
            Err(DataError::format(tmp, "disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary files left: {names:?}");
    }

    #[test]
    fn appends_check_the_header_and_truncation_restores_a_saved_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        let after_one = append_rows(&path, "a,b", "1,2\n").unwrap();
        let after_two = append_rows(&path, "a,b", "3,4\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b\n1,2\n3,4\n");
        assert_eq!(after_two, std::fs::metadata(&path).unwrap().len());
        let err = append_rows(&path, "a,c", "5,6\n").unwrap_err();
        assert!(err.to_string().contains("header"), "{err}");
        truncate_to(&path, after_one).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b\n1,2\n");
        assert!(truncate_to(&path, after_two).is_err());
        truncate_to(&path, 0).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn a_second_lock_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join(".lock");
        let first = DirLock::acquire(&lock, "the test folder").unwrap();
        assert!(std::fs::read_to_string(&lock)
            .unwrap()
            .contains(&format!("pid {}", std::process::id())));
        let (tx, rx) = std::sync::mpsc::channel();
        let lock2 = lock.clone();
        let waiter = std::thread::spawn(move || {
            let _second = DirLock::acquire(&lock2, "the test folder").unwrap();
            tx.send(()).unwrap();
        });
        // flock locks belong to open file descriptions, so a second open in this process
        // waits like another process would.
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err());
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        waiter.join().unwrap();
    }
}
