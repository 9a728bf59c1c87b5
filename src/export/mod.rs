//! Images made from DICOM files, for use outside Lightbox: a file's frame opened,
//! decoded and rendered through the CPU reference pipeline, ready to be written as
//! PNG (`lightbox render`; the viewer's exports belong here as they move out of
//! the UI); and planes resliced from a volume as derived DICOM images
//! ([`reformat`], `lightbox render --mpr`).
//!
//! It sits above `dicom` (which opens and decodes) and `imaging` (which renders
//! and, being maths only, opens no files), beside `volume`; it knows nothing of the
//! command line or the viewer, so both can use it and it can be tested alone.

use std::path::Path;

pub mod reformat;

use crate::dicom::Image;
use crate::error::Result;
use crate::imaging::render::{self, RenderOptions, Rendered};

/// Render frame `frame` of the file at `path` with `opts`.
pub fn render_file(path: &Path, frame: u32, opts: &RenderOptions) -> Result<Rendered> {
    let image = Image::open(path)?;
    let pixels = image.frame(frame)?;
    render::render(&image.header, frame, &pixels, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_frame_renders_at_its_size_and_a_missing_frame_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = crate::synth::CtSpec {
            slices: 2,
            size: 32,
            ..Default::default()
        };
        crate::synth::write_ct(dir.path(), &spec).expect("ct");
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        let file = files.first().expect("a file");
        let r = render_file(file, 0, &RenderOptions::default()).expect("render");
        assert_eq!((r.width, r.height, r.channels), (32, 32, 1));
        assert_eq!(r.data.len(), 32 * 32);
        assert!(render_file(file, 5, &RenderOptions::default()).is_err());
    }
}
