//! Pure imaging maths, the reference for every GPU path: the grayscale display
//! pipeline (`lut`), colour (`color`), frame rendering (`render`), patient geometry
//! (`geometry`), measurements with their calibration (`measure`), orthogonal
//! reformats (`mpr`) and the reference reslicer for oblique planes and slabs
//! (`reslice`). Nothing here
//! touches a window or a GPU.

pub mod geometry;
pub mod lut;
pub mod measure;
pub mod mpr;
pub mod render;
pub mod reslice;
pub mod vr;
