//! Loading a study off the UI thread: headers are scanned and grouped into display
//! sets, then every frame is decoded in the background (rayon) and handed to the UI
//! over a channel as it is ready — the first image shows as soon as it is decoded.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::dicom::pixels::FramePixels;
use crate::dicom::{self, ImageHeader};
use crate::model::{self, DisplaySet, FrameRef, Patient};
use crate::store::ExpectedInstance;
use crate::volume::SharedVolume;

/// One display set ready to be shown, with its headers.
#[derive(Debug, Clone)]
pub struct LoadedSet {
    pub label: String,
    pub modality: String,
    pub study_uid: String,
    pub study_date: String,
    pub study_description: String,
    pub series_description: String,
    pub set: DisplaySet,
    /// A reformat of another set (index) rather than acquired images.
    pub derived: Option<(usize, crate::imaging::mpr::Plane)>,
    /// A reformat shown as a thick slab (MIP, MinIP, AvgIP over its thickness
    /// along the plane's normal), cut by the reference reslicer.
    pub slab: Option<crate::imaging::reslice::Slab>,
}

/// A decoded frame kept compact: 16-bit when the values fit (almost always), so the
/// frames of an open study take about their voxel bytes. Expanded to
/// [`FramePixels`] only for the frames on screen.
#[derive(Debug)]
pub struct Compact {
    pub rows: u32,
    pub columns: u32,
    pub bits_stored: u16,
    data: CompactData,
}

#[derive(Debug)]
enum CompactData {
    U16(Vec<u16>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    Rgb(Vec<u32>),
    /// A reduced-resolution preview (see `dicom::pixels::Preview`): the
    /// reduced frame, kept compact, and the levels dropped.
    Reduced(Box<Compact>, u32),
    /// Slice z of a stack's shared block (`volume::SharedVolume`): the loader
    /// decodes a stack's slices into one block that MPR and volume rendering
    /// read as a volume, so the decoded values are held once.
    Volume(Arc<SharedVolume>, usize),
}

impl Compact {
    pub fn new(p: FramePixels) -> Compact {
        use crate::dicom::pixels::Samples;
        let data = match p.samples {
            Samples::Mono(v) => {
                let (lo, hi) = v
                    .iter()
                    .fold((i32::MAX, i32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
                if lo >= 0 && hi <= u16::MAX as i32 {
                    CompactData::U16(v.iter().map(|&x| x as u16).collect())
                } else if lo >= i16::MIN as i32 && hi <= i16::MAX as i32 {
                    CompactData::I16(v.iter().map(|&x| x as i16).collect())
                } else {
                    CompactData::I32(v)
                }
            }
            Samples::Rgb(v) => CompactData::Rgb(v),
        };
        Compact {
            rows: p.rows,
            columns: p.columns,
            bits_stored: p.bits_stored,
            data,
        }
    }

    /// A preview, kept at its reduced size (a quarter or less of the frame's).
    pub fn preview(p: crate::dicom::pixels::Preview) -> Compact {
        Compact {
            rows: p.rows,
            columns: p.columns,
            bits_stored: p.small.bits_stored,
            data: CompactData::Reduced(Box::new(Compact::new(p.small)), p.levels),
        }
    }

    /// Slice `z` of `volume`, as a frame.
    pub fn of_volume(volume: &Arc<SharedVolume>, z: usize, bits_stored: u16) -> Compact {
        let [columns, rows, _] = volume.dims;
        Compact {
            rows: rows as u32,
            columns: columns as u32,
            bits_stored,
            data: CompactData::Volume(Arc::clone(volume), z),
        }
    }

    /// The shared block this frame is a slice of, and which slice.
    pub fn volume_slice(&self) -> Option<(&Arc<SharedVolume>, usize)> {
        match &self.data {
            CompactData::Volume(v, z) => Some((v, *z)),
            _ => None,
        }
    }

    /// Samples in the frame.
    fn len(&self) -> usize {
        self.rows as usize * self.columns as usize
    }

    /// Whether its values fit i16, u16, or neither (None: colour or wider).
    pub(super) fn sixteen_bits(&self) -> Option<bool> {
        match &self.data {
            CompactData::I16(_) => Some(true),
            CompactData::U16(_) => Some(false),
            CompactData::Volume(v, _) => Some(v.signed()),
            CompactData::Reduced(c, _) => c.sixteen_bits(),
            CompactData::I32(_) | CompactData::Rgb(_) => None,
        }
    }

    /// The lowest grayscale sample (None for colour frames).
    pub fn min_sample(&self) -> Option<i32> {
        match &self.data {
            CompactData::U16(v) => v.iter().min().map(|&x| x as i32),
            CompactData::I16(v) => v.iter().min().map(|&x| x as i32),
            CompactData::I32(v) => v.iter().min().copied(),
            CompactData::Rgb(_) => None,
            CompactData::Reduced(c, _) => c.min_sample(),
            CompactData::Volume(v, z) => {
                let plane = self.len();
                let data = v.read();
                (z * plane..(z + 1) * plane).map(|i| data.get(i)).min()
            }
        }
    }

    /// Grayscale sample `i` (row-major); 0 for colour frames or beyond the end.
    pub fn sample(&self, i: usize) -> i32 {
        match &self.data {
            CompactData::U16(v) => v.get(i).map(|&x| x as i32),
            CompactData::I16(v) => v.get(i).map(|&x| x as i32),
            CompactData::I32(v) => v.get(i).copied(),
            CompactData::Rgb(_) => None,
            CompactData::Reduced(c, levels) => (i < self.len()).then(|| {
                c.sample(crate::dicom::pixels::preview_source(
                    i,
                    self.columns,
                    c.columns,
                    *levels,
                ))
            }),
            CompactData::Volume(v, z) => (i < self.len()).then(|| v.read().get(z * self.len() + i)),
        }
        .unwrap_or(0)
    }

    /// The frame as the imaging and GPU code take it.
    pub fn expand(&self) -> FramePixels {
        use crate::dicom::pixels::Samples;
        let samples = match &self.data {
            CompactData::U16(v) => Samples::Mono(v.iter().map(|&x| x as i32).collect()),
            CompactData::I16(v) => Samples::Mono(v.iter().map(|&x| x as i32).collect()),
            CompactData::I32(v) => Samples::Mono(v.clone()),
            CompactData::Rgb(v) => Samples::Rgb(v.clone()),
            CompactData::Volume(v, z) => {
                let n = self.len();
                let data = v.read();
                Samples::Mono((z * n..(z + 1) * n).map(|i| data.get(i)).collect())
            }
            CompactData::Reduced(c, levels) => {
                let small = c.expand();
                return crate::dicom::pixels::Preview {
                    small,
                    levels: *levels,
                    rows: self.rows,
                    columns: self.columns,
                }
                .upsampled();
            }
        };
        FramePixels {
            rows: self.rows,
            columns: self.columns,
            bits_stored: self.bits_stored,
            samples,
        }
    }
}

/// What the loader sends.
#[derive(Debug)]
pub enum Loaded {
    /// The study's display sets (headers scanned and grouped). `grown`: the
    /// files of an earlier `Study` and more that arrived since (a study being
    /// retrieved); the earlier headers keep their indices, so decoded frames and
    /// what the viewports show carry over.
    Study {
        headers: Arc<Vec<ImageHeader>>,
        patients: Vec<Patient>,
        sets: Vec<LoadedSet>,
        /// Files that could not be read, with why.
        failures: Vec<(PathBuf, String)>,
        grown: bool,
    },
    /// One decoded frame (or why it could not be), by instance (an index into the
    /// headers of the last `Study`) and frame number.
    Frame {
        at: FrameRef,
        pixels: Result<Arc<Compact>, String>,
        /// A reduced-resolution preview (the levels dropped), replaced by the
        /// full frame later; None: the frame itself.
        preview: Option<u32>,
    },
}

/// The display sets of `headers`, in the model's order.
fn sets_of(patients: &[Patient]) -> Vec<LoadedSet> {
    let mut sets = Vec::new();
    for p in patients {
        for st in &p.studies {
            for se in &st.series {
                for ds in &se.display_sets {
                    sets.push(LoadedSet {
                        label: format!(
                            "{} {} ({})",
                            se.number.map(|n| n.to_string()).unwrap_or_default(),
                            se.description.clone().unwrap_or_default(),
                            ds.frames.len()
                        ),
                        modality: se.modality.clone().unwrap_or_default(),
                        study_uid: st.uid.clone(),
                        study_date: st.date.clone().unwrap_or_default(),
                        study_description: st.description.clone().unwrap_or_default(),
                        series_description: se.description.clone().unwrap_or_default(),
                        set: ds.clone(),
                        derived: None,
                        slab: None,
                    });
                }
            }
        }
    }
    sets
}

/// The frames to decode, most useful first: the middle frame of every set (what
/// the viewports and the series thumbnails show), then each set outwards from
/// its middle. Only frames of instances from `first_new` on.
fn decode_order(sets: &[LoadedSet], first_new: usize) -> Vec<FrameRef> {
    let mids = sets
        .iter()
        .filter(|ls| !ls.set.frames.is_empty())
        .map(|ls| ls.set.frames[ls.set.frames.len() / 2]);
    let rest = sets.iter().flat_map(|ls| {
        let n = ls.set.frames.len();
        let mid = n / 2;
        let mut idx: Vec<usize> = (0..n).filter(|&i| i != mid).collect();
        idx.sort_by_key(|&i| i.abs_diff(mid));
        idx.into_iter().map(move |i| ls.set.frames[i])
    });
    let mut seen = std::collections::HashSet::new();
    mids.chain(rest)
        .filter(|f| f.instance >= first_new && seen.insert(*f))
        .collect()
}

/// The shared blocks the stacks among `sets` are decoded into (see
/// [`SharedVolume`]), by frame: (block, slice). A stack gets one when it has
/// three or more greyscale frames of one size, pixel representation and at
/// most 16 bits, all of them new (from `first_new` on: a study that grows keeps
/// its decoded frames where they are) and none a stand-in.
fn shared_volumes(
    sets: &[LoadedSet],
    headers: &[ImageHeader],
    first_new: usize,
) -> std::collections::HashMap<FrameRef, (Arc<SharedVolume>, usize)> {
    use crate::dicom::header::Photometric;
    let mut out = std::collections::HashMap::new();
    for ls in sets {
        let set = &ls.set;
        if set.frames.len() < 3
            || set.geometry.is_none()
            || set
                .frames
                .iter()
                .any(|f| f.instance < first_new || out.contains_key(f))
        {
            continue;
        }
        let Some(first) = headers
            .get(set.frames[0].instance)
            .and_then(|h| h.pixel.as_ref())
        else {
            continue;
        };
        let alike = set.frames.iter().all(|f| {
            headers.get(f.instance).is_some_and(|h| {
                h.stand_in.is_none()
                    && h.pixel.as_ref().is_some_and(|p| {
                        p.samples_per_pixel == 1
                            && p.photometric != Photometric::PaletteColor
                            && (p.rows, p.columns) == (set.rows, set.columns)
                            && p.bits_stored <= 16
                            && p.signed == first.signed
                    })
            })
        });
        if !alike {
            continue;
        }
        let dims = [set.columns as usize, set.rows as usize, set.frames.len()];
        let block = Arc::new(SharedVolume::new(dims, first.signed));
        for (z, f) in set.frames.iter().enumerate() {
            out.insert(*f, (Arc::clone(&block), z));
        }
    }
    out
}

/// A decoded frame kept: written into its stack's shared block when it has
/// one (and fits it), else on its own.
fn keep(p: FramePixels, block: Option<&(Arc<SharedVolume>, usize)>) -> Compact {
    if let (Some((b, z)), crate::dicom::pixels::Samples::Mono(v)) = (block, &p.samples)
        && b.write_slice(*z, v)
    {
        return Compact::of_volume(b, *z, p.bits_stored);
    }
    Compact::new(p)
}

/// Scan `files`, group them, and decode every frame of every display set, most
/// useful first (each set's middle slice, then outwards), reporting over `tx`.
/// `expected`: the instances a retrieve of the study lists, which get stand-ins
/// until they come (see [`super::stand_in`]).
pub fn load(
    files: Vec<PathBuf>,
    expected: Vec<ExpectedInstance>,
    tx: Sender<Loaded>,
    ctx: eframe::egui::Context,
) -> std::io::Result<()> {
    grow(Arc::new(Vec::new()), files, expected, tx, ctx)
}

/// Add `files` to a study whose headers are `base` (a study still arriving):
/// the new files are scanned, everything is grouped again (the new headers after
/// the old ones; stand-ins for what `expected` lists and is not here yet), and
/// only the new frames are decoded.
pub fn grow(
    base: Arc<Vec<ImageHeader>>,
    files: Vec<PathBuf>,
    expected: Vec<ExpectedInstance>,
    tx: Sender<Loaded>,
    ctx: eframe::egui::Context,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("loader".into())
        .spawn(move || {
            let scan = crate::scan::scan_files(&files);
            let failures = scan.failures.clone();
            let first_new = base.len();
            let grown = first_new > 0;
            let mut all = Vec::with_capacity(base.len() + scan.headers.len());
            all.extend(base.iter().cloned());
            all.extend(scan.headers);
            if !expected.is_empty() {
                super::stand_in::place(&mut all, &expected);
            }
            let headers = Arc::new(all);
            let patients = model::build(&headers);
            let sets = sets_of(&patients);
            let blocks = shared_volumes(&sets, &headers, first_new);
            let mids = middles(&sets);
            let mut jobs: Vec<(FrameRef, PathBuf)> = decode_order(&sets, first_new)
                .into_iter()
                .filter(|f| headers[f.instance].stand_in.is_none())
                .map(|f| (f, headers[f.instance].path.clone()))
                .collect();
            if tx
                .send(Loaded::Study {
                    headers: Arc::clone(&headers),
                    patients,
                    sets,
                    failures,
                    grown,
                })
                .is_err()
            {
                return;
            }
            ctx.request_repaint();
            // Multi-frame files are opened once per frame here; stacks are one file per
            // frame, the common case.
            let tx = Mutex::new(tx);
            let decode = |at: &FrameRef, path: &PathBuf, preview: bool| {
                // Previews are kept on their own, at their reduced size: the
                // shared block holds only full frames.
                let made = dicom::Image::open(path).and_then(|img| {
                    if preview {
                        Ok(img
                            .frame_preview(at.frame)?
                            .map(|p| (p.levels, Compact::preview(p))))
                    } else {
                        img.frame(at.frame)
                            .map(|p| Some((0, keep(p, blocks.get(at)))))
                    }
                });
                let (pixels, levels) = match made {
                    Ok(Some((levels, c))) => (Ok(Arc::new(c)), levels),
                    // No preview after all: the full frame comes in its turn.
                    Ok(None) => return,
                    // A preview that fails says nothing the full decode will
                    // not say better.
                    Err(_) if preview => return,
                    Err(e) => (Err(e.to_string()), 0),
                };
                if let Ok(tx) = tx.lock() {
                    let _ = tx.send(Loaded::Frame {
                        at: *at,
                        pixels,
                        preview: preview.then_some(levels),
                    });
                }
                // Not a repaint per frame: the viewer looks for arrived frames
                // on its own while any are missing (soon when one is on screen).
                ctx.request_repaint_after(std::time::Duration::from_millis(500));
            };
            // JPEG 2000 stacks are first seen at a lower resolution level (a
            // fraction of the decoding), all of them, while each set's middle
            // frame is decoded in full; then every frame in full. The phases
            // do not overlap, so no preview lands after its full frame.
            let previews: Vec<&(FrameRef, PathBuf)> = jobs
                .iter()
                .filter(|(at, _)| {
                    !mids.contains(at) && dicom::pixels::preview_levels(&headers[at.instance]) > 0
                })
                .collect();
            if !previews.is_empty() {
                let first: Vec<(&(FrameRef, PathBuf), bool)> = jobs
                    .iter()
                    .filter(|(at, _)| mids.contains(at))
                    .map(|j| (j, false))
                    .chain(previews.into_iter().map(|j| (j, true)))
                    .collect();
                first
                    .par_iter()
                    .for_each(|((at, path), preview)| decode(at, path, *preview));
                jobs.retain(|(at, _)| !mids.contains(at));
            }
            jobs.par_iter()
                .for_each(|(at, path)| decode(at, path, false));
        })?;
    Ok(())
}

/// The middle frame of every set (what the viewports and the series strip
/// show first).
fn middles(sets: &[LoadedSet]) -> std::collections::HashSet<FrameRef> {
    sets.iter()
        .filter(|ls| !ls.set.frames.is_empty())
        .map(|ls| ls.set.frames[ls.set.frames.len() / 2])
        .collect()
}

/// A channel pair for the loader.
pub fn channel_pair() -> (Sender<Loaded>, Receiver<Loaded>) {
    channel()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A preview is kept at its reduced size and read on the full grid: each
    /// reduced sample over its square (odd sizes: the last row and column of
    /// squares cut short).
    #[test]
    fn a_preview_reads_on_the_full_grid() {
        use crate::dicom::pixels::{Preview, Samples};
        let small = FramePixels {
            rows: 2,
            columns: 3,
            bits_stored: 12,
            samples: Samples::Mono(vec![1, 2, 3, -4, 5, 6]),
        };
        let p = Preview {
            small,
            levels: 1,
            rows: 4,
            columns: 5,
        };
        let want = vec![
            1, 1, 2, 2, 3, //
            1, 1, 2, 2, 3, //
            -4, -4, 5, 5, 6, //
            -4, -4, 5, 5, 6,
        ];
        assert_eq!(p.upsampled().samples, Samples::Mono(want.clone()));
        let c = Compact::preview(p);
        assert_eq!((c.rows, c.columns), (4, 5));
        assert_eq!(c.expand().samples, Samples::Mono(want.clone()));
        assert_eq!((0..20).map(|i| c.sample(i)).collect::<Vec<_>>(), want);
        assert_eq!(c.sample(20), 0, "beyond the end");
        assert_eq!(c.min_sample(), Some(-4));
        assert_eq!(c.sixteen_bits(), Some(true));
    }

    /// A stack's frames are decoded into one shared block: every frame a view
    /// of its slice, equal to the frame decoded on its own; a set of one image
    /// gets none.
    #[test]
    fn a_stack_is_decoded_into_one_shared_block() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::synth::write_demo(dir.path(), 12, 32).expect("demo");
        let files = crate::scan::list_files(dir.path()).expect("list");
        let headers = crate::scan::scan_files(&files).headers;
        let sets = sets_of(&model::build(&headers));
        let blocks = shared_volumes(&sets, &headers, 0);
        let stack = sets
            .iter()
            .find(|s| s.set.frames.len() == 12)
            .expect("the CT");
        let mut first: Option<Arc<SharedVolume>> = None;
        for (z, f) in stack.set.frames.iter().enumerate() {
            let img = dicom::Image::open(&headers[f.instance].path).expect("open");
            let alone = Compact::new(img.frame(f.frame).expect("frame"));
            let kept = keep(img.frame(f.frame).expect("frame"), blocks.get(f));
            let (b, k) = kept.volume_slice().expect("a view of the block");
            assert_eq!(k, z);
            let b = Arc::clone(b);
            if let Some(a) = &first {
                assert!(Arc::ptr_eq(a, &b), "one block for the stack");
            }
            first = Some(b);
            assert_eq!(kept.expand(), alone.expand(), "frame {z}");
        }
        for s in sets.iter().filter(|s| s.set.frames.len() < 3) {
            assert!(s.set.frames.iter().all(|f| !blocks.contains_key(f)));
        }
    }
}
