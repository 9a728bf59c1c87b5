//! 12-bit JPEG (ISO 10918-1 process 4, "JPEG Extended") — placeholder until the
//! decoder lands.

use super::header::Photometric;

/// Decode a 12-bit DCT JPEG frame to little-endian 16-bit samples.
pub fn decode(_data: &[u8], _pi: &Photometric) -> Result<(Vec<u8>, Photometric), String> {
    Err("12-bit JPEG Extended is not supported yet".into())
}
