//! Plain value types shared by the decoder, the header, the display pipeline and the
//! GPU: stored pixel values of a frame, LUTs, rescale, windows, palettes, shutters and
//! overlay planes, with the meaning the standard gives each (a LUT's lookup, a
//! shutter's inside). No I/O and no DICOM parsing: `dicom` reads these values from
//! data sets, `imaging` computes with them, `render` encodes them for the GPU.
//! Depends on nothing else in the crate.

pub mod lut;
pub mod overlay;
pub mod palette;
pub mod pixels;

pub use lut::{Lut, ModalityTransform, Rescale, VoiFunction, Window};
pub use overlay::{Overlay, Shutter, inside_polygon};
pub use palette::Palette;
pub use pixels::{FramePixels, Samples};
