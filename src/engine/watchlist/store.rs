// SPDX-License-Identifier: MIT
//! Reading and writing watch-list and key files safely.
//!
//! - Paths are resolved first: a list or key path that is a symlink is written through to the file
//!   it points to (the lock and the temporary file sit beside the real file), so a symlinked path
//!   never forks the list.
//! - Every write goes to a new temporary file beside the target, with a random name, created
//!   exclusively (`O_EXCL`, `O_NOFOLLOW`), fsynced, renamed over the target, and the directory
//!   fsynced: a crash or a full disk leaves the old or the new file, never half of one, and a
//!   planted temporary name cannot be written through.
//! - A file written in place of another keeps its group (and, for root, its owner) and its mode
//!   within 0640, set on the descriptor before the rename: `sudo faceveil remove` leaves a
//!   `root:faceveil 0640` list readable by the service. New files are 0600.
//! - Nothing is written into a directory that its group or other users can write.
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
/// directory resolved, or a dangling link followed to where it points). A symbolic link (of the
/// file's own name) owned by a user other than this one or root is not followed: whoever owns it
/// could point it at any file, and root would write there.
pub fn real_path(path: &Path) -> Result<PathBuf, WatchlistError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mut p = std::path::absolute(path).map_err(io(path))?;
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                if m.uid() != me && m.uid() != 0 {
                    return Err(invalid(
                        &p,
                        &format!(
                            "a symbolic link owned by another user (uid {}): not followed, since                              its owner could point it at any file; name the file itself",
                            m.uid()
                        ),
                    ));
                }
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

/// The most of an old file's mode a rewrite carries over: owner read-write, group read.
pub const MAX_CARRIED_MODE: u32 = 0o640;

/// 16 random hex digits: the part of a temporary or pending name nobody can guess.
fn random_suffix() -> Result<String, WatchlistError> {
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| WatchlistError::Random(e.to_string()))?;
    Ok(suffix.iter().map(|b| format!("{b:02x}")).collect())
}

/// `path` with `.<suffix>` appended to its name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// Refuses a directory that users other than its owner can write (sticky or not), or that belongs
/// to a user other than this one or root: they could remove or replace the list or key written
/// there.
pub fn check_dir(dir: &Path) -> Result<(), WatchlistError> {
    let meta = std::fs::metadata(dir).map_err(io(dir))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Err(invalid(
            dir,
            &format!(
                "the directory belongs to another user (uid {}), who could remove or replace the                  files faceveil writes there: use a directory of this user or of root",
                meta.uid()
            ),
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 == 0 {
        return Ok(());
    }
    let who = match mode & 0o022 {
        0o020 => "its group",
        0o002 => "every user",
        _ => "its group and every user",
    };
    let sticky = if mode & 0o1000 != 0 {
        " (the sticky bit does not stop them from planting names)"
    } else {
        ""
    };
    Err(invalid(
        dir,
        &format!(
            "the directory is writable by {who} (mode {mode:04o}){sticky}, who could remove or \
             replace the files faceveil writes there: chmod go-w {}, or use another directory",
            dir.display()
        ),
    ))
}

/// The owner, group and mode a file written in place of another gets: the old file's group (and,
/// when the writer is root, its owner), and its mode within [`MAX_CARRIED_MODE`]; a new file is
/// 0600, the writer's.
struct Carry {
    uid: Option<u32>,
    gid: Option<u32>,
    mode: u32,
    /// Bits of the old mode not carried over, said.
    warning: Option<String>,
}

impl Carry {
    /// What replacing `path` (already resolved) keeps of the file there.
    fn from(path: &Path) -> Result<Carry, WatchlistError> {
        let old = match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(Carry::new_file()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Carry::new_file()),
            Err(e) => return Err(io(path)(e)),
        };
        let old_mode = old.mode() & 0o7777;
        let mode = 0o600 | (old_mode & MAX_CARRIED_MODE & 0o040);
        let dropped = old_mode & !MAX_CARRIED_MODE;
        let warning = (dropped != 0).then(|| {
            format!(
                "{} was mode {old_mode:04o}; written {mode:04o}: faceveil carries at most {:04o} \
                 (owner read-write, group read), never group or other write, other read or \
                 special bits",
                path.display(),
                MAX_CARRIED_MODE
            )
        });
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        Ok(Carry {
            uid: root.then(|| old.uid()),
            gid: Some(old.gid()),
            mode,
            warning,
        })
    }

    fn new_file() -> Carry {
        Carry {
            uid: None,
            gid: None,
            mode: 0o600,
            warning: None,
        }
    }

    /// Gives the open file `f` (named `path`) its owner, group and mode, through the descriptor.
    fn apply(&self, f: &File, path: &Path, target: &Path) -> Result<(), WatchlistError> {
        if let Some(gid) = self.gid {
            use std::os::fd::AsRawFd;
            // -1 (as uid_t): leave the owner as it is.
            let uid = self.uid.unwrap_or(u32::MAX);
            // SAFETY: a valid open descriptor; fchown has no other preconditions.
            if unsafe { libc::fchown(f.as_raw_fd(), uid, gid) } != 0 {
                let e = std::io::Error::last_os_error();
                return Err(invalid(
                    target,
                    &format!(
                        "cannot give its new copy the group {gid} of the file it replaces ({e}): \
                         run as root or as a member of that group"
                    ),
                ));
            }
        }
        f.set_permissions(std::fs::Permissions::from_mode(self.mode))
            .map_err(io(path))
    }
}

/// Creates `path` exclusively, without following links, in a directory only its owner can write,
/// owned and with the mode `carry` says (set on the descriptor, before any byte is written).
fn create_exclusive(path: &Path, carry: &Carry, target: &Path) -> Result<File, WatchlistError> {
    check_dir(path.parent().unwrap_or(Path::new(".")))?;
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(io(path))?;
    if let Err(e) = carry.apply(&f, path, target) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(f)
}

/// Syncs the directory `dir` (a rename in it is then on disk).
fn sync_dir(dir: &Path) -> Result<(), WatchlistError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Writes `bytes` atomically to the file `path` names (symlinks followed): a file that exists
/// keeps its group (and owner, for root) and mode within 0640; a new one is 0600. Returns a
/// warning when bits of the old mode were not carried over. On failure (a full disk) the file
/// is unchanged, no temporary file stays, and the error names the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<Option<String>, WatchlistError> {
    let path = real_path(path)?;
    let carry = Carry::from(&path)?;
    let tmp = beside(&path, ".", &format!(".tmp.{}", random_suffix()?))?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut f = create_exclusive(&tmp, &carry, &path)?;
    let unchanged = |e: std::io::Error| WatchlistError::Io {
        path: path.clone(),
        error: std::io::Error::new(
            e.kind(),
            format!("{e} (writing its new copy; the file is unchanged)"),
        ),
    };
    let result = f
        .write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(unchanged)
        .and_then(|_| {
            drop(f);
            std::fs::rename(&tmp, &path).map_err(io(&path))
        });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The file is replaced now: a directory that cannot be synced is a warning, not a failure
    // (a caller must not undo what depends on the new file, such as the key a list is under).
    if let Err(e) = sync_dir(&dir) {
        let w = format!(
            "{} written, but its directory could not be synced: {e}",
            path.display()
        );
        return Ok(Some(
            carry.warning.map_or(w.clone(), |c| format!("{c}; {w}")),
        ));
    }
    Ok(carry.warning)
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

/// Writes a list atomically as its next generation, stamped with the time (see [`write_atomic`]:
/// a list that exists keeps its group and mode; the warning it may return is returned).
pub fn save(
    path: &Path,
    list: &mut Watchlist,
    secret: &Secret,
) -> Result<Option<String>, WatchlistError> {
    list.generation += 1;
    list.written_at = now();
    let bytes = encode(list, secret).map_err(|e| match e {
        WatchlistError::Corrupt { reason, .. } => WatchlistError::Corrupt {
            path: path.to_path_buf(),
            reason,
        },
        e => e,
    })?;
    write_atomic(path, &bytes)
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
        check_dir(list.parent().unwrap_or(Path::new(".")))?;
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
/// Returns `f`'s result and the warning of [`save`], if any.
pub fn update<T, E: From<WatchlistError>>(
    path: &Path,
    wait: &Wait<'_>,
    secret: impl FnOnce() -> Result<Secret, E>,
    f: impl FnOnce(&mut Watchlist, &Secret) -> Result<T, E>,
) -> Result<(T, Option<String>), E> {
    let lock = Lock::acquire(path, wait)?;
    let secret = secret()?;
    let mut list = load(lock.list(), &secret)?;
    let out = f(&mut list, &secret)?;
    let warning = save(lock.list(), &mut list, &secret)?;
    Ok((out, warning))
}

mod keys;
pub use keys::*;

#[cfg(test)]
mod tests;
