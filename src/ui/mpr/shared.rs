//! An MPR's stack as one volume: the block its frames were decoded into
//! (`loader`), or one made from its frames when it has none, read by the
//! planes and the 3-D view.

use std::sync::Arc;

use super::super::loader::Compact;
use super::super::*;
use crate::imaging::mpr::Source;
use crate::volume::{SharedVolume, Volume};

/// An MPR's stack as a volume: its frames' shared block, where it lies, its
/// rescale, and the modality value outside it.
#[derive(Debug, Clone)]
pub(in crate::ui) struct MprVolume {
    pub(in crate::ui) block: Arc<SharedVolume>,
    pub(in crate::ui) patient_from_voxel: nalgebra::Matrix4<f64>,
    pub(in crate::ui) slice_coords: Option<crate::imaging::reslice::SliceCoords>,
    pub(in crate::ui) rescale: crate::imaging::lut::Rescale,
    pub(in crate::ui) padding: f64,
}

impl MprVolume {
    /// The block read as a volume (a read lock for as long as it lives).
    pub(in crate::ui) fn view(&self) -> crate::volume::VolumeView<'_> {
        self.block.view(
            self.patient_from_voxel,
            self.rescale,
            self.slice_coords.as_ref(),
        )
    }
}

/// The decoded frames of a stack as one volume, in their display order (as
/// `volume::load` reads a stack: the affine says which way it runs): voxel
/// (x, y, z) is column x, row y of frame z; in the one 16-bit type every
/// frame fits (None when they fit none, or a frame is colour).
pub(in crate::ui) fn volume_of_frames(src: &Source, frames: &[Arc<Compact>]) -> Option<Volume> {
    use crate::volume::VoxelData;
    let n = src.slices;
    let plane = src.columns as usize * src.rows as usize;
    if frames.len() != n
        || frames
            .iter()
            .any(|f| f.rows != src.rows || f.columns != src.columns)
    {
        return None;
    }
    let kinds: Vec<bool> = frames
        .iter()
        .map(|f| f.sixteen_bits())
        .collect::<Option<_>>()?;
    fn values(f: &Compact, plane: usize) -> impl Iterator<Item = i32> + '_ {
        (0..plane).map(move |i| f.sample(i))
    }
    // Straight into the one buffer (no wider copy on the way: a 2,000-slice
    // CT is a gigabyte of 16-bit values).
    let data = if kinds.iter().all(|&signed| !signed) {
        VoxelData::U16(
            frames
                .iter()
                .flat_map(|f| values(f, plane))
                .map(|v| v as u16)
                .collect(),
        )
    } else {
        // Signed: every unsigned frame must fit i16 too.
        let fits = frames
            .iter()
            .zip(&kinds)
            .all(|(f, &signed)| signed || values(f, plane).all(|v| v <= i16::MAX as i32));
        if !fits {
            return None;
        }
        VoxelData::I16(
            frames
                .iter()
                .flat_map(|f| values(f, plane))
                .map(|v| v as i16)
                .collect(),
        )
    };
    Some(Volume {
        dims: [src.columns as usize, src.rows as usize, n],
        spacing_mm: [src.cs, src.rs, src.spacing],
        patient_from_voxel: src.affine,
        rescale: src.last_info.rescale,
        data,
        issues: Vec::new(),
        fast_slices: 0,
        slice_coords: src.slice_coords.clone(),
    })
}

impl App {
    /// The stack of the MPR of `src_set` as one volume once every frame is
    /// decoded: the block its frames were decoded into (`loader`), or, for a
    /// stack that has none (one that grew while it arrived), a block made now
    /// from its frames, which then become views of it. None while decoding
    /// (or for a stack no 16-bit type holds: the notice says so).
    pub(in crate::ui) fn shared_volume(&mut self, src_set: usize) -> Option<MprVolume> {
        let m = self.session.mpr.get(&src_set)?;
        if let Some(v) = &m.volume {
            return Some(v.clone());
        }
        let src = Arc::clone(&m.src);
        let frames: Vec<Arc<Compact>> = self
            .residency
            .slots
            .get(src_set)?
            .iter()
            .map(|s| s.full().cloned())
            .collect::<Option<_>>()?;
        let dims = [src.columns as usize, src.rows as usize, src.slices];
        // The frames are slice z of one block, in order: that block.
        let shared = frames
            .first()
            .and_then(|f| f.volume_slice())
            .and_then(|(b, _)| {
                let all = frames.iter().enumerate().all(|(z, f)| {
                    f.volume_slice()
                        .is_some_and(|(c, k)| Arc::ptr_eq(b, c) && k == z)
                });
                (all && b.dims == dims).then(|| Arc::clone(b))
            });
        let block = match shared {
            Some(b) => b,
            None => {
                let Some(volume) = volume_of_frames(&src, &frames) else {
                    self.session.notice = Some(
                        "MPR: the stack's values fit no one 16-bit type; planes cannot be cut"
                            .into(),
                    );
                    return None;
                };
                let bits = frames.first().map(|f| f.bits_stored).unwrap_or(16);
                drop(frames);
                let block = Arc::new(SharedVolume::of(volume.dims, volume.data));
                for (z, slot) in self.residency.slots[src_set].iter_mut().enumerate() {
                    slot.pixels = Some(Arc::new(Compact::of_volume(&block, z, bits)));
                }
                block
            }
        };
        let mut volume = MprVolume {
            block,
            patient_from_voxel: src.affine,
            slice_coords: src.slice_coords.clone(),
            rescale: src.last_info.rescale,
            padding: 0.0,
        };
        let lowest = volume.view().modality_range().map(|r| r.0);
        volume.padding = lowest.unwrap_or(volume.rescale.intercept);
        if let Some(m) = self.session.mpr.get_mut(&src_set) {
            m.volume = Some(volume.clone());
        }
        Some(volume)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::reslice::Voxels;

    /// The volume the viewer makes of a stack's decoded frames is the one
    /// `volume::load` reads from the files (the reference reslicer's), voxel
    /// for voxel and in the same place; and its slices, as frames, are the
    /// frames they replace.
    #[test]
    fn the_volume_of_decoded_frames_is_the_stack_read_as_a_volume() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, _, _) = crate::synth::write_demo(dir.path(), 40, 64).expect("demo");
        let files = crate::scan::list_files(dir.path()).expect("list");
        let headers = crate::scan::scan_files(&files).headers;
        let patients = crate::model::build(&headers);
        let set = patients
            .iter()
            .flat_map(|p| &p.studies)
            .flat_map(|s| &s.series)
            .flat_map(|s| &s.display_sets)
            .filter(|d| d.frames.len() == 40)
            .max_by_key(|d| headers[d.frames[0].instance].study_date.clone())
            .expect("the CT");
        let src = Source::new(set, &headers).expect("source");
        let frames: Vec<Arc<Compact>> = set
            .frames
            .iter()
            .map(|f| {
                let img = crate::dicom::Image::open(&headers[f.instance].path).expect("open");
                Arc::new(Compact::new(img.frame(f.frame).expect("frame")))
            })
            .collect();
        let ours = volume_of_frames(&src, &frames).expect("one 16-bit type");
        let theirs = crate::volume::load(set, &headers).expect("volume");
        assert_eq!(ours.dims, theirs.dims);
        assert!(
            (ours.patient_from_voxel - Voxels::patient_from_voxel(&theirs)).norm() < 1e-6,
            "{} vs {}",
            ours.patient_from_voxel,
            theirs.patient_from_voxel
        );
        let [nx, ny, nz] = ours.dims;
        for z in 0..nz {
            for (x, y) in [(0, 0), (nx / 2, ny / 3), (nx - 1, ny - 1), (7, 40)] {
                assert_eq!(
                    ours.stored(x, y, z),
                    theirs.stored(x, y, z),
                    "({x},{y},{z})"
                );
            }
        }
        let shared = Arc::new(SharedVolume::of(ours.dims, ours.data.clone()));
        for (z, f) in frames.iter().enumerate() {
            let view = Compact::of_volume(&shared, z, f.bits_stored);
            assert_eq!(view.expand(), f.expand(), "frame {z}");
        }
    }
}
