//! Object storage for photo bytes.
//!
//! Photos live outside the database; rows only hold an [`ObjectKey`]. Two
//! backends exist: [`LocalStore`] (a directory, for development and
//! single-node deployments) and [`S3Store`] (any S3-compatible service, for
//! production). Both are used through the [`PhotoStore`] trait so handlers
//! never know which one is configured.

mod local;
mod s3;

pub use self::local::LocalStore;
pub use self::s3::{S3Config, S3Store};

use std::fmt;

use bytes::Bytes;
use thiserror::Error;
use uuid::Uuid;

/// Upper bound on key length. S3 allows 1024 bytes, but local filesystems
/// cap a path near 4096 bytes and we join keys onto a configurable root, so
/// staying well below both keeps every backend able to store every key.
const MAX_KEY_LEN: usize = 512;

/// A storage key that has been checked to be safe on every backend.
///
/// The validation is what makes it impossible for a key to escape the
/// [`LocalStore`] root: only plain relative segments of `[A-Za-z0-9._-]` are
/// accepted, never `.`/`..`, separators other than `/`, or empty segments.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

/// Why a string was rejected as an [`ObjectKey`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidKey {
    #[error("object key is empty")]
    Empty,
    #[error("object key is {0} bytes long; at most {MAX_KEY_LEN} are allowed")]
    TooLong(usize),
    #[error("object key must be relative (no leading '/')")]
    Absolute,
    #[error("object key has an empty segment ('//' or a trailing '/')")]
    EmptySegment,
    #[error("object key has a '.' or '..' segment")]
    DotSegment,
    #[error(
        "object key contains the forbidden character {0:?}; only A-Z a-z 0-9 . _ - and '/' are allowed"
    )]
    ForbiddenChar(char),
}

impl ObjectKey {
    pub fn parse(raw: &str) -> Result<Self, InvalidKey> {
        if raw.is_empty() {
            return Err(InvalidKey::Empty);
        }
        if raw.len() > MAX_KEY_LEN {
            return Err(InvalidKey::TooLong(raw.len()));
        }
        if raw.starts_with('/') {
            return Err(InvalidKey::Absolute);
        }
        for segment in raw.split('/') {
            if segment.is_empty() {
                return Err(InvalidKey::EmptySegment);
            }
            if segment == "." || segment == ".." {
                return Err(InvalidKey::DotSegment);
            }
            // Backslash, NUL and non-ASCII all land here: the allow-list is
            // deliberately narrow so no platform or S3 server interprets a
            // key differently from us (Unicode normalisation, `\` as a
            // separator on Windows, C-string truncation at NUL).
            if let Some(bad) = segment.chars().find(|c| !is_segment_char(*c)) {
                return Err(InvalidKey::ForbiddenChar(bad));
            }
        }
        Ok(Self(raw.to_owned()))
    }

    /// Key for one rendition (`"original"`, `"display"`, `"thumb"`, …) of a
    /// photo: `photos/<first byte of id as hex>/<id>/<variant>.jpg`.
    ///
    /// The two-hex-digit fan-out keeps any single directory of a
    /// [`LocalStore`] small and spreads S3 keys across prefixes.
    pub fn for_photo(id: Uuid, variant: &str) -> Result<Self, InvalidKey> {
        // Checked on its own so a variant cannot smuggle in extra segments
        // that would still pass whole-key validation (e.g. "a/b").
        if variant.is_empty() {
            return Err(InvalidKey::EmptySegment);
        }
        if let Some(bad) = variant.chars().find(|c| !is_segment_char(*c)) {
            return Err(InvalidKey::ForbiddenChar(bad));
        }
        let fan_out = id.as_bytes()[0];
        Self::parse(&format!("photos/{fan_out:02x}/{id}/{variant}.jpg"))
    }

    /// A unique key under a reserved prefix, for readiness probes that must
    /// write something without touching real photos.
    fn probe() -> Self {
        // Built directly: the format is fixed and covered by a test, so
        // there is no runtime failure to handle.
        Self(format!(".probe/{}", Uuid::new_v4().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("object storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Already redacted: never carries credentials, request URLs or raw
    /// response bodies (see `s3::describe`).
    #[error("object storage error: {0}")]
    Backend(String),
}

#[async_trait::async_trait]
pub trait PhotoStore: Send + Sync + 'static {
    /// Stores `bytes` under `key`, replacing any existing object. Readers
    /// see either the old object or the complete new one, never a prefix.
    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), StoreError>;
    /// `Ok(None)` when there is no object under `key`.
    async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>, StoreError>;
    /// Idempotent: deleting a missing object succeeds.
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError>;
    /// Readiness probe: the storage is reachable and usable.
    async fn check(&self) -> Result<(), StoreError>;
    /// Backend name for logs: `"local"` or `"s3"`.
    fn kind(&self) -> &'static str;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_keys() {
        for raw in [
            "a",
            "photos/2026/11/28/0b9e5c1e-4a0f-4b8e-9a57-3f1b2c8d9e10/display.jpg",
            "photos/ab/x_y-z.tar.gz",
            ".probe/abc",
            "...",
            "a/...b/c",
            "UPPER/lower/0123",
        ] {
            assert_eq!(
                ObjectKey::parse(raw).map(|k| k.to_string()),
                Ok(raw.to_owned()),
                "{raw}"
            );
        }
    }

    #[test]
    fn rejects_unsafe_keys() {
        let long = "a".repeat(MAX_KEY_LEN + 1);
        let cases: &[(&str, InvalidKey)] = &[
            ("", InvalidKey::Empty),
            (&long, InvalidKey::TooLong(MAX_KEY_LEN + 1)),
            ("/abs", InvalidKey::Absolute),
            ("/", InvalidKey::Absolute),
            ("../etc/passwd", InvalidKey::DotSegment),
            ("a/../../etc/passwd", InvalidKey::DotSegment),
            ("a/./b", InvalidKey::DotSegment),
            (".", InvalidKey::DotSegment),
            ("..", InvalidKey::DotSegment),
            ("a//b", InvalidKey::EmptySegment),
            ("a/", InvalidKey::EmptySegment),
            ("a\\b", InvalidKey::ForbiddenChar('\\')),
            ("..\\..\\windows", InvalidKey::ForbiddenChar('\\')),
            ("a\0b", InvalidKey::ForbiddenChar('\0')),
            ("photos/é.jpg", InvalidKey::ForbiddenChar('é')),
            ("照片/1.jpg", InvalidKey::ForbiddenChar('照')),
            ("a b", InvalidKey::ForbiddenChar(' ')),
            ("a:b", InvalidKey::ForbiddenChar(':')),
            ("a%2e%2e/b", InvalidKey::ForbiddenChar('%')),
        ];
        for (raw, expected) in cases {
            assert_eq!(ObjectKey::parse(raw).as_ref(), Err(expected), "{raw:?}");
        }
    }

    #[test]
    fn max_length_key_is_accepted() {
        assert!(ObjectKey::parse(&"a".repeat(MAX_KEY_LEN)).is_ok());
    }

    #[test]
    fn photo_keys_fan_out_by_first_id_byte() {
        let id = Uuid::parse_str("0b9e5c1e-4a0f-4b8e-9a57-3f1b2c8d9e10").expect("literal uuid");
        let key = ObjectKey::for_photo(id, "display").expect("valid variant");
        assert_eq!(
            key.as_str(),
            "photos/0b/0b9e5c1e-4a0f-4b8e-9a57-3f1b2c8d9e10/display.jpg"
        );
        assert_eq!(
            ObjectKey::for_photo(id, "../x"),
            Err(InvalidKey::ForbiddenChar('/'))
        );
        assert_eq!(
            ObjectKey::for_photo(id, "a/b"),
            Err(InvalidKey::ForbiddenChar('/'))
        );
        assert_eq!(ObjectKey::for_photo(id, ""), Err(InvalidKey::EmptySegment));
    }

    #[test]
    fn probe_keys_are_valid_and_unique() {
        let a = ObjectKey::probe();
        let b = ObjectKey::probe();
        assert_ne!(a, b);
        assert_eq!(ObjectKey::parse(a.as_str()), Ok(a));
    }
}
