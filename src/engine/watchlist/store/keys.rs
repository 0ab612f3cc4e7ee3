// SPDX-License-Identifier: MIT
//! Key files: reading them (refusing one that others can write, warning about one that every user
//! can read), resolving a list's key, and the pending key of a rekey, written under an
//! unpredictable name and checked to be the key file after its rename.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::engine::secret_file::read_secret_file;

use super::super::WatchlistError;
use super::super::file::{HEADER_LEN, Secret, is_under_key};
use super::{
    Carry, Lock, check_dir, create_exclusive, invalid, io, random_suffix, read_list_file,
    real_path, sync_dir, with_suffix, write_atomic,
};

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

/// A new key written beside the key file under an unpredictable pending name
/// (`<key file>.new.<16 random hex digits>`), its file kept open until [`PendingKey::install`]
/// renames it over the key file and checks that the key file is then the file written.
pub struct PendingKey {
    file: File,
    path: PathBuf,
    target: PathBuf,
    key: Zeroizing<[u8; 32]>,
    warning: Option<String>,
}

/// Writes `key` as the pending key of `key_file` (symlinks followed): created exclusively, not
/// following links, with the group and mode of the key file it will replace (within 0640), synced.
pub fn write_pending_key(key_file: &Path, key: &[u8; 32]) -> Result<PendingKey, WatchlistError> {
    let target = real_path(key_file)?;
    let carry = Carry::from(&target)?;
    let path = with_suffix(&target, &format!("new.{}", random_suffix()?));
    let mut file = create_exclusive(&path, &carry, &target)?;
    if let Err(e) = file
        .write_all(key_text(key).as_bytes())
        .and_then(|_| file.sync_all())
    {
        let _ = std::fs::remove_file(&path);
        return Err(io(&path)(e));
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(PendingKey {
        file,
        path,
        target,
        key: Zeroizing::new(*key),
        warning: carry.warning,
    })
}

impl PendingKey {
    /// Where the pending key is, until it is installed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bits of the old key file's mode not carried over, said.
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// Renames the pending key over the key file, then checks that the key file is the very file
    /// written (device and inode of the open file against the name). If it is not (the pending
    /// name was replaced meanwhile), the key is written again under a new name that the error
    /// gives, for the operator to move into place: the list may already be under it.
    pub fn install(self) -> Result<(), WatchlistError> {
        let renamed = std::fs::rename(&self.path, &self.target);
        let dir = self.target.parent().unwrap_or(Path::new("."));
        let _ = sync_dir(dir);
        let ours = self.file.metadata().map_err(io(&self.path))?;
        let there = std::fs::symlink_metadata(&self.target);
        let installed = there
            .as_ref()
            .is_ok_and(|m| m.is_file() && m.dev() == ours.dev() && m.ino() == ours.ino());
        if renamed.is_ok() && installed {
            return Ok(());
        }
        let what = match &renamed {
            Err(e) => format!(
                "the pending key {} could not be renamed ({e})",
                self.path.display()
            ),
            Ok(()) => format!(
                "the pending key {} was replaced before it was renamed (who else can write {}?)",
                self.path.display(),
                dir.display()
            ),
        };
        let kept = with_suffix(&self.target, &format!("rekeyed.{}", random_suffix()?));
        let keep = || -> Result<(), WatchlistError> {
            let carry = Carry::from(&self.target).unwrap_or_else(|_| Carry::new_file());
            let mut f = create_exclusive(&kept, &carry, &self.target)?;
            f.write_all(key_text(&self.key).as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(io(&kept))?;
            let (a, b) = (f.metadata(), std::fs::symlink_metadata(&kept));
            match (a, b) {
                (Ok(a), Ok(b)) if a.dev() == b.dev() && a.ino() == b.ino() => sync_dir(dir),
                _ => Err(invalid(&kept, "replaced as soon as it was written")),
            }
        };
        let how = match keep() {
            Ok(()) => format!(
                "the new key, which the list may already be under, is kept in {}: check the \
                 directory, then mv {} {}",
                kept.display(),
                kept.display(),
                self.target.display()
            ),
            Err(e) => format!(
                "the new key could not be kept either ({e}): if the list no longer opens, restore \
                 it and its key from a backup"
            ),
        };
        Err(invalid(
            &self.target,
            &format!("NOT the new key: {what}; {how}"),
        ))
    }
}

impl Lock {
    /// Removes the pending keys (`<key file>.new.*`, and the fixed `<key file>.new` of older
    /// versions) that an interrupted rekey or init left beside `key_file`, except a key the list
    /// is under: those are returned, for the operator to move into place. Also refuses a key
    /// directory that others can write.
    pub fn sweep_pending_keys(&self, key_file: &Path) -> Result<Vec<PathBuf>, WatchlistError> {
        let target = real_path(key_file)?;
        let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
            return Ok(vec![]);
        };
        check_dir(dir)?;
        let prefix = format!("{}.new", name.to_string_lossy());
        // No list yet: no key is the list's. A list that cannot be read: keep every key.
        let header = match read_list_file(&self.list) {
            Ok(bytes) => Some(bytes[..bytes.len().min(HEADER_LEN)].to_vec()),
            Err(WatchlistError::Io { error, .. })
                if error.kind() == std::io::ErrorKind::NotFound =>
            {
                Some(Vec::new())
            }
            Err(_) => None,
        };
        let mut kept = Vec::new();
        for e in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            let pending = n == prefix
                || n.strip_prefix(&prefix)
                    .and_then(|s| s.strip_prefix('.'))
                    .is_some_and(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()));
            if !pending {
                continue;
            }
            let p = e.path();
            let is_file = std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file());
            let opens = is_file
                && match (&header, read_key_file_checked(&p)) {
                    (Some(h), Ok((k, _))) => is_under_key(h, &k),
                    // Unsure (the list unreadable): keep it.
                    (None, _) => true,
                    (Some(_), Err(_)) => false,
                };
            if opens {
                kept.push(p);
            } else {
                let _ = std::fs::remove_file(&p);
            }
        }
        Ok(kept)
    }
}

/// Creates a key file (64 hex digits), keeping the group and mode of one it replaces (else 0600);
/// refuses to overwrite unless `replace`.
pub fn write_key_file(
    path: &Path,
    key: &[u8; 32],
    replace: bool,
) -> Result<Option<String>, WatchlistError> {
    if !replace && std::fs::symlink_metadata(path).is_ok() {
        return Err(WatchlistError::Io {
            path: path.to_path_buf(),
            error: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "key file exists; not overwritten",
            ),
        });
    }
    write_atomic(path, key_text(key).as_bytes())
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

/// Reads a key file under [`read_secret_file`]'s rule: a regular file that neither its group nor
/// other users can write (they could swap the key). Returns the key and a warning when every user
/// can read it.
pub fn read_key_file_checked(path: &Path) -> Result<([u8; 32], Option<String>), WatchlistError> {
    let (text, warning) =
        read_secret_file(path, "key file", 4096).map_err(|e| WatchlistError::BadKey {
            source: path.display().to_string(),
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                "no such key file (made by 'faceveil init'; or set FACEVEIL_KEY)".into()
            } else {
                e.to_string()
            },
        })?;
    Ok((parse_key(&text, &path.display().to_string())?, warning))
}

/// [`read_key_file_checked`] without its warning.
pub fn read_key_file(path: &Path) -> Result<[u8; 32], WatchlistError> {
    read_key_file_checked(path).map(|(key, _)| key)
}

/// Where the key of a list comes from.
#[derive(Debug)]
pub enum Key {
    /// A key file, read again on every load: `faceveil rekey` replaces it while a matcher runs.
    File(PathBuf),
    /// A key or passphrase given once (`FACEVEIL_KEY`, a passphrase), or no encryption.
    Fixed(Secret),
}

impl Key {
    /// The one rule for where the key of `list` is: the key file named explicitly, else
    /// `FACEVEIL_KEY` (hex) when set, else the default key file `<list>.key`. Nothing is read yet
    /// but `FACEVEIL_KEY`.
    pub fn locate(explicit: Option<&Path>, list: &Path) -> Result<Key, WatchlistError> {
        Ok(
            match (explicit, std::env::var("FACEVEIL_KEY").map(Zeroizing::new)) {
                (Some(f), _) => Key::File(f.to_path_buf()),
                (None, Ok(k)) if !k.trim().is_empty() => {
                    Key::Fixed(Secret::Key(parse_key(&k, "FACEVEIL_KEY")?))
                }
                _ => Key::File(default_key_file(list)),
            },
        )
    }

    /// [`Key::locate`], and the key file checked and read now (refused when others can write it):
    /// for a matcher that reads the file again on every load. Returns the file's warning (readable
    /// by every user) for the caller to show or post.
    pub fn resolve(
        explicit: Option<&Path>,
        list: &Path,
    ) -> Result<(Key, Option<String>), WatchlistError> {
        let key = Key::locate(explicit, list)?;
        let warning = match &key {
            Key::File(f) => read_key_file_checked(f)?.1,
            Key::Fixed(_) => None,
        };
        Ok((key, warning))
    }

    /// Calls `f` with the secret: a key file is read (and checked) now, for this call only.
    pub fn with_secret<T>(
        &self,
        f: impl FnOnce(&Secret) -> Result<T, WatchlistError>,
    ) -> Result<T, WatchlistError> {
        match self {
            Key::File(p) => f(&Secret::Key(read_key_file(p)?)),
            Key::Fixed(s) => f(s),
        }
    }

    /// The key file, when the key comes from one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Key::File(p) => Some(p),
            Key::Fixed(_) => None,
        }
    }
}

/// The key of `list` (see [`Key::locate`]) read now, and the key file's warning (readable by
/// every user), for the caller to show or post.
pub fn resolve_key_checked(
    explicit: Option<&Path>,
    list: &Path,
) -> Result<(Secret, Option<String>), WatchlistError> {
    match Key::locate(explicit, list)? {
        Key::File(f) => read_key_file_checked(&f).map(|(k, w)| (Secret::Key(k), w)),
        Key::Fixed(s) => Ok((s, None)),
    }
}

/// [`resolve_key_checked`] without the warning.
pub fn resolve_key(explicit: Option<&Path>, list: &Path) -> Result<Secret, WatchlistError> {
    resolve_key_checked(explicit, list).map(|(s, _)| s)
}

/// The key file that goes with a list when none is named: `<list>.key`.
pub fn default_key_file(list: &Path) -> PathBuf {
    let mut name = list.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}
