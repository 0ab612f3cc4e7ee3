// SPDX-License-Identifier: MIT
//! Reading and writing watch-list and key files safely: every write goes to a temporary file in the
//! same directory, is fsynced, renamed over the old file and the directory fsynced, so a crash leaves
//! either the old or the new file, never half of one. Writers serialise on `<list>.lock` (an advisory
//! lock), so two concurrent `enroll`s both land.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::file::{Secret, decode, encode};
use super::{Watchlist, WatchlistError};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WatchlistError + '_ {
    move |error| WatchlistError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Writes `bytes` to `path` atomically, with the given file mode for a new file.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WatchlistError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| WatchlistError::Io {
        path: path.to_path_buf(),
        error: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io(path))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Reads and opens a list.
pub fn load(path: &Path, secret: &Secret) -> Result<Watchlist, WatchlistError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    decode(&bytes, secret, path)
}

/// Writes a list atomically (mode 0600 for a new file).
pub fn save(path: &Path, list: &Watchlist, secret: &Secret) -> Result<(), WatchlistError> {
    let bytes = encode(list, secret).map_err(|e| match e {
        WatchlistError::Corrupt { reason, .. } => WatchlistError::Corrupt {
            path: path.to_path_buf(),
            reason,
        },
        e => e,
    })?;
    write_atomic(path, &bytes, 0o600)
}

/// The advisory lock writers of `path` take: `<path>.lock`, held until dropped.
pub struct Lock {
    _file: File,
}

impl Lock {
    pub fn acquire(path: &Path) -> Result<Lock, WatchlistError> {
        let mut name = path.as_os_str().to_owned();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        f.lock().map_err(io(&lock_path))?;
        Ok(Lock { _file: f })
    }
}

/// Read-modify-write under the lock: loads the current list, applies `f`, saves it. If `f` fails,
/// nothing is written.
pub fn update<T, E: From<WatchlistError>>(
    path: &Path,
    secret: &Secret,
    f: impl FnOnce(&mut Watchlist) -> Result<T, E>,
) -> Result<T, E> {
    let _lock = Lock::acquire(path)?;
    let mut list = load(path, secret)?;
    let out = f(&mut list)?;
    save(path, &list, secret)?;
    Ok(out)
}

/// Creates a new key file (64 hex digits) with mode 0600; refuses to overwrite unless `replace`.
pub fn write_key_file(path: &Path, key: &[u8; 32], replace: bool) -> Result<(), WatchlistError> {
    if !replace && path.exists() {
        return Err(WatchlistError::Io {
            path: path.to_path_buf(),
            error: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "key file exists; not overwritten",
            ),
        });
    }
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    write_atomic(path, format!("{hex}\n").as_bytes(), 0o600)
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
            "expected 64 hexadecimal digits (a key made by 'facewatch init')",
        ));
    }
    let mut key = [0u8; 32];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| bad("not hexadecimal"))?;
    }
    Ok(key)
}

pub fn read_key_file(path: &Path) -> Result<[u8; 32], WatchlistError> {
    let text = std::fs::read_to_string(path).map_err(|e| WatchlistError::BadKey {
        source: path.display().to_string(),
        reason: if e.kind() == std::io::ErrorKind::NotFound {
            "no such key file (made by 'facewatch init'; or set FACEWATCH_KEY)".into()
        } else {
            e.to_string()
        },
    })?;
    parse_key(&text, &path.display().to_string())
}

/// The key of `list`: the key file named explicitly, else `FACEWATCH_KEY` (hex) when set, else the
/// default key file `<list>.key`.
pub fn resolve_key(explicit: Option<&Path>, list: &Path) -> Result<Secret, WatchlistError> {
    if let Some(f) = explicit {
        return Ok(Secret::Key(read_key_file(f)?));
    }
    match std::env::var("FACEWATCH_KEY") {
        Ok(k) if !k.trim().is_empty() => Ok(Secret::Key(parse_key(&k, "FACEWATCH_KEY")?)),
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
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fw-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn key_file_is_private_and_parses() {
        let d = dir("key");
        let p = d.join("k");
        let key = [0xabu8; 32];
        write_key_file(&p, &key, false).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_key_file(&p).unwrap(), key);
        assert!(write_key_file(&p, &key, false).is_err());
        assert!(matches!(
            parse_key("abc", "x"),
            Err(WatchlistError::BadKey { .. })
        ));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn failed_update_leaves_the_file_unchanged() {
        let d = dir("update");
        let p = d.join("w.fwl");
        let s = Secret::Key([5u8; 32]);
        save(&p, &Watchlist::new("m:1"), &s).unwrap();
        let before = std::fs::read(&p).unwrap();
        let r: Result<(), WatchlistError> = update(&p, &s, |w| {
            w.model_id = "changed".into();
            Err(WatchlistError::Random("refused".into()))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), before);
        // no temporary files left behind
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            2,
            "list and lock only"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn concurrent_updates_all_land() {
        let d = dir("concurrent");
        let p = d.join("w.fwl");
        let s = Secret::Key([6u8; 32]);
        save(&p, &Watchlist::new("m:1"), &s).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (p, s) = (p.clone(), s.clone());
                std::thread::spawn(move || {
                    update::<_, WatchlistError>(&p, &s, |w| {
                        w.identities.push(super::super::Identity {
                            id: format!("{i}"),
                            label: format!("l{i}"),
                            note: None,
                            added_by: "t".into(),
                            added_at: 0,
                            expires_at: None,
                            descriptors: vec![],
                        });
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        Ok(())
                    })
                    .unwrap()
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(load(&p, &s).unwrap().identities.len(), 8);
        std::fs::remove_dir_all(d).unwrap();
    }
}
