//! `lightbox render` (one frame through the CPU display pipeline to a PNG) and
//! `lightbox dump` (a file's header as text or DICOM JSON): the commands about one
//! file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::scan_dir;
use crate::dicom::{self, ReadMode};
use crate::error::{Error, Result};
use crate::export::reformat;
use crate::imaging::lut::{VoiFunction, Window};
use crate::imaging::render::{self, RenderOptions, VoiChoice};
use crate::imaging::reslice::{self, Interpolation, Slab, SlabMode};
use crate::model::{self, DisplaySet, GeometryIssue};
use crate::volume;
use nalgebra::Vector3;

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
    /// A folder's stack as a volume, cut by a plane: axial, coronal, sagittal
    /// (through the volume's centre, covering it, square pixels at its finest
    /// spacing) or oblique (give --orientation).
    #[arg(long, value_enum, conflicts_with = "vr")]
    mpr: Option<MprArg>,
    /// A folder's stack volume-rendered: a transfer-function preset (bone,
    /// soft-tissue, angio, lung, mr), a TOML file of one (see
    /// assets/vr/bone.toml), or mip (the brightest value on each ray, through
    /// --window). --window moves a preset as it moves a window.
    #[arg(long, value_name = "PRESET|FILE|mip")]
    vr: Option<String>,
    /// With --vr: the camera's turn about the patient's long axis, degrees
    /// (0 from the front, 90 from the patient's left, 180 from behind).
    #[arg(long, value_name = "DEG", allow_hyphen_values = true, requires = "vr")]
    azimuth: Option<f64>,
    /// With --vr: the camera's height, degrees (90 from above the head, -90
    /// from below the feet).
    #[arg(long, value_name = "DEG", allow_hyphen_values = true, requires = "vr")]
    elevation: Option<f64>,
    /// With --vr: magnification (1 frames the whole volume).
    #[arg(long, value_name = "X", requires = "vr")]
    zoom: Option<f64>,
    /// With --vr: the step along each ray, mm (default half the finest voxel
    /// spacing).
    #[arg(long, value_name = "MM", requires = "vr")]
    step: Option<f64>,
    /// With --vr: no lighting (colour and opacity only).
    #[arg(long, requires = "vr")]
    no_shading: bool,
    /// With --mpr: the centre of the plane's first (top-left) pixel, X,Y,Z in mm
    /// (patient LPS), as Image Position (Patient).
    #[arg(
        long,
        value_name = "X,Y,Z",
        allow_hyphen_values = true,
        requires = "mpr"
    )]
    position: Option<String>,
    /// With --mpr: the row then column direction cosines, as Image Orientation
    /// (Patient).
    #[arg(
        long,
        value_name = "RX,RY,RZ,CX,CY,CZ",
        allow_hyphen_values = true,
        requires = "mpr"
    )]
    orientation: Option<String>,
    /// With --mpr: pixel spacing, mm (square pixels).
    #[arg(long, value_name = "MM", requires = "mpr")]
    spacing: Option<f64>,
    /// With --mpr or --vr: the picture's size in pixels.
    #[arg(long, value_name = "COLSxROWS")]
    size: Option<String>,
    /// With --mpr: a thick slab of this many mm along the plane's normal.
    #[arg(long, value_name = "MM", requires = "mpr")]
    slab: Option<f64>,
    /// How a slab's samples become one value.
    #[arg(long, value_enum, default_value_t = ModeArg::Mip, requires = "slab")]
    mode: ModeArg,
    /// With --mpr: nearest voxel instead of trilinear interpolation.
    #[arg(long, requires = "mpr")]
    nearest: bool,
    /// With --mpr: also write the plane as a derived DICOM image (new UIDs,
    /// DERIVED\SECONDARY\REFORMATTED, its own position and orientation, the
    /// source slices referenced).
    #[arg(long, value_name = "OUT.dcm", requires = "mpr")]
    dicom: Option<PathBuf>,
    /// With --mpr or --vr: cut the plane or cast the rays on the GPU (the
    /// volume in a 3-D texture, as the viewer does) instead of the CPU
    /// reference, and say how long a frame of it takes there.
    #[arg(long)]
    gpu: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MprArg {
    Axial,
    Coronal,
    Sagittal,
    Oblique,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    Mip,
    Minip,
    Avg,
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

/// `N` comma-separated finite numbers for `flag`.
fn parse_numbers<const N: usize>(flag: &str, what: &str, s: &str) -> Result<[f64; N]> {
    let bad = || Error::Usage(format!("{flag} expects {what}, got {s:?}"));
    let v: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let a: [f64; N] = v.try_into().map_err(|_| bad())?;
    if a.iter().all(|x| x.is_finite()) {
        Ok(a)
    } else {
        Err(bad())
    }
}

/// `--size COLSxROWS`.
fn parse_size(s: &str) -> Result<(usize, usize)> {
    let bad = || {
        Error::Usage(format!(
            "--size expects COLSxROWS (1 to 65535 each, e.g. 512x512), got {s:?}"
        ))
    };
    let (c, r) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let c: usize = c.trim().parse().map_err(|_| bad())?;
    let r: usize = r.trim().parse().map_err(|_| bad())?;
    if (1..=65535).contains(&c) && (1..=65535).contains(&r) {
        Ok((c, r))
    } else {
        Err(bad())
    }
}

/// `--orientation`: two unit vectors at right angles (normalised; refused when
/// they are not perpendicular within 0.001, as a DICOM reader would).
fn parse_orientation(s: &str) -> Result<(Vector3<f64>, Vector3<f64>)> {
    let o = parse_numbers::<6>(
        "--orientation",
        "six direction cosines RX,RY,RZ,CX,CY,CZ",
        s,
    )?;
    let r = Vector3::new(o[0], o[1], o[2]);
    let c = Vector3::new(o[3], o[4], o[5]);
    if r.norm() < 1e-6 || c.norm() < 1e-6 {
        return Err(Error::Usage(format!(
            "--orientation {s:?}: a direction of length 0"
        )));
    }
    let (r, c) = (r.normalize(), c.normalize());
    if r.dot(&c).abs() > 1e-3 {
        return Err(Error::Usage(format!(
            "--orientation {s:?}: the row and column directions are not at right angles"
        )));
    }
    Ok((r, c))
}

/// The largest stack in `dir` as a volume (its geometry's irregularities
/// said on stderr), and how long loading took (ms).
fn load_volume(dir: &Path) -> Result<(crate::scan::Scan, DisplaySet, volume::Volume, f64)> {
    let scan = scan_dir(dir)?;
    let set = largest_set(dir, &scan.headers)?;
    let started = std::time::Instant::now();
    let vol = volume::load(&set, &scan.headers)?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    for issue in &vol.issues {
        let what = match issue {
            GeometryIssue::UnevenSpacing { .. } => "sampled between the real slice positions",
            GeometryIssue::Gap { .. } => "the gap is left empty (padding), not filled in",
            GeometryIssue::GantryTilt { .. } => "sampled in patient coordinates",
            GeometryIssue::Duplicate { .. } => "",
        };
        eprintln!("warning: {issue}: {what}");
    }
    Ok((scan, set, vol, load_ms))
}

/// `lightbox render --mpr`.
fn cmd_render_mpr(a: &RenderArgs, kind: MprArg, opts: &RenderOptions, out: &Path) -> Result<()> {
    if !a.file.is_dir() {
        return Err(Error::Usage(format!(
            "--mpr needs a folder holding a stack, not the file {}",
            a.file.display()
        )));
    }
    let (row, col) = match (kind, &a.orientation) {
        (_, Some(o)) => parse_orientation(o)?,
        (MprArg::Oblique, None) => {
            return Err(Error::Usage(
                "--mpr oblique needs --orientation RX,RY,RZ,CX,CY,CZ".into(),
            ));
        }
        (MprArg::Axial, None) => (Vector3::x(), Vector3::y()),
        (MprArg::Coronal, None) => (Vector3::x(), -Vector3::z()),
        (MprArg::Sagittal, None) => (Vector3::y(), -Vector3::z()),
    };
    if let Some(sp) = a.spacing
        && !(sp.is_finite() && sp > 0.0)
    {
        return Err(Error::Usage(format!(
            "--spacing expects a positive number of mm, got {sp}"
        )));
    }
    let size = a.size.as_deref().map(parse_size).transpose()?;
    let slab = match a.slab {
        None => None,
        Some(t) if t.is_finite() && t > 0.0 => Some(Slab {
            thickness_mm: t,
            mode: match a.mode {
                ModeArg::Mip => SlabMode::Mip,
                ModeArg::Minip => SlabMode::MinIp,
                ModeArg::Avg => SlabMode::Average,
            },
        }),
        Some(t) => {
            return Err(Error::Usage(format!(
                "--slab expects a positive thickness in mm, got {t}"
            )));
        }
    };
    let (scan, set, vol, load_ms) = load_volume(&a.file)?;
    let mut spec = reslice::centred_plane(&vol, row, col, a.spacing, size);
    if let Some(p) = &a.position {
        let p = parse_numbers::<3>("--position", "X,Y,Z in mm", p)?;
        spec.plane.position = nalgebra::Point3::new(p[0], p[1], p[2]);
    }
    // Outside the volume: its lowest value (air on CT), as the stored format allows.
    let padding = vol.modality_range().map_or(0.0, |(lo, _)| lo);
    let options = reslice::Options {
        interpolation: if a.nearest {
            Interpolation::Nearest
        } else {
            Interpolation::Trilinear
        },
        slab,
        padding,
    };
    let label = match kind {
        MprArg::Axial => "axial",
        MprArg::Coronal => "coronal",
        MprArg::Sagittal => "sagittal",
        MprArg::Oblique => "oblique",
    };
    let made = reformat::reformat(&reformat::Request {
        set: &set,
        headers: &scan.headers,
        volume: &vol,
        spec: spec.clone(),
        options,
        label,
    })?;
    if made.clamped > 0 {
        eprintln!(
            "warning: {} samples did not fit the images' stored values and were clamped",
            made.clamped
        );
    }
    let pixels = made.image.frame(0)?;
    let mut r = render::render(&made.image.header, 0, &pixels, opts)?;
    // The GPU's picture of the same plane, in the same display plan.
    let gpu_note = if a.gpu {
        let (plan, _) = render::display_plan(&made.image.header, 0, &pixels, opts)?;
        let (grey, note) = gpu_plane(&vol, &spec, &options, &plan)?;
        if r.channels != 1 || r.max_level != 255 {
            return Err(Error::Usage(
                "--gpu renders 8-bit grey planes (leave out --sixteen-bit)".into(),
            ));
        }
        r.data = grey;
        note
    } else {
        String::new()
    };
    r.write_png(out)?;
    let p = &spec.plane;
    out!(
        "{label} {}×{} at {} mm{}, first pixel at ({:.3}, {:.3}, {:.3}) mm, VOI {} → {} \
         (volume {load_ms:.0} ms, reslice {:.1} ms){gpu_note}",
        spec.columns,
        spec.rows,
        format_mm(p.spacing_mm[0]),
        slab.map_or(String::new(), |s| format!(
            ", {} {} mm",
            s.mode.label(),
            format_mm(s.thickness_mm)
        )),
        p.position.x,
        p.position.y,
        p.position.z,
        r.voi_description,
        out.display(),
        made.reslice_ms
    );
    if let Some(path) = &a.dicom {
        made.write(path)?;
        out!(
            "derived image ({} source slices referenced) → {}",
            made.sources,
            path.display()
        );
    }
    Ok(())
}

/// The plane cut and displayed on the GPU: its grey levels, and a note of
/// the adapter, the upload and a frame's time.
fn gpu_plane(
    vol: &crate::volume::Volume,
    spec: &reslice::PlaneSpec,
    options: &reslice::Options,
    plan: &crate::imaging::render::DisplayPlan,
) -> Result<(Vec<u16>, String)> {
    use crate::render::{GpuMpr, Placement, headless_device};
    use eframe::egui_wgpu::wgpu;
    let (device, queue, adapter) = headless_device()?;
    let gpu = GpuMpr::new(&device, wgpu::TextureFormat::Rgba8Unorm);
    let t0 = std::time::Instant::now();
    let texture = gpu.upload(&device, &queue, vol)?;
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Gpu(e.to_string()))?;
    let upload_ms = t0.elapsed().as_secs_f64() * 1e3;
    let sampling =
        reslice::sampling(vol, spec, options).map_err(|e| Error::Usage(e.to_string()))?;
    let draw = gpu.prepare(
        &device,
        &texture,
        vol,
        &sampling,
        options,
        (spec.columns as u32, spec.rows as u32),
        plan,
        &Placement::identity(),
    );
    let rgba = gpu.render_offscreen(&device, &queue, &draw)?;
    let frame_ms = gpu.time_frames(&device, &queue, &draw, 10)?;
    let grey = rgba.chunks_exact(4).map(|p| p[0] as u16).collect();
    Ok((
        grey,
        format!(
            "; GPU {adapter}: upload {upload_ms:.0} ms ({} MB), {frame_ms:.2} ms a frame",
            texture.bytes >> 20
        ),
    ))
}

use crate::imaging::reslice::format_mm;

/// The view ray-cast on the GPU: its RGB, and a note of the adapter, the
/// upload and a frame's time.
fn gpu_vr(
    vol: &crate::volume::Volume,
    plan: &crate::imaging::vr::Plan,
    opts: &crate::imaging::vr::Options,
) -> Result<(Vec<u8>, String)> {
    use crate::imaging::vr::Occupancy;
    use crate::render::{GpuMpr, GpuVr, headless_device};
    use eframe::egui_wgpu::wgpu;
    let (device, queue, adapter) = headless_device()?;
    let format = wgpu::TextureFormat::Rgba8Unorm;
    let t0 = std::time::Instant::now();
    let texture = GpuMpr::new(&device, format).upload(&device, &queue, vol)?;
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Gpu(e.to_string()))?;
    let upload_ms = t0.elapsed().as_secs_f64() * 1e3;
    let occupancy = Occupancy::of(vol).map_err(|e| Error::Series(format!("--vr: {e}")))?;
    let gpu = GpuVr::new(&device, format);
    let draw = gpu.prepare(&device, &texture, vol, plan, opts, &occupancy)?;
    let rgba = gpu.render_offscreen(&device, &queue, &draw)?;
    let frame_ms = gpu.time_frames(&device, &queue, &draw, 5)?;
    let rgb = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    Ok((
        rgb,
        format!(
            "; GPU {adapter}: upload {upload_ms:.0} ms ({} MB), {frame_ms:.1} ms a frame",
            texture.bytes >> 20
        ),
    ))
}

/// `lightbox render --vr`.
fn cmd_render_vr(a: &RenderArgs, what: &str, out: &Path) -> Result<()> {
    use crate::imaging::reslice::Voxels;
    use crate::imaging::vr::{self, Mode, TransferFunction};
    if !a.file.is_dir() {
        return Err(Error::Usage(format!(
            "--vr needs a folder holding a stack, not the file {}",
            a.file.display()
        )));
    }
    let (columns, rows) = match a.size.as_deref() {
        Some(s) => parse_size(s)?,
        None => (512, 512),
    };
    for (flag, v) in [("--zoom", a.zoom), ("--step", a.step)] {
        if let Some(v) = v
            && !(v.is_finite() && v > 0.0)
        {
            return Err(Error::Usage(format!(
                "{flag} expects a positive number, got {v}"
            )));
        }
    }
    for (flag, v) in [("--azimuth", a.azimuth), ("--elevation", a.elevation)] {
        if let Some(v) = v
            && !v.is_finite()
        {
            return Err(Error::Usage(format!("{flag} expects degrees, got {v}")));
        }
    }
    let window = a.window.as_deref().map(parse_window).transpose()?;
    let mip = what.eq_ignore_ascii_case("mip");
    let tf = if mip {
        None
    } else {
        Some(TransferFunction::load(what).map_err(|e| Error::Usage(format!("--vr: {e}")))?)
    };
    let (scan, set, vol, load_ms) = load_volume(&a.file)?;
    let range = vol
        .modality_range()
        .ok_or_else(|| Error::Series(format!("{}: the volume is empty", a.file.display())))?;
    let (mode, label) = match tf {
        None => {
            // No window given: the stack's own first window, else its range.
            let w = window
                .or_else(|| {
                    let f = set.frames.first()?;
                    let h = scan.headers.get(f.instance)?;
                    h.frame(f.frame).ok()?.windows.first().cloned()
                })
                .unwrap_or_else(|| {
                    Window::new((range.0 + range.1) / 2.0, (range.1 - range.0).max(1.0))
                });
            let label = format!("MIP, window {}/{}", w.center, w.width);
            (Mode::Mip(w), label)
        }
        Some(tf) => {
            let mut tf = tf.for_range(range);
            if let Some(w) = &window {
                tf = tf.with_window(w.center, w.width);
            }
            let label = format!("{} (window {}/{})", tf.name, tf.window.0, tf.window.1);
            (Mode::Composite(tf), label)
        }
    };
    let view = vr::View {
        pan: [0.0, 0.0],
        azimuth_deg: a.azimuth.unwrap_or(0.0),
        elevation_deg: a.elevation.unwrap_or(0.0),
        columns,
        rows,
        zoom: a.zoom.unwrap_or(1.0),
    };
    let mut opts = vr::Options::new(mode);
    opts.step_mm = a.step;
    opts.shading = !a.no_shading;
    let started = std::time::Instant::now();
    let made = vr::render(&vol, &view, &opts).map_err(|e| Error::Series(format!("--vr: {e}")))?;
    let render_ms = started.elapsed().as_secs_f64() * 1e3;
    let (rgb, gpu_note) = if a.gpu {
        gpu_vr(&vol, &made.plan, &opts)?
    } else {
        (made.rgb, String::new())
    };
    let img = image::RgbImage::from_raw(columns as u32, rows as u32, rgb).ok_or_else(|| {
        Error::Write {
            path: out.to_path_buf(),
            reason: "buffer size does not match image size".into(),
        }
    })?;
    img.save(out).map_err(|e| Error::Write {
        path: out.to_path_buf(),
        reason: e.to_string(),
    })?;
    let [left, right, top, bottom] = made.plan.camera.edge_labels();
    let total = made.samples + made.skipped;
    let [nx, ny, nz] = vol.dims();
    out!(
        "volume rendering {label}, {columns}×{rows}, azimuth {}° elevation {}°, edges: left {left}, right {right}, top {top}, bottom {bottom}; \
         {nx}×{ny}×{nz} voxels, {:.1} M samples at {} mm ({:.1}% passed over in empty bricks) \
         (volume {load_ms:.0} ms, CPU render {render_ms:.0} ms){gpu_note} → {}",
        view.azimuth_deg,
        view.elevation_deg,
        total as f64 / 1e6,
        format_mm(made.plan.step_mm),
        if total > 0 {
            100.0 * made.skipped as f64 / total as f64
        } else {
            0.0
        },
        out.display()
    );
    Ok(())
}

/// `lightbox render`.
pub(super) fn cmd_render(a: RenderArgs) -> Result<ExitCode> {
    let opts = render_options(&a)?;
    if let Some(kind) = a.mpr {
        let out = a.out.clone().unwrap_or_else(|| {
            PathBuf::from(format!("{}.png", format!("{kind:?}").to_lowercase()))
        });
        cmd_render_mpr(&a, kind, &opts, &out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(what) = &a.vr {
        let out = a.out.clone().unwrap_or_else(|| PathBuf::from("vr.png"));
        cmd_render_vr(&a, what, &out)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.gpu {
        return Err(Error::Usage(
            "--gpu goes with --mpr or --vr (a single image is rendered on the CPU)".into(),
        ));
    }
    if a.size.is_some() {
        return Err(Error::Usage(
            "--size goes with --mpr or --vr (a single image keeps its own size)".into(),
        ));
    }
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

/// The largest stack among `headers` (read from `dir`).
fn largest_set(dir: &Path, headers: &[crate::dicom::ImageHeader]) -> Result<DisplaySet> {
    model::build(headers)
        .iter()
        .flat_map(|p| p.studies.iter())
        .flat_map(|s| s.series.iter())
        .flat_map(|s| s.display_sets.iter())
        .max_by_key(|d| d.frames.len())
        .cloned()
        .ok_or_else(|| Error::Series(format!("{}: no images found", dir.display())))
}

/// The file and frame of slice `index` (default: middle) of the largest stack in a folder.
fn pick_slice(dir: &Path, index: Option<usize>) -> Result<(PathBuf, u32)> {
    let scan = scan_dir(dir)?;
    let set = largest_set(dir, &scan.headers)?;
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
