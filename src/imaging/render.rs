//! Render one frame to display levels through the CPU reference pipeline.

use serde::Serialize;

use crate::dicom::header::{ImageHeader, Photometric};
use crate::error::{Error, Result};
use crate::values::{FramePixels, Samples};

use super::lut::{self, GrayPipeline, ModalityTransform, Voi, VoiFunction, Window};

/// Which VOI to apply.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum VoiChoice {
    /// The file's first window, else its first VOI LUT, else a default: the
    /// soft-tissue preset for CT, the frame's min-max otherwise.
    #[default]
    Auto,
    /// The n-th (1-based) VOI of the file: its windows first, then its VOI LUTs.
    FromFile(usize),
    /// An explicit window.
    Explicit(Window),
    /// Centre and width from the frame's smallest and largest modality values.
    MinMax,
    /// A named preset (see [`lut::CT_PRESETS`]).
    Preset(String),
    /// No VOI: the full range of modality values the format can hold.
    None,
}

/// Rendering options.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RenderOptions {
    pub voi: VoiChoice,
    /// Override the file's VOI LUT Function.
    pub function: Option<VoiFunction>,
    /// Invert in addition to what the image asks for.
    pub invert: bool,
    /// 16-bit output levels instead of 8-bit.
    pub sixteen_bit: bool,
    /// Burn the overlay planes (60xx) in, at the brightest level (DCMTK's
    /// default "replace" mode). The viewer draws them itself instead.
    pub overlays: bool,
    /// Show the whole image even where the Display Shutter hides it.
    pub ignore_shutter: bool,
}

/// A rendered frame.
#[derive(Debug, Clone, Serialize)]
pub struct Rendered {
    pub width: u32,
    pub height: u32,
    /// 1 (grey) or 3 (RGB).
    pub channels: u8,
    /// 255 or 65535.
    pub max_level: u16,
    #[serde(skip)]
    pub data: Vec<u16>,
    /// What VOI was applied, for annotations ("W 400 L 40 (file)").
    pub voi_description: String,
}

/// Resolve the VOI choice for a grayscale frame.
pub fn resolve_voi(
    header: &ImageHeader,
    frame: u32,
    pixels: &FramePixels,
    opts: &RenderOptions,
) -> Result<(Voi, String)> {
    let info = header.frame(frame)?;
    let modality = header.modality_transform(info);
    let function = opts.function.unwrap_or(header.voi_function);
    let integers = header.modality.as_deref() == Some("CT");
    let win = |w: Window, what: &str| {
        let d = window_text(&w, function, integers, what);
        (
            Voi::Window {
                window: w,
                function,
            },
            d,
        )
    };
    let min_max = || -> Result<(Voi, String)> {
        let (lo, hi) = modality_min_max(&modality, pixels)
            .ok_or_else(|| Error::Usage("empty frame".into()))?;
        // As DCMTK and Supplement 33: centre (min+max+1)/2, width max-min+1 maps min to
        // the lowest and max to the highest output level.
        Ok(win(
            Window::new((lo + hi + 1.0) / 2.0, hi - lo + 1.0),
            "min-max",
        ))
    };
    match &opts.voi {
        VoiChoice::Explicit(w) => Ok(win(w.clone(), "user")),
        VoiChoice::MinMax => min_max(),
        VoiChoice::Preset(name) => {
            let w = lut::preset(name).ok_or_else(|| {
                let names: Vec<&str> = lut::CT_PRESETS.iter().map(|p| p.0).collect();
                Error::Usage(format!(
                    "unknown preset {name:?}; known: {}",
                    names.join(", ")
                ))
            })?;
            Ok(win(w, name))
        }
        VoiChoice::FromFile(n) => {
            let nw = info.windows.len();
            if *n >= 1 && *n <= nw {
                Ok(win(
                    info.windows[n - 1].clone(),
                    &format!("file window {n}"),
                ))
            } else if *n > nw && *n - nw <= header.voi_luts.len() {
                let l = header.voi_luts[n - nw - 1].clone();
                Ok((Voi::Lut(l), format!("file VOI LUT {}", n - nw)))
            } else {
                Err(Error::Usage(format!(
                    "{}: VOI {n} does not exist: the image has {nw} window(s) and {} VOI LUT(s)",
                    header.path.display(),
                    header.voi_luts.len()
                )))
            }
        }
        VoiChoice::None => {
            let (lo, hi) = full_range(header, &modality);
            Ok((
                Voi::Identity { min: lo, max: hi },
                "none (full range)".into(),
            ))
        }
        VoiChoice::Auto => {
            if let Some(w) = info.windows.first() {
                Ok(win(w.clone(), "file"))
            } else if let Some(l) = header.voi_luts.first() {
                Ok((Voi::Lut(l.clone()), "file VOI LUT".into()))
            } else if header.modality.as_deref() == Some("CT")
                && matches!(modality, ModalityTransform::Rescale(_))
            {
                let w = lut::preset("abdomen").ok_or_else(|| Error::Usage("preset".into()))?;
                Ok(win(w, "default soft tissue"))
            } else {
                min_max()
            }
        }
    }
}

/// "C 40 W 400 (file)": centre and width at the precision of the modality (whole
/// numbers for CT's Hounsfield units, else at most two decimals, trailing zeros
/// dropped), the VOI LUT Function when it is not the default linear one, and
/// where the window came from.
pub fn window_text(w: &Window, function: VoiFunction, integers: bool, what: &str) -> String {
    let num = |v: f64| {
        let s = if integers {
            format!("{:.0}", v.round() + 0.0)
        } else {
            let s = format!("{v:.2}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        };
        if s == "-0" { "0".to_string() } else { s }
    };
    let function = match function {
        VoiFunction::Linear => "",
        VoiFunction::LinearExact => " linear exact",
        VoiFunction::Sigmoid => " sigmoid",
    };
    format!("C {} W {}{function} ({what})", num(w.center), num(w.width))
}

/// Smallest and largest modality value over a grayscale frame.
fn modality_min_max(m: &ModalityTransform, pixels: &FramePixels) -> Option<(f64, f64)> {
    let (lo, hi) = pixels.min_max()?;
    match m {
        ModalityTransform::Rescale(r) => {
            let (a, b) = (r.apply(lo as f64), r.apply(hi as f64));
            Some((a.min(b), a.max(b)))
        }
        ModalityTransform::Lut(_) => {
            let Samples::Mono(v) = &pixels.samples else {
                return None;
            };
            let mut lo = f64::INFINITY;
            let mut hi = f64::NEG_INFINITY;
            for &x in v {
                let y = m.apply(x as i64);
                lo = lo.min(y);
                hi = hi.max(y);
            }
            Some((lo, hi))
        }
    }
}

/// Range of modality values the stored format can produce.
fn full_range(header: &ImageHeader, m: &ModalityTransform) -> (f64, f64) {
    let (lo, hi) = header
        .pixel
        .as_ref()
        .map(|p| p.stored_range())
        .unwrap_or((0, 255));
    match m {
        ModalityTransform::Rescale(r) => {
            let (a, b) = (r.apply(lo as f64), r.apply(hi as f64));
            (a.min(b), a.max(b))
        }
        ModalityTransform::Lut(l) => (0.0, l.max_output()),
    }
}

/// Whether the image asks to be inverted after VOI: MONOCHROME1, or an explicit
/// Presentation LUT Shape INVERSE on MONOCHROME2 (for MONOCHROME1 the standard
/// requires INVERSE, which describes the same single inversion).
pub fn image_inverts(header: &ImageHeader) -> bool {
    let mono1 = header
        .pixel
        .as_ref()
        .is_some_and(|p| p.photometric == Photometric::Monochrome1);
    let inverse_shape = header
        .presentation_lut_shape
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("INVERSE"));
    mono1 || inverse_shape
}

/// How one frame becomes display values: what the CPU renderer applies below and
/// what the GPU renderer loads into its uniforms and LUT buffer — one decision, two
/// executions.
#[derive(Debug, Clone, PartialEq)]
pub enum DisplayPlan {
    /// Grayscale: Modality LUT ▸ VOI ▸ inversion.
    Gray(GrayPipeline),
    /// PALETTE COLOR: stored value ▸ red/green/blue LUTs.
    Palette(crate::values::Palette),
    /// True colour, displayed as stored (inverted if asked).
    Rgb { bits_stored: u16, invert: bool },
}

/// Decide how a frame is displayed, and describe the VOI for annotations.
pub fn display_plan(
    header: &ImageHeader,
    frame: u32,
    pixels: &FramePixels,
    opts: &RenderOptions,
) -> Result<(DisplayPlan, String)> {
    let is_palette = header
        .pixel
        .as_ref()
        .is_some_and(|p| p.photometric == Photometric::PaletteColor);
    match &pixels.samples {
        Samples::Mono(_) if is_palette => {
            let pal = header.palette.as_ref().ok_or_else(|| Error::Missing {
                path: header.path.clone(),
                attribute: "Palette Color Lookup Table",
            })?;
            Ok((DisplayPlan::Palette(pal.clone()), "palette".into()))
        }
        Samples::Mono(_) => {
            let info = header.frame(frame)?;
            let (voi, voi_description) = resolve_voi(header, frame, pixels, opts)?;
            Ok((
                DisplayPlan::Gray(GrayPipeline {
                    modality: header.modality_transform(info),
                    voi,
                    invert: image_inverts(header) ^ opts.invert,
                }),
                voi_description,
            ))
        }
        Samples::Rgb(_) => Ok((
            DisplayPlan::Rgb {
                bits_stored: pixels.bits_stored,
                invert: opts.invert,
            },
            "true colour".into(),
        )),
    }
}

/// Render one decoded frame.
pub fn render(
    header: &ImageHeader,
    frame: u32,
    pixels: &FramePixels,
    opts: &RenderOptions,
) -> Result<Rendered> {
    let max_level: u16 = if opts.sixteen_bit { 65535 } else { 255 };
    let (width, height) = (pixels.columns, pixels.rows);
    let (plan, voi_description) = display_plan(header, frame, pixels, opts)?;
    let (channels, data) = match (&plan, &pixels.samples) {
        (DisplayPlan::Palette(pal), Samples::Mono(v)) => {
            let scale = max_level as f64;
            let mut data = Vec::with_capacity(v.len() * 3);
            for &x in v {
                for l in [&pal.red, &pal.green, &pal.blue] {
                    let y = l.lookup(x as i64) as f64 / l.max_output();
                    data.push((y * scale).round() as u16);
                }
            }
            (3, data)
        }
        (DisplayPlan::Gray(pipeline), Samples::Mono(v)) => {
            let (lo, hi) = pixels.min_max().unwrap_or((0, 0));
            let data = if (hi as i64 - lo as i64) <= (1 << 20) {
                // One evaluation per distinct stored value.
                let table = pipeline.table(lo as i64, hi as i64, max_level);
                v.iter().map(|&x| table[(x - lo) as usize]).collect()
            } else {
                v.iter()
                    .map(|&x| pipeline.level(x as i64, max_level))
                    .collect()
            };
            (1, data)
        }
        (
            DisplayPlan::Rgb {
                bits_stored,
                invert,
            },
            Samples::Rgb(v),
        ) => {
            // True colour is displayed as stored (no VOI), scaled to the output depth;
            // inversion, if asked for, applies to each channel.
            let in_max = ((1u64 << (*bits_stored).clamp(1, 32)) - 1) as f64;
            let data = v
                .iter()
                .map(|&s| {
                    let y = s as f64 / in_max;
                    let y = if *invert { 1.0 - y } else { y };
                    lut::quantize(y, max_level)
                })
                .collect();
            (3, data)
        }
        _ => {
            return Err(Error::Series(format!(
                "{}: display plan does not fit the decoded samples",
                header.path.display()
            )));
        }
    };
    let mut data = data;
    let ch = channels as usize;
    if let (Some(sh), false) = (&header.shutter, opts.ignore_shutter) {
        let level = lut::quantize(sh.value as f64 / 65535.0, max_level);
        for r in 0..height {
            for c in 0..width {
                if !sh.shows(c, r) {
                    let i = (r as usize * width as usize + c as usize) * ch;
                    data[i..i + ch].fill(level);
                }
            }
        }
    }
    if opts.overlays {
        for o in header.overlays.iter().filter(|o| o.on_frame(frame)) {
            for r in 0..height {
                for c in 0..width {
                    if o.covers(frame, c, r) {
                        let i = (r as usize * width as usize + c as usize) * ch;
                        data[i..i + ch].fill(max_level);
                    }
                }
            }
        }
    }
    Ok(Rendered {
        width,
        height,
        channels,
        max_level,
        data,
        voi_description,
    })
}

impl Rendered {
    /// Write as PNG (8- or 16-bit, grey or RGB).
    pub fn write_png(&self, path: &std::path::Path) -> Result<()> {
        use image::{ImageBuffer, Luma, Rgb};
        let err = |e: image::ImageError| Error::Write {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let (w, h) = (self.width, self.height);
        let bad = || Error::Write {
            path: path.to_path_buf(),
            reason: "buffer size does not match image size".into(),
        };
        match (self.channels, self.max_level) {
            (1, 255) => {
                let d: Vec<u8> = self.data.iter().map(|&x| x as u8).collect();
                ImageBuffer::<Luma<u8>, _>::from_raw(w, h, d)
                    .ok_or_else(bad)?
                    .save(path)
                    .map_err(err)
            }
            (1, _) => ImageBuffer::<Luma<u16>, _>::from_raw(w, h, self.data.clone())
                .ok_or_else(bad)?
                .save(path)
                .map_err(err),
            (_, 255) => {
                let d: Vec<u8> = self.data.iter().map(|&x| x as u8).collect();
                ImageBuffer::<Rgb<u8>, _>::from_raw(w, h, d)
                    .ok_or_else(bad)?
                    .save(path)
                    .map_err(err)
            }
            _ => ImageBuffer::<Rgb<u16>, _>::from_raw(w, h, self.data.clone())
                .ok_or_else(bad)?
                .save(path)
                .map_err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_values_are_written_at_the_modality_precision() {
        let w = Window::new(138.26724, 645.6681);
        let lin = VoiFunction::Linear;
        assert_eq!(window_text(&w, lin, true, "user"), "C 138 W 646 (user)");
        assert_eq!(
            window_text(&w, lin, false, "user"),
            "C 138.27 W 645.67 (user)"
        );
        let whole = Window::new(40.0, 400.0);
        assert_eq!(window_text(&whole, lin, false, "file"), "C 40 W 400 (file)");
        let half = Window::new(-0.3, 2.5);
        assert_eq!(
            window_text(&half, VoiFunction::Sigmoid, true, "file"),
            "C 0 W 3 sigmoid (file)"
        );
        assert_eq!(
            window_text(&Window::new(-0.001, 2.5), lin, false, "x"),
            "C 0 W 2.5 (x)"
        );
    }
}
