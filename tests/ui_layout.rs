//! Layout per study and what the reader must know, driven through `egui_kittest`
//! (AccessKit labels, real events, wgpu on lavapipe) in a 1920×1080 window: each
//! study opened hangs by its own protocol (never the last one's layout, zoom or
//! empty panes), a lone CT fills the screen, M goes into MPR and back to the
//! layout it replaced with the prior, a protocol chosen from the list re-hangs,
//! skipped files are listed, an empty folder says so, F1 lists every command, and
//! the toolbar is one row.

mod common;
#[path = "common/viewer.rs"]
mod viewer;

use std::path::{Path, PathBuf};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use lightbox::store::{ImportMode, Store};
use lightbox::synth;
use lightbox::ui::{App, Launch};
use viewer::step_until;

/// The viewer in a 1920×1080 window drawn by wgpu (lavapipe).
fn viewer(launch: Launch) -> Harness<'static, App> {
    viewer::viewer_sized(launch, 1920.0, 1080.0)
}

fn decoded(a: &App) -> bool {
    let (done, total) = a.decoded();
    total > 0 && done == total
}

/// The texts on screen (labels' values and widgets' names) that contain `what`.
fn shown(h: &Harness<'static, App>, what: &str) -> Vec<String> {
    h.query_all_by(|n| {
        n.label().is_some_and(|l| l.contains(what)) || n.value().is_some_and(|v| v.contains(what))
    })
    .filter(|n| n.accesskit_node().role() != egui::accesskit::Role::TextRun)
    .filter_map(|n| {
        let a = n.accesskit_node();
        a.label().or(a.value())
    })
    .collect()
}

/// A series of `n` slices of 32² in study `study` of patient `patient`.
fn series(
    dir: &Path,
    seed: &str,
    study: &str,
    patient: &str,
    modality: &str,
    description: &str,
    n: usize,
) {
    let study_spec = synth::SeriesSpec::axial(study, 1, 32, 1.0);
    let mut s = synth::SeriesSpec::axial(seed, n, 32, 3.0);
    s.study_uid = study_spec.study_uid;
    s.frame_of_reference = study_spec.frame_of_reference;
    s.patient_id = patient.into();
    s.patient_name = format!("LAYOUT^{patient}");
    s.modality = modality.into();
    s.series_description = description.into();
    s.study_description = format!("{modality} {study} (layout test)");
    match modality {
        "MR" => {
            s.sop_class = "1.2.840.10008.5.1.4.1.1.4".into();
            s.rescale = None;
        }
        "DX" => {
            s.sop_class = "1.2.840.10008.5.1.4.1.1.1.1".into();
            s.rescale = None;
            s.slice_thickness = None;
        }
        _ => {}
    }
    synth::write_series(&dir.join(seed), &s, |k, c, r| {
        ((k * 7 + c * 3 + r) % 1000) as i32
    })
    .expect("series");
}

/// A cache with a CT with its scout (patient A), a lone CT (B), an MR head with
/// T1, T2, FLAIR and DWI (C) and a DX (D), each with no prior.
fn cache_of_studies(tmp: &Path) -> PathBuf {
    let src = tmp.join("src");
    let ct = synth::CtSpec {
        slices: 6,
        size: 32,
        ..Default::default()
    };
    synth::write_ct(&src.join("ct"), &ct).expect("ct");
    synth::write_ct_localizer(&src.join("ct-scout"), &ct).expect("scout");
    series(&src, "lone-ct", "lone", "B", "CT", "Axial 3 mm", 5);
    for (k, d) in ["AX T1", "AX T2", "AX FLAIR", "AX DWI"].iter().enumerate() {
        series(&src, &format!("mr-{k}"), "head", "C", "MR", d, 3 + k);
    }
    series(&src, "dx", "chest", "D", "DX", "PA", 1);
    let cache = tmp.join("cache");
    Store::open(&cache)
        .expect("cache")
        .import(&[src], ImportMode::Copy)
        .expect("import");
    cache
}

/// Click the study in the list whose line contains `what`, and wait for it.
fn open_study(h: &mut Harness<'static, App>, what: &str) {
    h.query_all_by_label_contains(what)
        .next()
        .unwrap_or_else(|| panic!("{what} in the study list"))
        .click();
    h.run_steps(2);
    step_until(h, what, decoded);
}

fn description(h: &Harness<'static, App>, i: usize) -> String {
    h.state()
        .header_of(i)
        .and_then(|x| x.series_description.clone())
        .unwrap_or_default()
}

/// Every viewport at fit: zoom 1, no pan, not 1:1.
fn all_fit(h: &Harness<'static, App>) -> bool {
    let (r, c) = h.state().layout();
    (0..r * c).all(|i| {
        h.state()
            .viewport(i)
            .is_some_and(|v| v.zoom == 1.0 && v.pan == egui::Vec2::ZERO && !v.one_to_one)
    })
}

#[test]
fn each_study_hangs_by_its_own_protocol_and_nothing_carries_over() {
    let tmp = common::tempdir();
    let cache = cache_of_studies(tmp.path());
    let mut h = viewer(Launch::new(cache));
    h.run_steps(2);

    // The CT with its scout: the "CT" protocol, the stack left, the scout right.
    open_study(&mut h, "CT CHEST ABDOMEN");
    assert_eq!(h.state().hanging_protocol(), Some("CT"));
    assert_eq!(h.state().layout(), (1, 2));
    assert!(
        description(&h, 0).starts_with("Axial"),
        "{}",
        description(&h, 0)
    );
    assert_eq!(description(&h, 1), "Scout");
    // The reader zooms the stack to 1:1.
    let centre = h.state().screen_of(0, [16.0, 16.0]).expect("drawn");
    h.hover_at(centre);
    h.step();
    h.key_press(egui::Key::Z);
    h.run_steps(3);
    assert_ne!(h.state().viewport(0).expect("vp").zoom, 1.0, "zoomed");

    // The MR: its own 2×2, each contrast where the protocol puts it, at fit.
    open_study(&mut h, "MR head (layout test)");
    assert_eq!(h.state().hanging_protocol(), Some("MR brain"));
    assert_eq!(h.state().layout(), (2, 2));
    let got: Vec<String> = (0..4).map(|i| description(&h, i)).collect();
    assert_eq!(got, ["AX T1", "AX T2", "AX FLAIR", "AX DWI"]);
    assert!(all_fit(&h), "a new study opens at fit");

    // The DX after the MR: one viewport filling the screen, at fit; no empty pane.
    open_study(&mut h, "DX chest (layout test)");
    assert_eq!(h.state().layout(), (1, 1));
    assert_eq!(
        h.state()
            .header_of(0)
            .and_then(|x| x.modality.clone())
            .as_deref(),
        Some("DX")
    );
    assert_eq!(
        h.state().hanging_protocol(),
        Some(lightbox::hanging::ONE_PER_SET)
    );
    assert!(all_fit(&h));
    assert!(
        !shown(&h, &format!("hanging: {}", lightbox::hanging::ONE_PER_SET)).is_empty(),
        "the status bar names how it is hung"
    );
}

#[test]
fn a_lone_ct_fills_the_screen() {
    let tmp = common::tempdir();
    let cache = cache_of_studies(tmp.path());
    let mut h = viewer(Launch::new(cache));
    h.run_steps(2);
    open_study(&mut h, "CT lone (layout test)");
    assert_eq!(h.state().layout(), (1, 1));
    assert_eq!(h.state().hanging_protocol(), Some("CT"));
    let v = h.state().viewport(0).expect("vp");
    assert!(v.set.is_some() && v.note.is_none());
    assert!(shown(&h, "drag a series here").is_empty());
}

/// The demo (a CT with its scout and its prior), as tests/ui.rs opens it.
fn demo(tmp: &Path) -> Harness<'static, App> {
    let src = tmp.join("src");
    let (_, current, prior) = synth::write_demo(&src, 12, 64).expect("demo");
    let cache = tmp.join("cache");
    Store::open(&cache)
        .expect("cache")
        .import(&[src], ImportMode::Copy)
        .expect("import");
    let mut h = viewer(Launch {
        open_studies: vec![current, prior],
        layout: (1, 2),
        ..Launch::new(cache)
    });
    step_until(&mut h, "decoding", decoded);
    h
}

#[test]
fn m_goes_into_mpr_and_back_to_the_layout_with_the_prior() {
    let tmp = common::tempdir();
    let mut h = demo(tmp.path());
    assert_eq!(h.state().layout(), (1, 2));
    let date =
        |h: &Harness<'static, App>, i| h.state().header_of(i).and_then(|x| x.study_date.clone());
    assert_eq!(date(&h, 1).as_deref(), Some("20240105"), "the prior");
    // Scroll the current a little so its place is something to restore.
    let centre = h.state().screen_of(0, [32.0, 32.0]).expect("drawn");
    h.hover_at(centre);
    h.step();
    h.key_press(egui::Key::ArrowDown);
    h.key_press(egui::Key::ArrowDown);
    h.run_steps(2);
    let before: Vec<(Option<usize>, usize)> = (0..2)
        .map(|i| {
            let v = h.state().viewport(i).expect("vp");
            (v.set, v.index)
        })
        .collect();

    h.key_press(egui::Key::M);
    h.run_steps(2);
    step_until(&mut h, "the reformats", |a| {
        (0..3).all(|i| a.viewport(i).is_some_and(|v| v.last_drawn.is_some()))
    });
    assert_eq!(h.state().layout(), (2, 2));
    let sets_in_mpr = h.state().display_sets();

    // M again: the layout MPR replaced, the prior where it was.
    h.key_press(egui::Key::M);
    h.run_steps(2);
    assert_eq!(h.state().layout(), (1, 2));
    let after: Vec<(Option<usize>, usize)> = (0..2)
        .map(|i| {
            let v = h.state().viewport(i).expect("vp");
            (v.set, v.index)
        })
        .collect();
    assert_eq!(after, before);
    assert_eq!(
        date(&h, 1).as_deref(),
        Some("20240105"),
        "the prior is back"
    );

    // And M once more: MPR again, from the reformats already made.
    h.key_press(egui::Key::M);
    h.run_steps(2);
    assert_eq!(h.state().layout(), (2, 2));
    assert_eq!(h.state().display_sets(), sets_in_mpr, "nothing rebuilt");
    assert!(
        description(&h, 1).starts_with("MPR"),
        "{}",
        description(&h, 1)
    );
}

#[test]
fn a_protocol_chosen_from_the_list_rehangs_the_studies() {
    let tmp = common::tempdir();
    let mut h = demo(tmp.path());
    assert_eq!(h.state().hanging_protocol(), Some("CT chest with prior"));
    let combo = |h: &mut Harness<'static, App>| {
        h.query_all_by_role(egui::accesskit::Role::ComboBox)
            .find(|n| {
                n.accesskit_node()
                    .value()
                    .is_some_and(|v| v.starts_with("automatic") || v.contains("viewport"))
            })
            .expect("the hanging protocol list")
            .click();
    };
    combo(&mut h);
    h.run_steps(2);
    h.get_by_label(lightbox::hanging::ONE_PER_SET).click();
    h.run_steps(3);
    // Three display sets (today's stack and scout, the prior): 2×2.
    assert_eq!(
        h.state().hanging_protocol(),
        Some(lightbox::hanging::ONE_PER_SET)
    );
    assert_eq!(h.state().layout(), (2, 2));
    assert!(
        !shown(&h, "(chosen)").is_empty(),
        "the status bar says it was chosen"
    );
    // Back to automatic: the protocol that fits.
    combo(&mut h);
    h.run_steps(2);
    h.get_by_label("automatic").click();
    h.run_steps(3);
    assert_eq!(h.state().hanging_protocol(), Some("CT chest with prior"));
    assert_eq!(h.state().layout(), (1, 2));
}

/// A folder dropped on the window, as winit reports it.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        Err("a folder".into())
    }
}

fn drop_folder(h: &mut Harness<'static, App>, dir: &Path) {
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped(dir.to_path_buf())));
    h.run_steps(2);
}

#[test]
fn files_skipped_in_a_mixed_folder_are_listed_with_why() {
    let tmp = common::tempdir();
    let mixed = tmp.path().join("mixed");
    series(&mixed, "ct", "mixed", "E", "CT", "Axial 3 mm", 4);
    std::fs::write(mixed.join("notes.txt"), "not an image").expect("write");
    let mut h = viewer(Launch::new(tmp.path().join("cache")));
    h.run_steps(2);
    drop_folder(&mut h, &mixed);
    step_until(&mut h, "import and decoding", |a| {
        decoded(a) && !a.skipped().is_empty()
    });
    assert_eq!(h.state().skipped().len(), 1);
    let line = shown(&h, "notes.txt")
        .into_iter()
        .next()
        .expect("the skipped file in the panel");
    assert!(line.starts_with("notes.txt: "), "{line}");
    assert!(
        !shown(&h, "1 file(s) skipped").is_empty(),
        "the count in the status bar"
    );
    // Dismissed, it is gone; the status bar's count brings it back.
    let close = h
        .query_all_by_role(egui::accesskit::Role::Button)
        .find(|n| {
            n.accesskit_node()
                .label()
                .is_some_and(|l| l.to_lowercase().contains("close"))
        })
        .expect("the panel's close button");
    close.click();
    h.run_steps(2);
    assert!(shown(&h, "notes.txt:").is_empty());
    h.get_by_label("1 file(s) skipped").click();
    h.run_steps(2);
    assert_eq!(shown(&h, "notes.txt:").len(), 1);
}

#[test]
fn a_folder_with_no_images_says_so_in_the_viewport() {
    let tmp = common::tempdir();
    let empty = tmp.path().join("no-dicom-here");
    std::fs::create_dir_all(&empty).expect("dir");
    std::fs::write(empty.join("readme.txt"), "nothing to see").expect("write");
    let mut h = viewer(Launch::new(tmp.path().join("cache")));
    h.run_steps(2);
    drop_folder(&mut h, &empty);
    step_until(&mut h, "the import", |a| !a.skipped().is_empty());
    let note = h
        .state()
        .viewport(0)
        .and_then(|v| v.note.clone())
        .expect("a note in the viewport");
    assert_eq!(note, "no images in no-dicom-here: 1 file(s) skipped");
    assert!(
        !shown(&h, "no images in no-dicom-here").is_empty(),
        "said in the window"
    );
    assert!(
        shown(&h, "images decoded").is_empty(),
        "not \"0/0 images decoded\""
    );
}

#[test]
fn f1_lists_every_command() {
    let tmp = common::tempdir();
    let mut h = viewer(Launch::new(tmp.path().join("cache")));
    h.run_steps(2);
    h.key_press(egui::Key::F1);
    h.run_steps(2);
    let rows = lightbox::ui::command::help_rows();
    for (keys, what) in &rows {
        assert!(
            shown(&h, what).iter().any(|t| t == what),
            "help shows {what:?}"
        );
        assert!(
            shown(&h, keys).iter().any(|t| t == keys),
            "help shows {keys:?}"
        );
    }
    for c in lightbox::ui::command::Command::all() {
        let (label, tip) = (c.label(), c.tooltip());
        assert!(
            rows.iter().any(|(_, w)| *w == tip || w.contains(&label)),
            "{label:?} is in the help"
        );
    }
    for key in ["ctrl + E", "F11", "T"] {
        assert!(
            rows.iter()
                .any(|(k, _)| k.split(" / ").any(|p| p.split(" or ").any(|x| x == key))),
            "help lacks {key}"
        );
    }
}

#[test]
fn the_toolbar_is_one_row_of_icons_at_1920() {
    let tmp = common::tempdir();
    let h = demo(tmp.path());
    let first = h.get_by_label("1×1").rect();
    let last = h.get_by_label("help (F1)").rect();
    assert!(
        (first.center().y - last.center().y).abs() < 1.0,
        "one row: {first:?} … {last:?}"
    );
    // Icons: square buttons, the command's label their accessible name.
    for label in [
        "bone",
        "invert",
        "MPR (M)",
        "tags (T)",
        "export",
        "full screen (F11)",
    ] {
        let r = h.get_by_label(label).rect();
        assert!(
            (r.width() - r.height()).abs() < 1.0 && r.width() < 40.0,
            "{label}: {r:?}"
        );
        assert!(
            (r.center().y - first.center().y).abs() < 1.0,
            "{label} in the row"
        );
    }
}

#[test]
fn f11_and_the_toolbar_button_ask_for_full_screen() {
    let tmp = common::tempdir();
    let mut h = viewer(Launch::new(tmp.path().join("cache")));
    h.run_steps(2);
    let asked = |h: &Harness<'static, App>| {
        h.output()
            .viewport_output
            .get(&egui::ViewportId::ROOT)
            .is_some_and(|v| {
                v.commands
                    .iter()
                    .any(|c| *c == egui::ViewportCommand::Fullscreen(true))
            })
    };
    // The press alone (a key press is two frames in the harness: press, release;
    // the command goes out with the press).
    let key = |pressed| egui::Event::Key {
        key: egui::Key::F11,
        physical_key: None,
        pressed,
        repeat: false,
        modifiers: egui::Modifiers::NONE,
    };
    h.event(key(true));
    h.step();
    assert!(asked(&h), "F11 asks for full screen");
    h.event(key(false));
    h.step();
    assert!(!asked(&h), "once");
    h.get_by_label("full screen (F11)").click();
    h.step();
    assert!(asked(&h), "so does the toolbar's button");
}
