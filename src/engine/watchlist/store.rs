// SPDX-License-Identifier: MIT
//! Reading and writing watch-list and key files safely.
//!
//! - Paths are resolved first: a list or key path that is a symlink is written through to the file
//!   it points to (the lock and the temporary file sit beside the real file), so a symlinked path
//!   never forks the list.
//! - Every write goes to a new temporary file beside the target, with a random name, created
//!   exclusively (`O_EXCL`, `O_NOFOLLOW`) with mode 0600, fsynced, renamed over the target, and the
//!   directory fsynced: a crash leaves the old or the new file, never half of one, and a planted
//!   temporary name cannot be written through.
//! - Writers serialise on `<real list>.lock` (an advisory lock on a file of ours, opened without
//!   following links, holding the holder's pid). A writer that has to wait says so and for whom, and
//!   gives up after its timeout. Under the lock, temporary files that a crashed writer left behind
//!   are swept.
//! - Reads refuse what is not a regular file (a FIFO would block) and files larger than any list
//!   this machine could hold, before reading them; decrypted bytes and keys are wiped when dropped.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::file::{Secret, decode, encode};
use super::{Watchlist, WatchlistError, now};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WatchlistError + '_ {
    move |error| WatchlistError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn invalid(path: &Path, what: &str) -> WatchlistError {
    WatchlistError::Io {
        path: path.to_path_buf(),
        error: std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_string()),
    }
}

/// The file a path names once every symlink is followed, also when it does not exist yet (its
/// directory resolved, or a dangling link followed to where it points).
pub fn real_path(path: &Path) -> Result<PathBuf, WatchlistError> {
    let mut p = std::path::absolute(path).map_err(io(path))?;
    for _ in 0..40 {
        if let Ok(real) = std::fs::canonicalize(&p) {
            return Ok(real);
        }
        match std::fs::symlink_metadata(&p) {
            // A dangling link: follow it by hand.
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p).map_err(io(&p))?;
                p = p.parent().unwrap_or(Path::new("/")).join(target);
            }
            _ => {
                let name = p
                    .file_name()
                    .ok_or_else(|| invalid(path, "not a file path"))?;
                let dir = p.parent().ok_or_else(|| invalid(path, "not a file path"))?;
                let dir = std::fs::canonicalize(dir).map_err(io(dir))?;
                return Ok(dir.join(name));
            }
        }
    }
    Err(invalid(path, "too many levels of symbolic links"))
}

/// `<dir>/.<name><suffix>` beside `path`.
fn beside(path: &Path, prefix: &str, suffix: &str) -> Result<PathBuf, WatchlistError> {
    let name = path
        .file_name()
        .ok_or_else(|| invalid(path, "not a file path"))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    Ok(dir.join(format!("{prefix}{}{suffix}", name.to_string_lossy())))
}

/// Writes `bytes` atomically to the file `path` names (symlinks followed), with mode `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WatchlistError> {
    let path = real_path(path)?;
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| WatchlistError::Random(e.to_string()))?;
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = beside(&path, ".", &format!(".tmp.{suffix}"))?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(io(&tmp))?;
        // Exactly `mode`, whatever the umask.
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` afresh (whatever was there, a planted link included, is unlinked, not followed)
/// exclusively and without following links, with exactly `mode`, and syncs it: for a file that
/// must appear under a fixed, visible name (the pending key of a rekey).
pub fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WatchlistError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(path)(e)),
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(io(path))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// The most bytes a list file may have here: what the format allows (4 GiB), and no more than half
/// the memory available now, so that a huge file is refused before it is read.
pub fn max_list_bytes() -> u64 {
    const FORMAT_MAX: u64 = 4 << 30;
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemAvailable:"))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
    });
    available.map_or(FORMAT_MAX, |kib| FORMAT_MAX.min(kib * 1024 / 2))
}

/// Why [`open_regular`] failed.
#[derive(Debug)]
pub enum OpenError {
    Io(std::io::Error),
    /// A FIFO, device, socket or directory.
    NotAFile,
}

/// Opens `path` for reading if it is a regular file, checked on the open file (`O_NONBLOCK`: a
/// FIFO without a writer does not block the open), and returns it with its metadata.
pub fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata), OpenError> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(OpenError::Io)?;
    let meta = f.metadata().map_err(OpenError::Io)?;
    if !meta.is_file() {
        return Err(OpenError::NotAFile);
    }
    Ok((f, meta))
}

/// Reads a list file: a regular file (checked on the open file, without blocking on a FIFO) of at
/// most [`max_list_bytes`]. The bytes are wiped when dropped.
pub fn read_list_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, WatchlistError> {
    let (mut f, meta) = open_regular(path).map_err(|e| match e {
        OpenError::NotAFile => WatchlistError::NotAFile {
            path: path.to_path_buf(),
        },
        OpenError::Io(e) => io(path)(e),
    })?;
    let limit = max_list_bytes();
    if meta.len() > limit {
        return Err(WatchlistError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit,
        });
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    (&mut f)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    Ok(bytes)
}

/// Reads and opens a list.
pub fn load(path: &Path, secret: &Secret) -> Result<Watchlist, WatchlistError> {
    decode(&read_list_file(path)?, secret, path)
}

/// Writes a list atomically (mode 0600) as its next generation, stamped with the time.
pub fn save(path: &Path, list: &mut Watchlist, secret: &Secret) -> Result<(), WatchlistError> {
    list.generation += 1;
    list.written_at = now();
    let bytes = encode(list, secret).map_err(|e| match e {
        WatchlistError::Corrupt { reason, .. } => WatchlistError::Corrupt {
            path: path.to_path_buf(),
            reason,
        },
        e => e,
    })?;
    write_atomic(path, &bytes, 0o600)
}

/// How a writer waits for the lock: for how long, and whom it tells that it waits (with the pid of
/// the holder, when the lock file names one).
pub struct Wait<'a> {
    pub timeout: Duration,
    pub notify: &'a dyn Fn(&Path, Option<u32>),
}

impl Wait<'_> {
    /// Waits up to `timeout` and says nothing.
    pub fn quiet(timeout: Duration) -> Wait<'static> {
        Wait {
            timeout,
            notify: &|_, _| {},
        }
    }
}

/// The advisory lock writers of a list take, on `<real list>.lock`, held until dropped.
pub struct Lock {
    file: File,
    list: PathBuf,
}

impl Lock {
    /// Resolves `path`, takes its lock (waiting as `wait` says) and sweeps the temporary files a
    /// crashed writer left beside the list or its default key file.
    pub fn acquire(path: &Path, wait: &Wait<'_>) -> Result<Lock, WatchlistError> {
        let list = real_path(path)?;
        let lock_path = beside(&list, "", ".lock")?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        let meta = file.metadata().map_err(io(&lock_path))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if !meta.is_file() || meta.uid() != me {
            return Err(invalid(
                &lock_path,
                "the lock file is not a regular file of this user (planted?); remove it",
            ));
        }
        let start = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = {
                        let mut text = String::new();
                        let _ = (&file).take(32).read_to_string(&mut text);
                        use std::io::Seek;
                        let _ = file.seek(std::io::SeekFrom::Start(0));
                        text.trim().parse::<u32>().ok()
                    };
                    if !told {
                        (wait.notify)(&list, holder);
                        told = true;
                    }
                    if start.elapsed() >= wait.timeout {
                        return Err(WatchlistError::LockTimeout {
                            path: list,
                            holder,
                            waited_s: start.elapsed().as_secs(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
            }
        }
        file.set_len(0).map_err(io(&lock_path))?;
        use std::io::Seek;
        let _ = file.seek(std::io::SeekFrom::Start(0));
        let _ = writeln!(file, "{}", std::process::id());
        sweep_temps(&list);
        Ok(Lock { file, list })
    }

    /// The real list path (symlinks resolved) to read and write under this lock.
    pub fn list(&self) -> &Path {
        &self.list
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

/// Removes `.<list name>.tmp.*` beside the list (left by a writer that died before its rename).
/// Only under the lock: no live writer of this list can own one. (Key files are never swept: a
/// key written by an interrupted rekey may be the only copy of the key the list is under.)
fn sweep_temps(list: &Path) {
    let (Some(dir), Some(name)) = (list.parent(), list.file_name()) else {
        return;
    };
    let prefix = format!(".{}.tmp.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        if n.starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Read-modify-write under the lock: takes the lock, then resolves the secret (so a concurrent
/// rekey is seen), loads the current list, applies `f`, saves it. If `f` fails, nothing is written.
pub fn update<T, E: From<WatchlistError>>(
    path: &Path,
    wait: &Wait<'_>,
    secret: impl FnOnce() -> Result<Secret, E>,
    f: impl FnOnce(&mut Watchlist, &Secret) -> Result<T, E>,
) -> Result<T, E> {
    let lock = Lock::acquire(path, wait)?;
    let secret = secret()?;
    let mut list = load(lock.list(), &secret)?;
    let out = f(&mut list, &secret)?;
    save(lock.list(), &mut list, &secret)?;
    Ok(out)
}

/// The text of a key file: 64 hex digits and a newline (wiped when dropped).
fn key_text(key: &[u8; 32]) -> Zeroizing<String> {
    let mut text = Zeroizing::new(String::with_capacity(65));
    for b in key {
        use std::fmt::Write as _;
        let _ = write!(text, "{b:02x}");
    }
    text.push('\n');
    text
}

/// Writes the pending key of a rekey to `path` (see [`write_new_file`]).
pub fn write_pending_key(path: &Path, key: &[u8; 32]) -> Result<(), WatchlistError> {
    write_new_file(path, key_text(key).as_bytes(), 0o600)
}

/// Creates a key file (64 hex digits) with mode 0600; refuses to overwrite unless `replace`.
pub fn write_key_file(path: &Path, key: &[u8; 32], replace: bool) -> Result<(), WatchlistError> {
    if !replace && std::fs::symlink_metadata(path).is_ok() {
        return Err(WatchlistError::Io {
            path: path.to_path_buf(),
            error: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "key file exists; not overwritten",
            ),
        });
    }
    write_atomic(path, key_text(key).as_bytes(), 0o600)
}

/// Parses a key: 64 hex digits (surrounding whitespace ignored).
pub fn parse_key(text: &str, source: &str) -> Result<[u8; 32], WatchlistError> {
    let t = text.trim();
    let bad = |reason: &str| WatchlistError::BadKey {
        source: source.to_string(),
        reason: reason.to_string(),
    };
    if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(
            "expected 64 hexadecimal digits (a key made by 'faceveil init')",
        ));
    }
    let mut key = [0u8; 32];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| bad("not hexadecimal"))?;
    }
    Ok(key)
}

pub fn read_key_file(path: &Path) -> Result<[u8; 32], WatchlistError> {
    let bad = |reason: String| WatchlistError::BadKey {
        source: path.display().to_string(),
        reason,
    };
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            bad(if e.kind() == std::io::ErrorKind::NotFound {
                "no such key file (made by 'faceveil init'; or set FACEVEIL_KEY)".into()
            } else {
                e.to_string()
            })
        })?;
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(bad("not a regular file".into()));
    }
    let mut text = Zeroizing::new(String::new());
    f.take(4096)
        .read_to_string(&mut text)
        .map_err(|e| bad(e.to_string()))?;
    parse_key(&text, &path.display().to_string())
}

/// The key of `list`: the key file named explicitly, else `FACEVEIL_KEY` (hex) when set, else the
/// default key file `<list>.key`.
pub fn resolve_key(explicit: Option<&Path>, list: &Path) -> Result<Secret, WatchlistError> {
    if let Some(f) = explicit {
        return Ok(Secret::Key(read_key_file(f)?));
    }
    match std::env::var("FACEVEIL_KEY").map(Zeroizing::new) {
        Ok(k) if !k.trim().is_empty() => Ok(Secret::Key(parse_key(&k, "FACEVEIL_KEY")?)),
        _ => Ok(Secret::Key(read_key_file(&default_key_file(list))?)),
    }
}

/// The key file that goes with a list when none is named: `<list>.key`.
pub fn default_key_file(list: &Path) -> PathBuf {
    let mut name = list.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests;
