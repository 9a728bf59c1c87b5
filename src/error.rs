//! One error type for the library: every variant names what failed (file, attribute,
//! frame) so the CLI and, later, the viewport can show a single clear line.

use std::path::PathBuf;

/// Library result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with the context a reader needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read from disk.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a DICOM data set we can parse.
    #[error("{path}: not a readable DICOM file: {reason}")]
    NotDicom { path: PathBuf, reason: String },
    /// A required attribute is absent.
    #[error("{path}: missing {attribute}")]
    Missing {
        path: PathBuf,
        attribute: &'static str,
    },
    /// An attribute is present but its value cannot be used.
    #[error("{path}: invalid {attribute}: {reason}")]
    Invalid {
        path: PathBuf,
        attribute: &'static str,
        reason: String,
    },
    /// Pixel data could not be decoded.
    #[error("{path}: frame {frame}: cannot decode {syntax}: {reason}")]
    Decode {
        path: PathBuf,
        frame: u32,
        syntax: String,
        reason: String,
    },
    /// A valid file that uses something Lightbox does not support (yet).
    #[error("{path}: unsupported: {what}")]
    Unsupported { path: PathBuf, what: String },
    /// A series or volume that cannot be assembled.
    #[error("{0}")]
    Series(String),
    /// A user-supplied option that makes no sense for this image.
    #[error("{0}")]
    Usage(String),
    /// A network operation with a peer failed: who, and what kind of failure.
    #[error("{peer}: {kind}")]
    Network { peer: String, kind: NetFailure },
    /// The local cache's SQLite index failed.
    #[error("cache index: {context}: {source}")]
    Index {
        context: String,
        #[source]
        source: rusqlite::Error,
    },
    /// The cache's index cannot be trusted (SQLite found it malformed, or it is
    /// not a database): nothing is written to it.
    #[error(
        "{path}: the cache index is damaged ({reason}); nothing was written to it. \
         `lightbox cache rebuild` sets it aside and rebuilds the index from the stored files"
    )]
    IndexDamaged { path: PathBuf, reason: String },
    /// The cache's file system is full.
    #[error(
        "{path}: no space left on device while {what}; nothing was half-stored: \
         free space and run it again"
    )]
    CacheFull { path: PathBuf, what: String },
    /// The cache folder cannot be written (a read-only file system or folder).
    #[error("{path}: the cache cannot be written ({reason}); nothing was changed")]
    CacheReadOnly { path: PathBuf, reason: String },
    /// The GPU could not do what was asked (adapter, device, shader, readback).
    #[error("GPU: {0}")]
    Gpu(String),
    /// A hanging protocol or annotation layout file is invalid.
    #[error("{name}: {reason}")]
    Protocol { name: String, reason: String },
    /// Writing an output file failed.
    #[error("{path}: cannot write: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// What kind of network failure, so callers (exit codes, the PACS tab, retries) can
/// tell a refused connection from a rejected association or a failed operation.
#[derive(Debug, thiserror::Error)]
pub enum NetFailure {
    /// TCP connection refused, unreachable, or name resolution failed.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The peer rejected the association (called/calling AE, contexts).
    #[error("association rejected: {0}")]
    Rejected(String),
    /// The peer aborted, closed or stopped answering.
    #[error("{0}")]
    Aborted(String),
    /// No answer within the configured time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The peer answered, but the operation failed (a DIMSE status, a bad answer).
    #[error("{0}")]
    Operation(String),
    /// Something on our side (a local SCP that cannot start, a worker that failed).
    #[error("{0}")]
    Local(String),
    /// The TLS handshake failed: the reason (expired, unknown issuer, name
    /// mismatch, plaintext on a TLS port, protocol version).
    #[error("TLS: {0}")]
    Tls(String),
}
