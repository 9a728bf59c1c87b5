//! Loading a display set into one contiguous 16-bit volume with its patient affine.
//!
//! Slices are read in parallel (rayon), each straight into its place in the volume.
//! Uncompressed little-endian single-frame files take a fast path: the file is read
//! once and the Pixel Data value, located at the end of the file and checked against
//! its element header, is converted in place — no data set is built. Everything else
//! (compressed, big-endian, multi-frame) goes through the full decoder.

use nalgebra::{Matrix4, Vector3};
use rayon::prelude::*;
use serde::Serialize;

use crate::dicom::header::{ImageHeader, Photometric};
use crate::dicom::pixels::{Samples, is_native};
use crate::dicom::{self, Image};
use crate::error::{Error, Result};
use crate::imaging::lut::Rescale;
use crate::imaging::reslice::SliceCoords;
use crate::model::{DisplaySet, FrameRef, GeometryIssue};

/// Voxels as stored (before Rescale), signed or unsigned 16-bit.
#[derive(Debug, Clone, PartialEq)]
pub enum VoxelData {
    I16(Vec<i16>),
    U16(Vec<u16>),
}

impl VoxelData {
    pub fn len(&self) -> usize {
        match self {
            Self::I16(v) => v.len(),
            Self::U16(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Stored value at a linear index.
    pub fn get(&self, i: usize) -> i32 {
        match self {
            Self::I16(v) => v[i] as i32,
            Self::U16(v) => v[i] as i32,
        }
    }
    /// Smallest and largest stored value.
    pub fn min_max(&self) -> Option<(i32, i32)> {
        fn mm<T: Copy + Ord + Into<i32> + Send + Sync>(v: &[T]) -> Option<(i32, i32)> {
            v.par_chunks(1 << 16)
                .map(|c| {
                    let lo = c.iter().copied().min()?;
                    let hi = c.iter().copied().max()?;
                    Some((lo.into(), hi.into()))
                })
                .reduce(
                    || None,
                    |a, b| match (a, b) {
                        (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
                        (a, None) => a,
                        (None, b) => b,
                    },
                )
        }
        match self {
            Self::I16(v) => mm(v),
            Self::U16(v) => mm(v),
        }
    }
}

/// A volume: `dims` = (columns, rows, slices), x fastest.
#[derive(Debug, Clone, Serialize)]
pub struct Volume {
    pub dims: [usize; 3],
    /// Column spacing, row spacing, slice spacing (mm).
    pub spacing_mm: [f64; 3],
    /// Affine from voxel index (x, y, z, 1) to patient mm (LPS).
    #[serde(serialize_with = "ser_matrix")]
    pub patient_from_voxel: Matrix4<f64>,
    pub rescale: Rescale,
    #[serde(skip)]
    pub data: VoxelData,
    /// Geometry issues of the stack the volume was built from.
    pub issues: Vec<GeometryIssue>,
    /// Slices read by the fast path (uncompressed, located in place).
    pub fast_slices: usize,
    /// Where the slices really are when they are not evenly spaced (the affine's
    /// slice axis is then their mean step): the reslicer interpolates between
    /// the real positions and leaves gaps empty.
    #[serde(skip)]
    pub slice_coords: Option<SliceCoords>,
}

fn ser_matrix<S: serde::Serializer>(
    m: &Matrix4<f64>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    let rows: Vec<[f64; 4]> = (0..4)
        .map(|r| [m[(r, 0)], m[(r, 1)], m[(r, 2)], m[(r, 3)]])
        .collect();
    rows.serialize(s)
}

impl Volume {
    /// Bytes of voxel data.
    pub fn voxel_bytes(&self) -> usize {
        self.data.len() * 2
    }
    /// Stored value at (x, y, z).
    pub fn stored(&self, x: usize, y: usize, z: usize) -> i32 {
        self.data.get(x + self.dims[0] * (y + self.dims[1] * z))
    }
    /// Modality value (e.g. HU) at (x, y, z).
    pub fn value(&self, x: usize, y: usize, z: usize) -> f64 {
        self.rescale.apply(self.stored(x, y, z) as f64)
    }
    /// Range of modality values.
    pub fn modality_range(&self) -> Option<(f64, f64)> {
        let (lo, hi) = self.data.min_max()?;
        let (a, b) = (self.rescale.apply(lo as f64), self.rescale.apply(hi as f64));
        Some((a.min(b), a.max(b)))
    }
}

/// What the GPU pipelines need of a volume: its size, its stored values,
/// their rescale and, for an uneven stack, its real slice positions — had by
/// a loaded [`Volume`] and by a [`VolumeView`] of a stack's shared block.
pub trait GpuVolume {
    fn size(&self) -> [usize; 3];
    fn values(&self) -> &VoxelData;
    fn value_rescale(&self) -> Rescale;
    fn real_slices(&self) -> Option<&SliceCoords>;
}

impl GpuVolume for Volume {
    fn size(&self) -> [usize; 3] {
        self.dims
    }
    fn values(&self) -> &VoxelData {
        &self.data
    }
    fn value_rescale(&self) -> Rescale {
        self.rescale
    }
    fn real_slices(&self) -> Option<&SliceCoords> {
        self.slice_coords.as_ref()
    }
}

impl GpuVolume for VolumeView<'_> {
    fn size(&self) -> [usize; 3] {
        self.dims
    }
    fn values(&self) -> &VoxelData {
        &self.data
    }
    fn value_rescale(&self) -> Rescale {
        self.rescale
    }
    fn real_slices(&self) -> Option<&SliceCoords> {
        self.slice_coords
    }
}

/// The reference reslicer samples volumes in patient coordinates.
impl crate::imaging::reslice::Voxels for Volume {
    fn dims(&self) -> [usize; 3] {
        self.dims
    }
    fn patient_from_voxel(&self) -> Matrix4<f64> {
        self.patient_from_voxel
    }
    fn modality(&self, x: usize, y: usize, z: usize) -> f64 {
        self.value(x, y, z)
    }
    fn slice_coords(&self) -> Option<&SliceCoords> {
        self.slice_coords.as_ref()
    }
    fn stored(&self) -> Option<(crate::imaging::reslice::Stored<'_>, f64, f64)> {
        use crate::imaging::reslice::Stored;
        let data = match &self.data {
            VoxelData::I16(v) => Stored::I16(v),
            VoxelData::U16(v) => Stored::U16(v),
        };
        Some((data, self.rescale.slope, self.rescale.intercept))
    }
}

/// A stack's stored values in one block that the viewer's frames share: the
/// loader decodes each slice straight into its place (every frame is then a
/// view of its slice), and MPR and volume rendering read the block as a
/// volume, so the values are held once. Slices are written while others are
/// read (the first images are shown while the rest decode), hence the lock;
/// readers hold it for a whole plane or picture, never per sample.
#[derive(Debug)]
pub struct SharedVolume {
    /// Columns, rows, slices (x fastest).
    pub dims: [usize; 3],
    /// This block's identity (never reused within the process): what a GPU
    /// texture made of it is kept under.
    id: u64,
    data: std::sync::RwLock<VoxelData>,
}

static NEXT_BLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_block() -> u64 {
    NEXT_BLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl SharedVolume {
    /// An empty block of `dims` voxels, signed or unsigned (its pages are
    /// the system's zero pages until written).
    pub fn new(dims: [usize; 3], signed: bool) -> SharedVolume {
        let n = dims[0] * dims[1] * dims[2];
        SharedVolume {
            dims,
            id: next_block(),
            data: std::sync::RwLock::new(if signed {
                VoxelData::I16(vec![0; n])
            } else {
                VoxelData::U16(vec![0; n])
            }),
        }
    }

    /// A block holding `data` already.
    pub fn of(dims: [usize; 3], data: VoxelData) -> SharedVolume {
        SharedVolume {
            dims,
            id: next_block(),
            data: std::sync::RwLock::new(data),
        }
    }

    /// This block's identity.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether the block holds signed values.
    pub fn signed(&self) -> bool {
        matches!(*self.read(), VoxelData::I16(_))
    }

    /// Write slice `z` from decoded samples; false (and nothing written) when
    /// they are not one slice or do not fit the block's type.
    pub fn write_slice(&self, z: usize, samples: &[i32]) -> bool {
        let plane = self.dims[0] * self.dims[1];
        if samples.len() != plane || z >= self.dims[2] {
            return false;
        }
        let at = z * plane;
        let mut data = self
            .data
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &mut *data {
            VoxelData::I16(v) => {
                if samples
                    .iter()
                    .any(|&x| x < i16::MIN as i32 || x > i16::MAX as i32)
                {
                    return false;
                }
                for (d, &x) in v[at..at + plane].iter_mut().zip(samples) {
                    *d = x as i16;
                }
            }
            VoxelData::U16(v) => {
                if samples.iter().any(|&x| x < 0 || x > u16::MAX as i32) {
                    return false;
                }
                for (d, &x) in v[at..at + plane].iter_mut().zip(samples) {
                    *d = x as u16;
                }
            }
        }
        true
    }

    /// The values, for as long as the guard lives.
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, VoxelData> {
        self.data
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The block seen as a volume placed by `patient_from_voxel`, its values
    /// made modality values by `rescale`.
    pub fn view<'a>(
        &'a self,
        patient_from_voxel: Matrix4<f64>,
        rescale: Rescale,
        slice_coords: Option<&'a SliceCoords>,
    ) -> VolumeView<'a> {
        VolumeView {
            dims: self.dims,
            patient_from_voxel,
            rescale,
            slice_coords,
            data: self.read(),
        }
    }
}

/// A [`SharedVolume`] read as a volume (see [`SharedVolume::view`]).
#[derive(Debug)]
pub struct VolumeView<'a> {
    pub dims: [usize; 3],
    pub patient_from_voxel: Matrix4<f64>,
    pub rescale: Rescale,
    /// The real slice positions of an unevenly spaced stack.
    pub slice_coords: Option<&'a SliceCoords>,
    data: std::sync::RwLockReadGuard<'a, VoxelData>,
}

impl VolumeView<'_> {
    /// Stored value at (x, y, z).
    pub fn stored(&self, x: usize, y: usize, z: usize) -> i32 {
        self.data.get(x + self.dims[0] * (y + self.dims[1] * z))
    }
    /// Range of modality values.
    pub fn modality_range(&self) -> Option<(f64, f64)> {
        let (lo, hi) = self.data.min_max()?;
        let (a, b) = (self.rescale.apply(lo as f64), self.rescale.apply(hi as f64));
        Some((a.min(b), a.max(b)))
    }
    /// The stored values of slice `z` (row-major).
    pub fn slice(&self, z: usize) -> Vec<i32> {
        let plane = self.dims[0] * self.dims[1];
        let at = z * plane;
        match &*self.data {
            VoxelData::I16(v) => v
                .get(at..at + plane)
                .unwrap_or_default()
                .iter()
                .map(|&x| x as i32)
                .collect(),
            VoxelData::U16(v) => v
                .get(at..at + plane)
                .unwrap_or_default()
                .iter()
                .map(|&x| x as i32)
                .collect(),
        }
    }
}

impl crate::imaging::reslice::Voxels for VolumeView<'_> {
    fn dims(&self) -> [usize; 3] {
        self.dims
    }
    fn patient_from_voxel(&self) -> Matrix4<f64> {
        self.patient_from_voxel
    }
    fn modality(&self, x: usize, y: usize, z: usize) -> f64 {
        self.rescale.apply(self.stored(x, y, z) as f64)
    }
    fn slice_coords(&self) -> Option<&SliceCoords> {
        self.slice_coords
    }
    fn stored(&self) -> Option<(crate::imaging::reslice::Stored<'_>, f64, f64)> {
        use crate::imaging::reslice::Stored;
        let data = match &*self.data {
            VoxelData::I16(v) => Stored::I16(v),
            VoxelData::U16(v) => Stored::U16(v),
        };
        Some((data, self.rescale.slope, self.rescale.intercept))
    }
}

/// Build the volume of a display set whose headers are `headers`.
pub fn load(set: &DisplaySet, headers: &[ImageHeader]) -> Result<Volume> {
    let geometry = set.geometry.as_ref().ok_or_else(|| {
        Error::Series(
            "cannot build a volume: the images have no Image Position/Orientation (Patient)".into(),
        )
    })?;
    let n = set.frames.len();
    if let Some(slice) = geometry.issues.iter().find_map(|i| match i {
        GeometryIssue::Duplicate { slice } => Some(*slice),
        _ => None,
    }) {
        return Err(Error::Series(format!(
            "cannot build a volume: two images at the same position (slice {slice}); \
             the series holds more than one stack (phases, echoes or repeats)"
        )));
    }
    let first = &headers[set.frames[0].instance];
    let px = first
        .pixel
        .as_ref()
        .ok_or_else(|| Error::Series("not an image series".into()))?;
    if px.samples_per_pixel != 1 || px.photometric == Photometric::PaletteColor {
        return Err(Error::Series(
            "volumes are built from grayscale images only".into(),
        ));
    }
    if px.bits_stored > 16 {
        return Err(Error::Series(format!(
            "volumes hold up to 16-bit values; these images have {} bits stored",
            px.bits_stored
        )));
    }
    if first.modality_lut.is_some() {
        return Err(Error::Series(
            "volumes with a Modality LUT Sequence are not supported; rescale only".into(),
        ));
    }
    let signed = px.signed;
    let rescale = frame_info(first, set.frames[0])?.rescale;
    for r in &set.frames {
        let h = &headers[r.instance];
        let p = h
            .pixel
            .as_ref()
            .ok_or_else(|| Error::Series(format!("{}: no pixel data", h.path.display())))?;
        if p.signed != signed || p.bits_stored > 16 || p.samples_per_pixel != 1 {
            return Err(Error::Series(format!(
                "{}: pixel format differs from the rest of the series",
                h.path.display()
            )));
        }
        let fr = frame_info(h, *r)?.rescale;
        if fr != rescale {
            return Err(Error::Series(format!(
                "{}: Rescale Slope/Intercept differ between slices ({} {} vs {} {}); per-slice rescale is not supported in volumes",
                h.path.display(),
                fr.slope,
                fr.intercept,
                rescale.slope,
                rescale.intercept
            )));
        }
    }

    let (cols, rows) = (set.columns as usize, set.rows as usize);
    let slice_len = cols * rows;
    let info0 = frame_info(first, set.frames[0])?;
    let spacing = info0.pixel_spacing.unwrap_or([1.0, 1.0]);
    // Slice step from the actual positions: captures gantry tilt and true spacing.
    let (m, slice_coords) = crate::imaging::mpr::placement(set, headers)
        .ok_or_else(|| Error::Series("degenerate Image Orientation (Patient)".into()))?;
    let step = Vector3::new(m[(0, 2)], m[(1, 2)], m[(2, 2)]);

    let fast = std::sync::atomic::AtomicUsize::new(0);
    // A multi-frame instance is opened once and its frames decoded in parallel.
    let shared: Option<Image> = if set.multiframe {
        Some(Image::open(&headers[set.frames[0].instance].path)?)
    } else {
        None
    };
    let fill = |r: &FrameRef, dst: Dst<'_>| match &shared {
        Some(image) => fill_from_image(image, r.frame, dst),
        None => fill_slice(&headers[r.instance], *r, dst, &fast),
    };
    let data = if signed {
        let mut v = vec![0i16; slice_len * n];
        v.par_chunks_mut(slice_len)
            .zip(set.frames.par_iter())
            .try_for_each(|(dst, r)| fill(r, Dst::I16(dst)))?;
        VoxelData::I16(v)
    } else {
        let mut v = vec![0u16; slice_len * n];
        v.par_chunks_mut(slice_len)
            .zip(set.frames.par_iter())
            .try_for_each(|(dst, r)| fill(r, Dst::U16(dst)))?;
        VoxelData::U16(v)
    };
    Ok(Volume {
        dims: [cols, rows, n],
        spacing_mm: [
            spacing[1],
            spacing[0],
            geometry.spacing_mm.unwrap_or(step.norm()),
        ],
        patient_from_voxel: m,
        rescale,
        data,
        issues: geometry.issues.clone(),
        fast_slices: fast.into_inner(),
        slice_coords,
    })
}

fn frame_info(h: &ImageHeader, r: FrameRef) -> Result<&crate::dicom::header::FrameInfo> {
    h.frame(r.frame)
}

enum Dst<'a> {
    I16(&'a mut [i16]),
    U16(&'a mut [u16]),
}

fn fill_slice(
    h: &ImageHeader,
    r: FrameRef,
    dst: Dst<'_>,
    fast: &std::sync::atomic::AtomicUsize,
) -> Result<()> {
    let px = h
        .pixel
        .as_ref()
        .ok_or_else(|| Error::Series(format!("{}: no pixel data", h.path.display())))?;
    let simple = px.number_of_frames == 1
        && px.bits_allocated == 16
        && px.high_bit + 1 == px.bits_stored
        && is_native(&h.transfer_syntax)
        && h.transfer_syntax != "1.2.840.10008.1.2.2"
        && h.transfer_syntax != "1.2.840.10008.1.2.1.99";
    if simple {
        // One reusable buffer per worker thread: no allocation (and no fresh,
        // page-faulting memory) per file.
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let len = px.rows as usize * px.columns as usize * 2;
        let done = BUF.with(|buf| -> Result<Option<Dst<'_>>> {
            use std::io::Read;
            let mut buf = buf.borrow_mut();
            let io = |source| Error::Io {
                path: h.path.clone(),
                source,
            };
            let mut f = std::fs::File::open(&h.path).map_err(io)?;
            let size = f.metadata().map_err(io)?.len() as usize;
            buf.resize(size, 0);
            f.read_exact(&mut buf).map_err(io)?;
            match locate_trailing_pixel_data(&buf, len) {
                Some(raw) => {
                    convert16(raw, px.bits_stored, dst);
                    Ok(None)
                }
                None => Ok(Some(dst)),
            }
        })?;
        match done {
            None => {
                fast.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(());
            }
            Some(dst) => {
                let image = Image::open(&h.path)?;
                return fill_from_image(&image, r.frame, dst);
            }
        }
    }
    let image = Image::open(&h.path)?;
    fill_from_image(&image, r.frame, dst)
}

/// Decode one frame of an opened image into a volume slice.
fn fill_from_image(image: &Image, frame: u32, dst: Dst<'_>) -> Result<()> {
    let decoded = dicom::decode_frame(&image.object, &image.header, frame)?;
    let Samples::Mono(v) = decoded.samples else {
        return Err(Error::Series(format!(
            "{}: not a grayscale image",
            image.header.path.display()
        )));
    };
    match dst {
        Dst::I16(d) => {
            for (o, &x) in d.iter_mut().zip(v.iter()) {
                *o = x as i16;
            }
        }
        Dst::U16(d) => {
            for (o, &x) in d.iter_mut().zip(v.iter()) {
                *o = x as u16;
            }
        }
    }
    Ok(())
}

/// The Pixel Data value when it is the last element of the file and holds exactly
/// `len` bytes: checked against the element header in front of it (implicit or
/// explicit VR little endian), so a file with trailing elements falls back to the
/// full parser instead of being misread.
pub fn locate_trailing_pixel_data(bytes: &[u8], len: usize) -> Option<&[u8]> {
    let start = bytes.len().checked_sub(len)?;
    let len32 = u32::try_from(len).ok()?.to_le_bytes();
    let tag = [0xE0, 0x7F, 0x10, 0x00];
    // Implicit VR: tag, 4-byte length
    if start >= 8 && bytes[start - 8..start - 4] == tag && bytes[start - 4..start] == len32 {
        return Some(&bytes[start..]);
    }
    // Explicit VR: tag, "OW"/"OB", 2 reserved bytes, 4-byte length
    if start >= 12
        && bytes[start - 12..start - 8] == tag
        && (&bytes[start - 8..start - 6] == b"OW" || &bytes[start - 8..start - 6] == b"OB")
        && bytes[start - 4..start] == len32
    {
        return Some(&bytes[start..]);
    }
    None
}

/// Little-endian 16-bit samples into the slice, masked to Bits Stored and
/// sign-extended for signed data.
fn convert16(raw: &[u8], bits_stored: u16, dst: Dst<'_>) {
    let bs = bits_stored.clamp(1, 16) as u32;
    match dst {
        Dst::U16(d) => {
            let mask: u16 = if bs == 16 { 0xffff } else { (1u16 << bs) - 1 };
            for (o, c) in d.iter_mut().zip(raw.chunks_exact(2)) {
                *o = u16::from_le_bytes([c[0], c[1]]) & mask;
            }
        }
        Dst::I16(d) => {
            let shift = 16 - bs;
            for (o, c) in d.iter_mut().zip(raw.chunks_exact(2)) {
                *o = (i16::from_le_bytes([c[0], c[1]]) << shift) >> shift;
            }
        }
    }
}

/// Peak resident memory of this process (VmHWM), bytes; Linux only.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The process's resident memory now, by kind (`/proc/self/status`, bytes):
/// anonymous (what it allocated: heap, stacks, and a software GPU's textures),
/// file-backed (program and shared-library code, mapped files) and shared
/// memory (e.g. the X server's image buffers).
pub fn rss_breakdown() -> Option<(u64, u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = |key: &str| -> Option<u64> {
        let line = s.lines().find(|l| l.starts_with(key))?;
        let v: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(v * 1024)
    };
    Some((kb("RssAnon:")?, kb("RssFile:")?, kb("RssShmem:")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::reslice::{self, Options, PlaneSpec, Slab, SlabMode, Voxels};
    use nalgebra::{Point3, Vector3};

    /// The same volume seen only through modality values: the reslicer's
    /// general path, against which the stored-value loop is checked.
    struct ModalityOnly<'a>(&'a Volume);

    impl Voxels for ModalityOnly<'_> {
        fn dims(&self) -> [usize; 3] {
            self.0.dims
        }
        fn patient_from_voxel(&self) -> Matrix4<f64> {
            self.0.patient_from_voxel
        }
        fn modality(&self, x: usize, y: usize, z: usize) -> f64 {
            self.0.value(x, y, z)
        }
    }

    fn volume(slope: f64) -> Volume {
        let dims = [23, 19, 17];
        let n = dims[0] * dims[1] * dims[2];
        // Deterministic, rough values (edges everywhere), signed.
        let data: Vec<i16> = (0..n)
            .map(|i| ((i * 7919 + (i / 23) * 104_729) % 4001) as i16 - 2000)
            .collect();
        let shear = 2.0 * 12f64.to_radians().tan();
        Volume {
            dims,
            spacing_mm: [0.8, 0.8, 2.0],
            patient_from_voxel: Matrix4::new(
                0.8, 0.0, 0.0, -9.0, //
                0.0, 0.8, shear, -7.0, //
                0.0, 0.0, 2.0, -16.0, //
                0.0, 0.0, 0.0, 1.0,
            ),
            rescale: Rescale {
                slope,
                intercept: -1024.0,
            },
            data: VoxelData::I16(data),
            issues: Vec::new(),
            fast_slices: 0,
            slice_coords: None,
        }
    }

    #[test]
    fn the_stored_value_loop_gives_what_the_modality_path_gives() {
        // Oblique planes partly outside the volume, thin and as slabs of each
        // mode, with a positive and a negative slope (which swaps MIP and MinIP
        // in stored units).
        let row = Vector3::new(0.8, 0.5, 0.3).normalize();
        let n0 = Vector3::new(0.1, -0.4, 0.9).normalize();
        let col = (n0 - row * n0.dot(&row)).normalize();
        let spec = PlaneSpec {
            plane: crate::imaging::geometry::ImagePlane {
                position: Point3::new(-14.0, -12.0, -6.0),
                row_dir: row,
                col_dir: col,
                spacing_mm: [0.6, 0.6],
            },
            columns: 48,
            rows: 40,
        };
        for slope in [1.0, 0.5, -2.0] {
            let vol = volume(slope);
            for slab in [
                None,
                Some(SlabMode::Mip),
                Some(SlabMode::MinIp),
                Some(SlabMode::Average),
            ] {
                let opts = Options {
                    slab: slab.map(|mode| Slab {
                        thickness_mm: 6.0,
                        mode,
                    }),
                    padding: -5000.0,
                    ..Options::default()
                };
                let fast = reslice::reslice(&vol, &spec, &opts).expect("stored");
                let general =
                    reslice::reslice(&ModalityOnly(&vol), &spec, &opts).expect("modality");
                let worst = fast
                    .iter()
                    .zip(&general)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                assert!(worst < 1e-6, "slope {slope}, {slab:?}: differ by {worst}");
                assert!(fast.contains(&-5000.0), "the plane should leave the volume");
                assert!(fast.iter().any(|v| *v != -5000.0));
            }
        }
    }
}
