//! DICOM networking on `dicom-ul`: a small DIMSE layer of our own ([`dimse`]), the
//! Storage SCP that receives C-STORE (and answers C-ECHO) into the local cache
//! ([`scp`]), and the receiving side shared by the SCP and C-GET ([`inbound`]);
//! the SCU side: associations and C-ECHO ([`scu`]), C-FIND ([`find`]), C-MOVE and
//! C-GET into the cache ([`retrieve`]), C-STORE to a node ([`send`]); any of
//! them over TLS ([`tls`]). Every socket has TCP_NODELAY (Nagle plus
//! delayed ACKs costs 20–30× on loopback). Failures are [`Error::Network`]: the
//! peer, and what kind of failure ([`NetFailure`]).

pub mod dicomweb;
pub mod dimse;
pub mod find;
pub mod inbound;
pub mod retrieve;
pub mod scp;
pub mod scu;
pub mod send;
pub mod tls;

pub use scp::{ScpConfig, ScpStats, serve};

use crate::error::{Error, NetFailure};

pub(crate) const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
pub(crate) const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
pub const VERIFICATION: &str = "1.2.840.10008.1.1";

/// The transfer syntaxes proposed for query/retrieve and verification contexts.
pub(crate) fn uncompressed() -> Vec<String> {
    vec![EXPLICIT_LE.to_string(), IMPLICIT_LE.to_string()]
}

/// Transfer syntaxes accepted for storage: everything Lightbox decodes, so nothing
/// is stored that cannot be displayed. Stored as received, never transcoded.
pub const ACCEPTED_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2.1",    // Explicit VR Little Endian
    "1.2.840.10008.1.2",      // Implicit VR Little Endian
    "1.2.840.10008.1.2.2",    // Explicit VR Big Endian (retired, still sent)
    "1.2.840.10008.1.2.1.99", // Deflated
    "1.2.840.10008.1.2.5",    // RLE Lossless
    "1.2.840.10008.1.2.4.50", // JPEG Baseline
    "1.2.840.10008.1.2.4.51", // JPEG Extended (12-bit)
    "1.2.840.10008.1.2.4.57", // JPEG Lossless
    "1.2.840.10008.1.2.4.70", // JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80", // JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81", // JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90", // JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91", // JPEG 2000
];

/// DIMSE status codes used here.
pub mod status {
    pub const SUCCESS: u16 = 0x0000;
    pub const CANCEL: u16 = 0xFE00;
    pub const PENDING: u16 = 0xFF00;
    /// Pending, optional keys not supported.
    pub const PENDING_WARNING: u16 = 0xFF01;
    /// Out of resources (the cache could not store the object).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Cannot understand (the data set could not be read).
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Unrecognised operation.
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
    /// Sub-operations complete, one or more failures or warnings.
    pub const SUBOPS_WARNING: u16 = 0xB000;
    /// Move destination unknown.
    pub const MOVE_DESTINATION_UNKNOWN: u16 = 0xA801;

    /// A status's class, for messages.
    pub fn describe(s: u16) -> String {
        let what = match s {
            0x0000 => "success",
            0xFE00 => "cancelled",
            0xFF00 | 0xFF01 => "pending",
            0xA700..=0xA7FF => "refused: out of resources",
            0xA801 => "refused: move destination unknown",
            0xA900..=0xA9FF => "error: data set does not match SOP class",
            0xC000..=0xCFFF => "failed: unable to process",
            0x0122 => "refused: SOP class not supported",
            0x0211 => "unrecognized operation",
            0xB000 => "warning: sub-operations complete with failures",
            0x0001 | 0xB001..=0xBFFF => "warning",
            _ => "failure",
        };
        format!("0x{s:04X} ({what})")
    }
}

/// A failed network operation with `peer`: a node's label, the calling AE title
/// (and address) of an association we accepted, or an address we listen on.
pub(crate) fn failure(peer: impl Into<String>, kind: NetFailure) -> Error {
    Error::Network {
        peer: peer.into(),
        kind,
    }
}
