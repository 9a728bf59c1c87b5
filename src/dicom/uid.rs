//! UIDs Lightbox makes: deterministic ones under the 2.25 (UUID-derived) root, from a
//! seed, so that the same input always gives the same UID (de-identification maps
//! one original UID to one new one; synthetic studies are reproducible).

/// A deterministic UID under the 2.25 (UUID-derived) root.
pub fn from_seed(seed: &str) -> String {
    let a = fnv(seed.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let b = fnv(seed.as_bytes(), 0x8422_2325_cbf2_9ce4);
    let n = ((a as u128) << 64 | b as u128) >> 2; // < 2^126: at most 38 digits
    format!("2.25.{n}")
}

/// FNV-1a of `bytes` from the offset basis `h`.
pub fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
