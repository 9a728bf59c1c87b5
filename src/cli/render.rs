//! `lightbox render` (one frame through the CPU display pipeline to a PNG) and
//! `lightbox dump` (a file's header as text or DICOM JSON): the commands about one
//! file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::scan_dir;
use crate::dicom::{self, ReadMode};
use crate::error::{Error, Result};
use crate::imaging::lut::{VoiFunction, Window};
use crate::imaging::render::{RenderOptions, VoiChoice};
use crate::model;

#[derive(Debug, Args)]
pub(super) struct RenderArgs {
    /// A DICOM file, or a folder: then the largest stack found in it is used.
    file: PathBuf,
    /// Frame number, counting from 0.
    #[arg(long, default_value_t = 0)]
    frame: u32,
    /// With a folder: the slice to render, counting from 0 in position order
    /// (the viewer's reading order: head to feet for axial stacks); default the middle slice.
    #[arg(long)]
    slice: Option<usize>,
    /// Explicit window as CENTER,WIDTH (e.g. 40,400 or -600,1500).
    #[arg(long, value_name = "C,W", allow_hyphen_values = true, conflicts_with_all = ["voi", "minmax", "preset", "no_voi"])]
    window: Option<String>,
    /// The file's N-th VOI (1-based): its windows first, then its VOI LUTs.
    #[arg(long, value_name = "N", conflicts_with_all = ["minmax", "preset", "no_voi"])]
    voi: Option<usize>,
    /// Window from the frame's smallest and largest values.
    #[arg(long, conflicts_with_all = ["preset", "no_voi"])]
    minmax: bool,
    /// Named preset: brain, subdural, stroke, lung, mediastinum, abdomen, liver, bone.
    #[arg(long, conflicts_with = "no_voi")]
    preset: Option<String>,
    /// No VOI: map the full range of the stored format.
    #[arg(long)]
    no_voi: bool,
    /// Override the VOI LUT Function.
    #[arg(long, value_enum)]
    function: Option<FunctionArg>,
    /// Invert (in addition to MONOCHROME1 / Presentation LUT Shape).
    #[arg(long)]
    invert: bool,
    /// Write 16-bit levels instead of 8-bit.
    #[arg(long = "16bit")]
    sixteen_bit: bool,
    /// Leave the overlay planes (60xx) out (they are burned in white by default,
    /// as DCMTK does).
    #[arg(long)]
    no_overlays: bool,
    /// Show the whole image, ignoring its Display Shutter.
    #[arg(long)]
    no_shutter: bool,
    /// Output PNG (default: FILE name with .png in the current folder).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FunctionArg {
    Linear,
    LinearExact,
    Sigmoid,
}

/// `--window C,W`: a centre and a positive width.
fn parse_window(s: &str) -> Result<Window> {
    let bad = || {
        Error::Usage(format!(
            "--window expects CENTER,WIDTH with WIDTH > 0, got {s:?}"
        ))
    };
    let (c, w) = s.split_once(',').ok_or_else(bad)?;
    let c: f64 = c.trim().parse().map_err(|_| bad())?;
    let w: f64 = w.trim().parse().map_err(|_| bad())?;
    if !(c.is_finite() && w.is_finite() && w > 0.0) {
        return Err(bad());
    }
    Ok(Window::new(c, w))
}

/// The display options the flags ask for (they exclude each other; see clap).
fn render_options(a: &RenderArgs) -> Result<RenderOptions> {
    let voi = if let Some(w) = &a.window {
        VoiChoice::Explicit(parse_window(w)?)
    } else if let Some(n) = a.voi {
        VoiChoice::FromFile(n)
    } else if a.minmax {
        VoiChoice::MinMax
    } else if let Some(p) = &a.preset {
        VoiChoice::Preset(p.clone())
    } else if a.no_voi {
        VoiChoice::None
    } else {
        VoiChoice::Auto
    };
    Ok(RenderOptions {
        voi,
        function: a.function.map(|f| match f {
            FunctionArg::Linear => VoiFunction::Linear,
            FunctionArg::LinearExact => VoiFunction::LinearExact,
            FunctionArg::Sigmoid => VoiFunction::Sigmoid,
        }),
        invert: a.invert,
        sixteen_bit: a.sixteen_bit,
        overlays: !a.no_overlays,
        ignore_shutter: a.no_shutter,
    })
}

/// `lightbox render`.
pub(super) fn cmd_render(a: RenderArgs) -> Result<ExitCode> {
    let opts = render_options(&a)?;
    let out = a.out.clone().unwrap_or_else(|| {
        let stem = a
            .file
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "image".into());
        PathBuf::from(format!("{stem}.png"))
    });
    let (file, frame) = if a.file.is_dir() {
        pick_slice(&a.file, a.slice)?
    } else {
        (a.file.clone(), a.frame)
    };
    let r = crate::export::render_file(&file, frame, &opts)?;
    r.write_png(&out)?;
    out!(
        "{} frame {frame}: {}×{} {}, VOI {} → {}",
        file.display(),
        r.width,
        r.height,
        if r.channels == 1 { "grey" } else { "RGB" },
        r.voi_description,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The file and frame of slice `index` (default: middle) of the largest stack in a folder.
fn pick_slice(dir: &Path, index: Option<usize>) -> Result<(PathBuf, u32)> {
    let scan = scan_dir(dir)?;
    let patients = model::build(&scan.headers);
    let set = patients
        .iter()
        .flat_map(|p| p.studies.iter())
        .flat_map(|s| s.series.iter())
        .flat_map(|s| s.display_sets.iter())
        .max_by_key(|d| d.frames.len())
        .ok_or_else(|| Error::Series(format!("{}: no images found", dir.display())))?;
    let n = set.frames.len();
    let i = index.unwrap_or(n / 2);
    let r = set.frames.get(i).ok_or_else(|| {
        Error::Usage(format!(
            "--slice {i} does not exist: the stack has {n} slices (0 to {})",
            n - 1
        ))
    })?;
    Ok((scan.headers[r.instance].path.clone(), r.frame))
}

/// `lightbox dump`.
pub(super) fn cmd_dump(file: &Path, json: bool) -> Result<ExitCode> {
    let obj = dicom::open(file, ReadMode::HeaderOnly)?;
    if json {
        let s = dicom::dump::to_json(&obj).map_err(|e| Error::NotDicom {
            path: file.to_path_buf(),
            reason: e,
        })?;
        out!("{s}");
    } else {
        use std::io::Write as _;
        if std::io::stdout()
            .write_all(dicom::dump::to_text(&obj).as_bytes())
            .is_err()
        {
            std::process::exit(0);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_window;

    #[test]
    fn a_window_is_a_centre_and_a_positive_width() {
        let w = parse_window("-600,1500").expect("window");
        assert_eq!((w.center, w.width), (-600.0, 1500.0));
        for bad in ["40", "40,0", "40,-1", "a,b", "40,inf"] {
            let e = parse_window(bad).expect_err(bad).to_string();
            assert!(e.contains("--window expects CENTER,WIDTH"), "{e}");
        }
    }
}
