// SPDX-License-Identifier: MIT
//! The watch-list file format (versions 5 and 6; versions 1 to 4 are still read), documented in
//! docs/WATCHLIST.md.
//!
//! ```text
//! 0   magic       8 bytes  "FWATCHL\0"
//! 8   version     u16 LE   2
//! 10  mode        u8       0 plaintext, 1 key (XChaCha20-Poly1305), 2 passphrase (Argon2id → key)
//! 11  reserved    u8       0
//! 12  key check   8 bytes  sha256("facewatch key check\0" ‖ key)[..8]; zeros in plaintext
//! 20  salt        16 bytes Argon2id salt (mode 2), else zeros
//! 36  m_cost      u32 LE   Argon2id memory in KiB (mode 2), else 0
//! 40  t_cost      u32 LE   Argon2id passes
//! 44  p_cost      u32 LE   Argon2id lanes
//! 48  nonce       24 bytes XChaCha20 nonce, fresh for every write; zeros in plaintext
//! 72  length      u64 LE   payload length
//! 80  payload     modes 1, 2: ciphertext + 16-byte tag, the 80 header bytes as associated data;
//!                 mode 0: content ‖ sha256(header ‖ content) (detects damage, not tampering)
//! ```
//! The content is the [`Watchlist`] encoded with postcard. Version 2 added `generation` and
//! `written_at` (inside the authenticated content; a version 1 file reads as generation 0),
//! version 3 `default_expiry` and `audit` (the audit log's head), version 4 an identity's
//! `suspended`. Version 5 dropped the list's one `model_id`: each descriptor names its model, and a
//! list holds descriptors of several (an older file's descriptors are all of its `model_id`).
//! Version 6 added an identity's `role` (listed or known). A list with a known person on it is
//! written as version 6, so that an older reader refuses it instead of alerting on the people
//! it must never alert on; a list without one is still written as version 5, which older
//! readers open.
//!
//! Keys, passphrases and decrypted bytes are wiped from memory when dropped.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::{Descriptor, Identity, Role, Watchlist, WatchlistError};

/// The first version's magic (and the key check's domain string below): format constants that
/// stay whatever the project is called, so that every list ever written opens.
pub const MAGIC: &[u8; 8] = b"FWATCHL\0";
/// The newest version read and written (lists with a known person on them).
pub const VERSION: u16 = 6;
/// The version of lists without a known person on them.
const VERSION_LISTED_ONLY: u16 = 5;

/// An identity of a version 1 to 3 file (before `suspended`).
#[derive(Deserialize)]
struct IdentityV3 {
    id: String,
    label: String,
    note: Option<String>,
    added_by: String,
    added_at: i64,
    expires_at: Option<i64>,
    descriptors: Vec<Descriptor>,
}

impl From<IdentityV3> for Identity {
    fn from(i: IdentityV3) -> Identity {
        Identity {
            id: i.id,
            label: i.label,
            note: i.note,
            added_by: i.added_by,
            added_at: i.added_at,
            expires_at: i.expires_at,
            descriptors: i.descriptors,
            suspended: false,
            role: Role::Listed,
        }
    }
}

/// An identity of a version 4 or 5 file (before `role`: everyone listed).
#[derive(Deserialize)]
struct IdentityV5 {
    id: String,
    label: String,
    note: Option<String>,
    added_by: String,
    added_at: i64,
    expires_at: Option<i64>,
    descriptors: Vec<Descriptor>,
    suspended: bool,
}

impl From<IdentityV5> for Identity {
    fn from(i: IdentityV5) -> Identity {
        Identity {
            id: i.id,
            label: i.label,
            note: i.note,
            added_by: i.added_by,
            added_at: i.added_at,
            expires_at: i.expires_at,
            descriptors: i.descriptors,
            suspended: i.suspended,
            role: Role::Listed,
        }
    }
}

/// An identity as version 5 writes it: [`IdentityV5`], borrowed from an [`Identity`].
#[derive(Serialize)]
struct IdentityV5Out<'a> {
    id: &'a str,
    label: &'a str,
    note: &'a Option<String>,
    added_by: &'a str,
    added_at: i64,
    expires_at: Option<i64>,
    descriptors: &'a [Descriptor],
    suspended: bool,
}

impl<'a> From<&'a Identity> for IdentityV5Out<'a> {
    fn from(i: &'a Identity) -> Self {
        IdentityV5Out {
            id: &i.id,
            label: &i.label,
            note: &i.note,
            added_by: &i.added_by,
            added_at: i.added_at,
            expires_at: i.expires_at,
            descriptors: &i.descriptors,
            suspended: i.suspended,
        }
    }
}

/// The content of a version 5 file as it is written (of a list without a known person).
#[derive(Serialize)]
struct WatchlistV5Out<'a> {
    created_at: i64,
    identities: Vec<IdentityV5Out<'a>>,
    generation: u64,
    written_at: i64,
    default_expiry: Option<u64>,
    audit: Option<crate::engine::audit::Head>,
}

/// The content of a version 5 file as it is read.
#[derive(Deserialize)]
struct WatchlistV5 {
    created_at: i64,
    identities: Vec<IdentityV5>,
    generation: u64,
    written_at: i64,
    default_expiry: Option<u64>,
    audit: Option<crate::engine::audit::Head>,
}

fn upgrade<I: Into<Identity>>(identities: Vec<I>) -> Vec<Identity> {
    identities.into_iter().map(Into::into).collect()
}

/// The content of a version 1 file.
#[derive(Deserialize)]
struct WatchlistV1 {
    model_id: String,
    created_at: i64,
    identities: Vec<IdentityV3>,
}

/// The content of a version 2 file.
#[derive(Deserialize)]
struct WatchlistV2 {
    model_id: String,
    created_at: i64,
    identities: Vec<IdentityV3>,
    generation: u64,
    written_at: i64,
}

/// The content of a version 3 file.
#[derive(Deserialize)]
struct WatchlistV3 {
    model_id: String,
    created_at: i64,
    identities: Vec<IdentityV3>,
    generation: u64,
    written_at: i64,
    default_expiry: Option<u64>,
    audit: Option<crate::engine::audit::Head>,
}

/// The content of a version 4 file (the last with one model for the whole list).
#[derive(Deserialize)]
struct WatchlistV4 {
    model_id: String,
    created_at: i64,
    identities: Vec<IdentityV5>,
    generation: u64,
    written_at: i64,
    default_expiry: Option<u64>,
    audit: Option<crate::engine::audit::Head>,
}

/// Checks that every descriptor of a version 1 to 4 file comes from the one model it was for.
fn one_model(model_id: &str, identities: &[Identity]) -> Result<(), String> {
    for i in identities {
        if let Some(d) = i.descriptors.iter().find(|d| d.model_id != model_id) {
            return Err(format!(
                "identity {} has a descriptor from model {}, the list is for {model_id}",
                i.id, d.model_id
            ));
        }
    }
    Ok(())
}
pub const HEADER_LEN: usize = 80;
const TAG_LEN: usize = 16;

/// Argon2id cost for passphrase-protected lists: 64 MiB, 3 passes, 1 lane.
pub const ARGON2_M_KIB: u32 = 64 * 1024;
pub const ARGON2_T: u32 = 3;
pub const ARGON2_P: u32 = 1;

/// How a list is (to be) protected. Wiped from memory when dropped; not `Clone`, so that the key
/// exists once.
pub enum Secret {
    /// A 32-byte key (key file or `FACEVEIL_KEY`).
    Key([u8; 32]),
    /// A passphrase; the key is derived with Argon2id and the salt in the header.
    Passphrase(String),
    /// No encryption. Only with an explicit flag.
    Plaintext,
}

impl Drop for Secret {
    fn drop(&mut self) {
        match self {
            Secret::Key(k) => k.zeroize(),
            Secret::Passphrase(p) => p.zeroize(),
            Secret::Plaintext => {}
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Secret::Key(_) => "Secret::Key(…)",
            Secret::Passphrase(_) => "Secret::Passphrase(…)",
            Secret::Plaintext => "Secret::Plaintext",
        })
    }
}

fn key_check(key: &[u8; 32]) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(b"facewatch key check\0");
    h.update(key);
    h.finalize()[..8].try_into().expect("8 bytes")
}

/// Whether a list file that starts with `header` is encrypted under `key` (mode 1, and its key
/// check is this key's): what decides whether a leftover pending key may be removed.
pub fn is_under_key(header: &[u8], key: &[u8; 32]) -> bool {
    header.len() >= HEADER_LEN
        && &header[..8] == MAGIC
        && header[10] == 1
        && header[12..20] == key_check(key)
}

fn random<const N: usize>() -> Result<[u8; N], WatchlistError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| WatchlistError::Random(e.to_string()))?;
    Ok(b)
}

pub fn random_key() -> Result<[u8; 32], WatchlistError> {
    random::<32>()
}

/// Argon2id costs a reader accepts from a header (read before the file is authenticated, so an
/// edited header must not make the reader allocate or spin without bound).
const ARGON2_MAX_M_KIB: u32 = 1024 * 1024;
const ARGON2_MAX_T: u32 = 16;
const ARGON2_MAX_P: u32 = 8;

fn derive(pass: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Result<Zeroizing<[u8; 32]>, String> {
    if m > ARGON2_MAX_M_KIB || t > ARGON2_MAX_T || p > ARGON2_MAX_P {
        return Err(format!(
            "Argon2 costs m={m} KiB t={t} p={p} exceed the accepted limits"
        ));
    }
    let params = argon2::Params::new(m, t, p, Some(32)).map_err(|e| e.to_string())?;
    let mut key = Zeroizing::new([0u8; 32]);
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(pass.as_bytes(), salt, key.as_mut())
        .map_err(|e| e.to_string())?;
    Ok(key)
}

/// Encodes and (unless plaintext) encrypts a list: as version 6 when a known person is on it,
/// else as version 5 (see the module notes). Every call uses a fresh nonce (and salt).
pub fn encode(list: &Watchlist, secret: &Secret) -> Result<Vec<u8>, WatchlistError> {
    let cannot = |e: postcard::Error| WatchlistError::Corrupt {
        path: Default::default(),
        reason: format!("cannot encode: {e}"),
    };
    if list.has_known() {
        let content = Zeroizing::new(postcard::to_stdvec(list).map_err(cannot)?);
        return seal(VERSION, &content, secret);
    }
    let v5 = WatchlistV5Out {
        created_at: list.created_at,
        identities: list.identities.iter().map(IdentityV5Out::from).collect(),
        generation: list.generation,
        written_at: list.written_at,
        default_expiry: list.default_expiry,
        audit: list.audit,
    };
    let content = Zeroizing::new(postcard::to_stdvec(&v5).map_err(cannot)?);
    seal(VERSION_LISTED_ONLY, &content, secret)
}

/// The file for encoded `content` under format `version`.
fn seal(version: u16, content: &[u8], secret: &Secret) -> Result<Vec<u8>, WatchlistError> {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    header[8..10].copy_from_slice(&version.to_le_bytes());
    let key = match secret {
        Secret::Plaintext => None,
        Secret::Key(k) => {
            header[10] = 1;
            Some(Zeroizing::new(*k))
        }
        Secret::Passphrase(p) => {
            header[10] = 2;
            let salt = random::<16>()?;
            header[20..36].copy_from_slice(&salt);
            header[36..40].copy_from_slice(&ARGON2_M_KIB.to_le_bytes());
            header[40..44].copy_from_slice(&ARGON2_T.to_le_bytes());
            header[44..48].copy_from_slice(&ARGON2_P.to_le_bytes());
            let k = derive(p, &salt, ARGON2_M_KIB, ARGON2_T, ARGON2_P).map_err(|reason| {
                WatchlistError::BadKey {
                    source: "passphrase".into(),
                    reason,
                }
            })?;
            Some(k)
        }
    };
    let payload = match key {
        None => {
            let mut h = Sha256::new();
            let len = (content.len() + 32) as u64;
            header[72..80].copy_from_slice(&len.to_le_bytes());
            h.update(header);
            h.update(content);
            let mut p = content.to_vec();
            p.extend_from_slice(&h.finalize());
            p
        }
        Some(k) => {
            header[12..20].copy_from_slice(&key_check(&k));
            let k: &[u8; 32] = &k;
            let nonce = random::<24>()?;
            header[48..72].copy_from_slice(&nonce);
            header[72..80].copy_from_slice(&((content.len() + TAG_LEN) as u64).to_le_bytes());
            XChaCha20Poly1305::new(k.into())
                .encrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: content,
                        aad: &header,
                    },
                )
                .map_err(|_| WatchlistError::Random("encryption failed".into()))?
        }
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Checks, decrypts and decodes a list read from `path` (only used in messages).
pub fn decode(bytes: &[u8], secret: &Secret, path: &Path) -> Result<Watchlist, WatchlistError> {
    let p = || path.to_path_buf();
    if bytes.len() >= 8 && &bytes[..8] != MAGIC {
        return Err(WatchlistError::NotAWatchlist { path: p() });
    }
    if bytes.len() < HEADER_LEN {
        return Err(if bytes.len() < 8 {
            WatchlistError::NotAWatchlist { path: p() }
        } else {
            WatchlistError::Truncated { path: p() }
        });
    }
    let header: [u8; HEADER_LEN] = bytes[..HEADER_LEN].try_into().expect("header");
    let version = u16::from_le_bytes([header[8], header[9]]);
    if version > VERSION {
        return Err(WatchlistError::FutureVersion { path: p(), version });
    }
    if version == 0 || header[11] != 0 {
        return Err(WatchlistError::Corrupt {
            path: p(),
            reason: "bad header".into(),
        });
    }
    let len = u64::from_le_bytes(header[72..80].try_into().expect("8 bytes"));
    let body = &bytes[HEADER_LEN..];
    if (body.len() as u64) < len {
        return Err(WatchlistError::Truncated { path: p() });
    }
    if body.len() as u64 != len {
        return Err(WatchlistError::Corrupt {
            path: p(),
            reason: "bytes after the end".into(),
        });
    }
    let u32_at = |o: usize| u32::from_le_bytes(header[o..o + 4].try_into().expect("4 bytes"));
    let content = match (header[10], secret) {
        (0, Secret::Plaintext) => {
            if body.len() < 32 {
                return Err(WatchlistError::Truncated { path: p() });
            }
            let (content, sum) = body.split_at(body.len() - 32);
            let mut h = Sha256::new();
            h.update(header);
            h.update(content);
            if h.finalize().as_slice() != sum {
                return Err(WatchlistError::Corrupt {
                    path: p(),
                    reason: "checksum mismatch".into(),
                });
            }
            Zeroizing::new(content.to_vec())
        }
        (0, _) => {
            return Err(WatchlistError::Mode {
                path: p(),
                reason:
                    "the list is not encrypted; open it only with the explicit plaintext option"
                        .into(),
            });
        }
        (1 | 2, Secret::Plaintext) => {
            return Err(WatchlistError::Mode {
                path: p(),
                reason: "the list is encrypted: give its key file, FACEVEIL_KEY or passphrase"
                    .into(),
            });
        }
        (1, Secret::Passphrase(_)) | (2, Secret::Key(_)) => {
            return Err(WatchlistError::Mode {
                path: p(),
                reason: if header[10] == 1 {
                    "the list is protected by a key file, not a passphrase".into()
                } else {
                    "the list is protected by a passphrase, not a key file".into()
                },
            });
        }
        (mode @ (1 | 2), secret) => {
            let key = match secret {
                Secret::Key(k) => Zeroizing::new(*k),
                Secret::Passphrase(pass) => {
                    derive(pass, &header[20..36], u32_at(36), u32_at(40), u32_at(44)).map_err(
                        |reason| WatchlistError::Corrupt {
                            path: p(),
                            reason: format!("argon2 parameters: {reason}"),
                        },
                    )?
                }
                Secret::Plaintext => unreachable!("handled above"),
            };
            let _ = mode;
            if key_check(&key) != header[12..20] {
                return Err(WatchlistError::WrongKey { path: p() });
            }
            let key: &[u8; 32] = &key;
            XChaCha20Poly1305::new(key.into())
                .decrypt(
                    XNonce::from_slice(&header[48..72]),
                    Payload {
                        msg: body,
                        aad: &header,
                    },
                )
                .map(Zeroizing::new)
                .map_err(|_| WatchlistError::Tampered { path: p() })?
        }
        (m, _) => {
            return Err(WatchlistError::Corrupt {
                path: p(),
                reason: format!("unknown mode {m}"),
            });
        }
    };
    let corrupt = |e: postcard::Error| WatchlistError::Corrupt {
        path: p(),
        reason: e.to_string(),
    };
    // (the model the older formats were for, the list)
    let (model, list): (Option<String>, Watchlist) = match version {
        1 => {
            let v1: WatchlistV1 = postcard::from_bytes(&content).map_err(corrupt)?;
            let list = Watchlist {
                created_at: v1.created_at,
                identities: upgrade(v1.identities),
                ..Watchlist::default()
            };
            (Some(v1.model_id), list)
        }
        2 => {
            let v2: WatchlistV2 = postcard::from_bytes(&content).map_err(corrupt)?;
            let list = Watchlist {
                created_at: v2.created_at,
                identities: upgrade(v2.identities),
                generation: v2.generation,
                written_at: v2.written_at,
                ..Watchlist::default()
            };
            (Some(v2.model_id), list)
        }
        3 => {
            let v3: WatchlistV3 = postcard::from_bytes(&content).map_err(corrupt)?;
            let list = Watchlist {
                created_at: v3.created_at,
                identities: upgrade(v3.identities),
                generation: v3.generation,
                written_at: v3.written_at,
                default_expiry: v3.default_expiry,
                audit: v3.audit,
            };
            (Some(v3.model_id), list)
        }
        4 => {
            let v4: WatchlistV4 = postcard::from_bytes(&content).map_err(corrupt)?;
            let list = Watchlist {
                created_at: v4.created_at,
                identities: upgrade(v4.identities),
                generation: v4.generation,
                written_at: v4.written_at,
                default_expiry: v4.default_expiry,
                audit: v4.audit,
            };
            (Some(v4.model_id), list)
        }
        5 => {
            let v5: WatchlistV5 = postcard::from_bytes(&content).map_err(corrupt)?;
            let list = Watchlist {
                created_at: v5.created_at,
                identities: upgrade(v5.identities),
                generation: v5.generation,
                written_at: v5.written_at,
                default_expiry: v5.default_expiry,
                audit: v5.audit,
            };
            (None, list)
        }
        _ => (None, postcard::from_bytes(&content).map_err(corrupt)?),
    };
    if let Some(model) = model {
        one_model(&model, &list.identities)
            .map_err(|reason| WatchlistError::Corrupt { path: p(), reason })?;
    }
    list.check_models()
        .map_err(|reason| WatchlistError::Corrupt { path: p(), reason })?;
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "dlib_resnet:0011223344556677";

    fn sample() -> Watchlist {
        let mut w = Watchlist::new();
        w.identities.push(Identity {
            id: "id-1".into(),
            label: "alice".into(),
            note: Some("banned".into()),
            added_by: "ops".into(),
            added_at: 100,
            expires_at: None,
            suspended: false,
            role: Role::Listed,
            descriptors: vec![Descriptor {
                model_id: MODEL.into(),
                vector: vec![0.5; 128],
            }],
        });
        w
    }

    fn dec(b: &[u8], s: &Secret) -> Result<Watchlist, WatchlistError> {
        decode(b, s, Path::new("w.fvl"))
    }

    #[test]
    fn is_under_key_tells_the_lists_key_from_others() {
        let w = sample();
        let b = encode(&w, &Secret::Key([7u8; 32])).unwrap();
        assert!(is_under_key(&b[..HEADER_LEN], &[7u8; 32]));
        assert!(!is_under_key(&b[..HEADER_LEN], &[8u8; 32]));
        assert!(!is_under_key(&b[..40], &[7u8; 32]), "a short header");
        let p = encode(&w, &Secret::Plaintext).unwrap();
        assert!(
            !is_under_key(&p, &[0u8; 32]),
            "a plaintext list is under no key"
        );
    }

    #[test]
    fn roundtrip_every_mode() {
        let w = sample();
        let key = Secret::Key([7u8; 32]);
        assert_eq!(dec(&encode(&w, &key).unwrap(), &key).unwrap(), w);
        assert_eq!(
            dec(&encode(&w, &Secret::Plaintext).unwrap(), &Secret::Plaintext).unwrap(),
            w
        );
    }

    #[test]
    fn passphrase_roundtrip_and_wrong_passphrase() {
        let w = sample();
        let s = Secret::Passphrase("correct horse".into());
        let b = encode(&w, &s).unwrap();
        assert_eq!(dec(&b, &s).unwrap(), w);
        assert!(matches!(
            dec(&b, &Secret::Passphrase("wrong".into())),
            Err(WatchlistError::WrongKey { .. })
        ));
    }

    #[test]
    fn encryption_hides_content_and_nonces_differ() {
        let w = sample();
        let key = Secret::Key([1u8; 32]);
        let (a, b) = (encode(&w, &key).unwrap(), encode(&w, &key).unwrap());
        assert_ne!(a, b);
        assert!(!a.windows(5).any(|x| x == b"alice"));
        assert!(!a.windows(6).any(|x| x == b"banned"));
    }

    #[test]
    fn each_failure_is_distinct() {
        let w = sample();
        let key = Secret::Key([9u8; 32]);
        let good = encode(&w, &key).unwrap();
        let mut tampered = good.clone();
        let last = tampered.len() - 20;
        tampered[last] ^= 1;
        assert!(matches!(
            dec(&tampered, &key),
            Err(WatchlistError::Tampered { .. })
        ));
        let mut header_tampered = good.clone();
        header_tampered[30] ^= 1; // salt bytes are authenticated too
        assert!(matches!(
            dec(&header_tampered, &key),
            Err(WatchlistError::Tampered { .. })
        ));
        assert!(matches!(
            dec(&good[..good.len() - 1], &key),
            Err(WatchlistError::Truncated { .. })
        ));
        assert!(matches!(
            dec(&good[..40], &key),
            Err(WatchlistError::Truncated { .. })
        ));
        assert!(matches!(
            dec(&good, &Secret::Key([8u8; 32])),
            Err(WatchlistError::WrongKey { .. })
        ));
        let mut future = good.clone();
        future[8] = 7;
        assert!(matches!(
            dec(&future, &key),
            Err(WatchlistError::FutureVersion { version: 7, .. })
        ));
        assert!(matches!(
            dec(b"hello world, not a list", &key),
            Err(WatchlistError::NotAWatchlist { .. })
        ));
        assert!(matches!(
            dec(&good, &Secret::Plaintext),
            Err(WatchlistError::Mode { .. })
        ));
        let plain = encode(&w, &Secret::Plaintext).unwrap();
        assert!(matches!(
            dec(&plain, &key),
            Err(WatchlistError::Mode { .. })
        ));
        let mut damaged = plain.clone();
        damaged[HEADER_LEN + 3] ^= 1;
        assert!(matches!(
            dec(&damaged, &Secret::Plaintext),
            Err(WatchlistError::Corrupt { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = dec(&bytes, &Secret::Key([3u8; 32]));
            let _ = dec(&bytes, &Secret::Plaintext);
        }

        #[test]
        fn valid_header_with_random_body_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..300), mode in 0u8..4) {
            let mut b = encode(&sample(), &Secret::Plaintext).unwrap()[..HEADER_LEN].to_vec();
            b[10] = mode;
            b[72..80].copy_from_slice(&(body.len() as u64).to_le_bytes());
            b.extend_from_slice(&body);
            // Plaintext mode with random content exercises the postcard decoder on junk.
            let _ = dec(&b, &Secret::Plaintext);
            let _ = dec(&b, &Secret::Key([3u8; 32]));
        }

        #[test]
        fn plaintext_with_valid_checksum_and_junk_content_never_panics(content in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut header = encode(&sample(), &Secret::Plaintext).unwrap()[..HEADER_LEN].to_vec();
            header[72..80].copy_from_slice(&((content.len() + 32) as u64).to_le_bytes());
            let mut h = Sha256::new();
            h.update(&header);
            h.update(&content);
            let mut b = header;
            b.extend_from_slice(&content);
            b.extend_from_slice(&h.finalize());
            let _ = dec(&b, &Secret::Plaintext);
        }
    }

    /// An identity as versions 1 to 3 wrote it (no `suspended`).
    #[derive(serde::Serialize)]
    struct OldIdentity<'a> {
        id: &'a str,
        label: &'a str,
        note: &'a Option<String>,
        added_by: &'a str,
        added_at: i64,
        expires_at: Option<i64>,
        descriptors: &'a [Descriptor],
    }

    fn old_identities(w: &Watchlist) -> Vec<OldIdentity<'_>> {
        (w.identities.iter())
            .map(|i| OldIdentity {
                id: &i.id,
                label: &i.label,
                note: &i.note,
                added_by: &i.added_by,
                added_at: i.added_at,
                expires_at: i.expires_at,
                descriptors: &i.descriptors,
            })
            .collect()
    }

    /// [`sample`] with a second identity (an old file's identities must not run into each other).
    fn sample2() -> Watchlist {
        let mut w = sample();
        let mut bob = w.identities[0].clone();
        (bob.id, bob.label, bob.note, bob.expires_at) =
            ("id-2".into(), "bob".into(), None, Some(9));
        bob.descriptors[0].vector = vec![-0.25; 128];
        w.identities.push(bob);
        w
    }

    #[test]
    fn older_versions_still_read() {
        #[derive(serde::Serialize)]
        struct V1<'a> {
            model_id: &'a str,
            created_at: i64,
            identities: Vec<OldIdentity<'a>>,
        }
        let w = sample2();
        let content = postcard::to_stdvec(&V1 {
            model_id: MODEL,
            created_at: w.created_at,
            identities: old_identities(&w),
        })
        .unwrap();
        let key = Secret::Key([3u8; 32]);
        let old = seal(1, &content, &key).unwrap();
        assert_eq!(u16::from_le_bytes([old[8], old[9]]), 1);
        let read = decode(&old, &key, Path::new("old.fvl")).unwrap();
        assert_eq!(read.identities, w.identities);
        assert_eq!((read.generation, read.written_at), (0, 0));
        // a version 2 file keeps its generation
        #[derive(serde::Serialize)]
        struct V2<'a> {
            model_id: &'a str,
            created_at: i64,
            identities: Vec<OldIdentity<'a>>,
            generation: u64,
            written_at: i64,
        }
        let content = postcard::to_stdvec(&V2 {
            model_id: MODEL,
            created_at: w.created_at,
            identities: old_identities(&w),
            generation: 7,
            written_at: 1234,
        })
        .unwrap();
        let v2 = decode(&seal(2, &content, &key).unwrap(), &key, Path::new("v2.fvl")).unwrap();
        assert_eq!(
            (v2.generation, v2.written_at, v2.created_at),
            (7, 1234, w.created_at)
        );
        assert_eq!((v2.default_expiry, v2.audit), (None, None));
        assert_eq!(v2.identities, w.identities);
        // a version 3 file keeps retention and the audit head; its people are not suspended
        let mut w3 = sample2();
        w3.generation = 7;
        w3.default_expiry = Some(86400 * 30);
        w3.audit = Some(crate::engine::audit::Head {
            seq: 12,
            hash: [9; 32],
        });
        #[derive(serde::Serialize)]
        struct V3<'a> {
            model_id: &'a str,
            created_at: i64,
            identities: Vec<OldIdentity<'a>>,
            generation: u64,
            written_at: i64,
            default_expiry: Option<u64>,
            audit: Option<crate::engine::audit::Head>,
        }
        let content = postcard::to_stdvec(&V3 {
            model_id: MODEL,
            created_at: w3.created_at,
            identities: old_identities(&w3),
            generation: w3.generation,
            written_at: w3.written_at,
            default_expiry: w3.default_expiry,
            audit: w3.audit,
        })
        .unwrap();
        let v3 = decode(&seal(3, &content, &key).unwrap(), &key, Path::new("v3.fvl")).unwrap();
        assert_eq!(v3, w3);
        assert!(v3.identities.iter().all(|i| !i.suspended));
        // a version 4 file keeps who is suspended
        let mut w4 = w3.clone();
        w4.identities[1].suspended = true;
        #[derive(serde::Serialize)]
        struct V4<'a> {
            model_id: &'a str,
            created_at: i64,
            identities: Vec<IdentityV5Out<'a>>,
            generation: u64,
            written_at: i64,
            default_expiry: Option<u64>,
            audit: Option<crate::engine::audit::Head>,
        }
        let v4 = |model_id: &str, w: &Watchlist| {
            let content = postcard::to_stdvec(&V4 {
                model_id,
                created_at: w.created_at,
                identities: w.identities.iter().map(IdentityV5Out::from).collect(),
                generation: w.generation,
                written_at: w.written_at,
                default_expiry: w.default_expiry,
                audit: w.audit,
            })
            .unwrap();
            seal(4, &content, &key).unwrap()
        };
        let read = decode(&v4(MODEL, &w4), &key, Path::new("v4.fvl")).unwrap();
        assert_eq!(read, w4);
        assert!(!read.identities[0].suspended && read.identities[1].suspended);
        assert_eq!(read.models(), [MODEL], "its one model is the one it covers");
        // a descriptor of another model than an old file's own is damage
        let e = decode(&v4("other:1", &w4), &key, Path::new("v4.fvl")).unwrap_err();
        assert!(
            matches!(&e, WatchlistError::Corrupt { reason, .. } if reason.contains("other:1")),
            "{e}"
        );
        // version 5 holds descriptors of several models
        let mut w5 = w4.clone();
        w5.identities[0].descriptors.push(Descriptor {
            model_id: "sface:0123".into(),
            vector: vec![0.25; 512],
        });
        let new = encode(&w5, &key).unwrap();
        assert_eq!(u16::from_le_bytes([new[8], new[9]]), 5);
        let read = decode(&new, &key, Path::new("new.fvl")).unwrap();
        assert_eq!(read, w5);
        assert_eq!(read.models(), [MODEL, "sface:0123"]);
        assert!(read.identities.iter().all(|i| i.role == Role::Listed));
    }

    fn version(file: &[u8]) -> u16 {
        u16::from_le_bytes([file[8], file[9]])
    }

    #[test]
    fn a_list_with_a_known_person_is_version_6_and_older_readers_refuse_it() {
        let key = Secret::Key([5u8; 32]);
        let mut w = sample2();
        w.identities[1].role = Role::Known;
        let file = encode(&w, &key).unwrap();
        assert_eq!(version(&file), 6);
        let read = dec(&file, &key).unwrap();
        assert_eq!(read, w);
        assert_eq!(
            (read.identities[0].role, read.identities[1].role),
            (Role::Listed, Role::Known)
        );
        // Readers of versions up to 5 refuse a file of a higher version as newer (as this one
        // does 7, each_failure_is_distinct): never read as a list where the known person is
        // listed.
        // the known person gone (or listed again): version 5 again, which older readers open
        w.identities[1].role = Role::Listed;
        let file = encode(&w, &key).unwrap();
        assert_eq!(version(&file), 5);
        assert_eq!(dec(&file, &key).unwrap(), w);
        // every mode
        w.identities[0].role = Role::Known;
        let plain = encode(&w, &Secret::Plaintext).unwrap();
        assert_eq!(version(&plain), 6);
        assert_eq!(dec(&plain, &Secret::Plaintext).unwrap(), w);
    }
}
