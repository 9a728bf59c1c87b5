//! JPEG 2000 previews (the quick look the viewer shows while the full frames
//! decode): a frame encoded by GDCM (`gdcmconv --j2k`) and decoded at a lower
//! resolution level must hold, sample for sample, what OpenJPEG's own command
//! line decoder (`opj_decompress -r N`) gives for that level, each sample
//! covering its square of the full grid; and it must be a picture of the same
//! image (close to the full decode), with the header's size.

mod common;
#[path = "common/viewer.rs"]
mod viewer;

use std::path::Path;
use std::process::Command;

use lightbox::dicom::{Image, Samples};
use lightbox::synth::{self, SeriesSpec};

/// Encode `src` with `gdcmconv --j2k`, and its codestream as `opj_decompress`
/// gives it at `levels` fewer resolution levels (little-endian samples).
fn encode_and_oracle(src: &Path, dst: &Path, levels: u32, signed: bool) -> Vec<i32> {
    let gdcmconv = common::require_tool("gdcmconv", "libgdcm-tools");
    common::run_ok(Command::new(gdcmconv).arg("--j2k").arg(src).arg(dst));
    let gdcmraw = common::require_tool("gdcmraw", "libgdcm-tools");
    let j2k = dst.with_extension("j2k");
    common::run_ok(Command::new(gdcmraw).arg("-i").arg(dst).arg("-o").arg(&j2k));
    let opj = common::require_tool("opj_decompress", "libopenjp2-tools");
    let raw = dst.with_extension("rawl");
    common::run_ok(
        Command::new(opj)
            .arg("-i")
            .arg(&j2k)
            .arg("-o")
            .arg(&raw)
            .args(["-r", &levels.to_string()]),
    );
    let bytes = std::fs::read(&raw).expect("opj_decompress output");
    bytes
        .chunks_exact(2)
        .map(|c| {
            if signed {
                i16::from_le_bytes([c[0], c[1]]) as i32
            } else {
                u16::from_le_bytes([c[0], c[1]]) as i32
            }
        })
        .collect()
}

fn mono(s: &Samples) -> &[i32] {
    match s {
        Samples::Mono(v) => v,
        Samples::Rgb(_) => panic!("grey expected"),
    }
}

/// The preview against the oracle and against the full decode.
fn check(file: &Path, levels: u32, oracle: &[i32]) {
    let img = Image::open(file).expect("encoded");
    let preview = img
        .frame_preview(0)
        .expect("preview")
        .expect("a JPEG 2000 frame this size has a preview");
    assert_eq!(preview.levels, levels, "{}", file.display());
    let px = preview.upsampled();
    let full = img.frame(0).expect("full");
    assert_eq!((px.rows, px.columns), (full.rows, full.columns));
    let (w, h) = (px.columns as usize, px.rows as usize);
    let (sw, sh) = (w.div_ceil(1 << levels), h.div_ceil(1 << levels));
    assert_eq!(oracle.len(), sw * sh, "opj_decompress's reduced size");
    let v = mono(&px.samples);
    let mut differ = 0;
    for y in 0..h {
        for x in 0..w {
            if v[y * w + x] != oracle[(y >> levels) * sw + (x >> levels)] {
                differ += 1;
            }
        }
    }
    assert_eq!(
        differ, 0,
        "{differ} samples differ from opj_decompress -r {levels}"
    );
    // A picture of the same image: on average close to the full decode.
    let f = mono(&full.samples);
    let (lo, hi) = f
        .iter()
        .fold((i32::MAX, i32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
    let mean = v
        .iter()
        .zip(f)
        .map(|(a, b)| (a - b).unsigned_abs() as f64)
        .sum::<f64>()
        / v.len() as f64;
    assert!(
        mean < 0.05 * (hi - lo) as f64,
        "mean difference {mean:.1} over a range of {}",
        hi - lo
    );
}

#[test]
fn a_jpeg2000_preview_is_openjpegs_reduced_decode_on_the_full_grid() {
    let tmp = common::tempdir();
    // Unsigned 12-bit CT, 300² (odd reduced size: 150 → 2 levels would be 75,
    // below the preview's 128 minimum, so 1 level).
    let ct = tmp.path().join("ct");
    synth::write_ct(
        &ct,
        &synth::CtSpec {
            slices: 1,
            size: 300,
            ..Default::default()
        },
    )
    .expect("ct");
    let src = lightbox::scan::list_files(&ct).expect("list")[0].clone();
    let dst = tmp.path().join("ct-j2k.dcm");
    let oracle = encode_and_oracle(&src, &dst, 1, false);
    check(&dst, 1, &oracle);
    // Signed 16-bit, 520² with smooth content and extremes: 2 levels (130).
    let mut s16 = SeriesSpec::axial("signed16-preview", 1, 520, 1.0);
    s16.bits_stored = 16;
    s16.signed = true;
    s16.rescale = None;
    let dir = tmp.path().join("s16");
    synth::write_series(&dir, &s16, |_, c, r| {
        if (c, r) == (0, 0) {
            -32768
        } else if (c, r) == (1, 0) {
            32767
        } else {
            ((c as f64 / 40.0).sin() * 20000.0 + r as f64 * 20.0 - 5000.0) as i32
        }
    })
    .expect("s16");
    let src = lightbox::scan::list_files(&dir).expect("list")[0].clone();
    let dst = tmp.path().join("s16-j2k.dcm");
    let oracle = encode_and_oracle(&src, &dst, 2, true);
    assert!(
        oracle.iter().any(|&x| x < 0),
        "signed values reach the oracle"
    );
    check(&dst, 2, &oracle);
    // No preview for what has none to give: an uncompressed frame, or a
    // JPEG 2000 frame too small to gain.
    assert!(
        Image::open(&src)
            .expect("native")
            .frame_preview(0)
            .expect("no error")
            .is_none()
    );
    let small = tmp.path().join("small");
    synth::write_ct(
        &small,
        &synth::CtSpec {
            slices: 1,
            size: 200,
            ..Default::default()
        },
    )
    .expect("small");
    let src = lightbox::scan::list_files(&small).expect("list")[0].clone();
    let dst = tmp.path().join("small-j2k.dcm");
    let gdcmconv = common::require_tool("gdcmconv", "libgdcm-tools");
    common::run_ok(Command::new(gdcmconv).arg("--j2k").arg(&src).arg(&dst));
    assert!(
        Image::open(&dst)
            .expect("small J2K")
            .frame_preview(0)
            .expect("no error")
            .is_none()
    );
}

/// A 300² CT of `slices` slices, every file encoded by `gdcmconv --j2k`.
fn j2k_stack(dir: &Path, slices: usize, size: usize) -> Vec<std::path::PathBuf> {
    let src = dir.join("native");
    synth::write_ct(
        &src,
        &synth::CtSpec {
            slices,
            size,
            ..Default::default()
        },
    )
    .expect("ct");
    let out = dir.join("j2k");
    std::fs::create_dir_all(&out).expect("mkdir");
    let gdcmconv = common::require_tool("gdcmconv", "libgdcm-tools");
    lightbox::scan::list_files(&src)
        .expect("list")
        .iter()
        .map(|f| {
            let dst = out.join(f.file_name().expect("name"));
            common::run_ok(Command::new(&gdcmconv).arg("--j2k").arg(f).arg(&dst));
            dst
        })
        .collect()
}

/// The loader sends a JPEG 2000 stack's previews first (every frame but the
/// middle one, which comes in full at once), then every frame in full: no
/// preview after its frame's full decode, each the frame's own.
#[test]
fn the_loader_sends_a_jpeg2000_stacks_previews_before_its_full_frames() {
    use lightbox::ui::loader::{self, Loaded};
    use std::collections::HashMap;
    use std::time::{Duration, Instant};
    let tmp = common::tempdir();
    let files = j2k_stack(tmp.path(), 12, 300);
    let (tx, rx) = loader::channel_pair();
    loader::load(files, Vec::new(), tx, eframe::egui::Context::default()).expect("loader");
    let start = Instant::now();
    let mut headers = None;
    let mut mid = None;
    // Per frame: the order its messages came in (preview levels or full).
    let mut seen: HashMap<lightbox::model::FrameRef, Vec<Option<u32>>> = HashMap::new();
    let mut order = Vec::new();
    let mut full = HashMap::new();
    while full.len() < 12 {
        let left = Duration::from_secs(60).saturating_sub(start.elapsed());
        assert!(
            !left.is_zero(),
            "loading: {} of 12 frames in full",
            full.len()
        );
        match rx.recv_timeout(left) {
            Ok(Loaded::Study {
                headers: h, sets, ..
            }) => {
                assert_eq!(sets.len(), 1, "one stack");
                let frames = &sets[0].set.frames;
                mid = Some(frames[frames.len() / 2]);
                headers = Some(h);
            }
            Ok(Loaded::Frame {
                at,
                pixels,
                preview,
            }) => {
                let px = pixels.expect("decoded").expand();
                let h = &headers.as_ref().expect("the study first")[at.instance];
                let img = Image::open(&h.path).expect("open");
                match preview {
                    Some(levels) => {
                        let want = img.frame_preview(at.frame).expect("ok").expect("some");
                        assert_eq!(
                            (levels, &px),
                            (want.levels, &want.upsampled()),
                            "the frame's own preview"
                        );
                    }
                    None => {
                        assert_eq!(px, img.frame(at.frame).expect("full"), "the frame itself");
                        full.insert(at, ());
                    }
                }
                seen.entry(at).or_default().push(preview);
                order.push(preview.is_some());
            }
            Err(e) => panic!("the loader stopped: {e}"),
        }
    }
    let mid = mid.expect("a middle frame");
    for (at, msgs) in &seen {
        if *at == mid {
            assert_eq!(msgs, &vec![None], "the middle frame in full only");
        } else {
            assert_eq!(msgs, &vec![Some(1), None], "a preview, then the frame");
        }
    }
    // Previews all come before the full frames other than the middle one.
    let last_preview = order.iter().rposition(|&p| p).expect("previews");
    let fulls_before = order[..last_preview].iter().filter(|&&p| !p).count();
    assert!(
        fulls_before <= 1,
        "{fulls_before} full frames before the last preview"
    );
}

/// In the viewer: a JPEG 2000 stack is on screen whole as previews before it
/// is decoded — the slice shown says "PREVIEW at 1/4 resolution", with no
/// pixel values to read from it — then every slice in full, the note gone, and
/// MPR (which waits for the full frames) cuts planes from them.
#[test]
fn the_viewer_shows_a_jpeg2000_stack_as_previews_then_in_full() {
    use eframe::egui;
    use lightbox::store::{ImportMode, Store};
    use lightbox::ui::Launch;
    use viewer::*;
    let tmp = common::tempdir();
    let files = j2k_stack(tmp.path(), 60, 512);
    let cache = tmp.path().join("cache");
    let mut store = Store::open(&cache).expect("cache");
    store
        .import(
            &[files[0].parent().expect("dir").to_path_buf()],
            ImportMode::Copy,
        )
        .expect("import");
    let study = store.studies().expect("studies")[0].study_uid.clone();
    drop(store);
    let mut h = viewer_sized(
        Launch {
            open_studies: vec![study],
            layout: (1, 1),
            export_dir: tmp.path().join("exports"),
            ..Launch::new(cache)
        },
        900.0,
        700.0,
    );
    step_until(&mut h, "the stack hung", |a| {
        a.viewport(0).is_some_and(|v| v.last_drawn.is_some())
    });
    // The first slice: the last to be decoded in full (the loader works out
    // from the middle).
    let centre = h
        .state()
        .viewport(0)
        .expect("vp")
        .rect
        .expect("drawn")
        .center();
    h.hover_at(centre);
    h.step();
    h.key_press(egui::Key::Home);
    step_until(&mut h, "every image on screen", |a| {
        a.first_look().is_some()
    });
    let (_, previews) = h.state().first_look().expect("first look");
    assert!(previews > 0, "previews first");
    let (done, total) = h.state().decoded();
    assert!(done < total, "not all decoded yet: {done}/{total}");
    assert_eq!(h.state().viewport(0).expect("vp").index, 0);
    h.hover_at(centre + egui::vec2(3.0, 2.0));
    h.run_steps(2);
    let label = viewport_label(&h, 0);
    assert!(label.contains("PREVIEW at 1/4 resolution"), "{label}");
    let probe = |h: &egui_kittest::Harness<'static, lightbox::ui::App>| {
        h.state()
            .viewport(0)
            .expect("vp")
            .drawn
            .iter()
            .find(|d| d.kind == "probe")
            .map(|d| d.text.clone())
    };
    assert_eq!(probe(&h), None, "no value read off a preview");
    wait_decoded(&mut h);
    h.hover_at(centre + egui::vec2(2.0, 3.0));
    h.run_steps(3);
    let label = viewport_label(&h, 0);
    assert!(!label.contains("PREVIEW"), "{label}");
    let text = probe(&h).expect("the probe over the full frame");
    assert!(text.contains("HU"), "{text}");
    // MPR cuts its planes from the full frames.
    h.key_press(egui::Key::M);
    step_until(&mut h, "MPR", |a| {
        a.crosshair(0).is_some() && a.crosshair(1).is_some()
    });
}
