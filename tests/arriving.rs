//! Images on screen while they arrive: a study opened in the viewer while it is
//! being retrieved — from the PACS tab over DICOMweb (Orthanc's plugin), and by
//! `lightbox retrieve` in another process over DIMSE C-GET — shows its middle
//! slice (fetched first) before the retrieve is done, says how many images are
//! still to come, and fills in as they arrive, keeping the image on screen. The
//! PACS is behind a throttling proxy (a slow link), so "before" is real.

mod common;
#[path = "common/viewer.rs"]
mod viewer;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::kittest::Queryable;
use lightbox::store::{RetrievalState, Store};
use lightbox::synth::CtSpec;
use lightbox::ui::{App, Launch};
use viewer::*;

const SLICES: usize = 40;

fn ct(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    common::write_ct(
        dir,
        &CtSpec {
            slices: SLICES,
            size: 64,
            ..Default::default()
        },
    )
}

/// Instances of `study` in the cache.
fn cached(cache: &std::path::Path, study: &str) -> usize {
    let Ok(store) = Store::open(cache) else {
        return 0;
    };
    store
        .series_of(study)
        .unwrap_or_default()
        .iter()
        .map(|s| store.instances_of(&s.series_uid).map_or(0, |v| v.len()))
        .sum()
}

/// The middle image by Instance Number (what the retrieve fetches first).
fn middle_number(files: &[std::path::PathBuf]) -> i64 {
    let mut n: Vec<i64> = files
        .iter()
        .filter_map(|f| lightbox::dicom::read_header(f).ok()?.instance_number)
        .collect();
    n.sort();
    n[n.len() / 2]
}

/// Once the images still to come have stand-ins, the whole stack is there:
/// from the end, up to the first image not here yet, which says it is
/// arriving. Its index and SOP Instance UID.
fn a_stand_in(h: &mut egui_kittest::Harness<'static, App>) -> (usize, String) {
    step_until(h, "stand-ins for the images still to come", |a| {
        a.stand_ins() > 0
    });
    assert_eq!(
        h.state().decoded().1,
        SLICES,
        "the stack has its whole length before its images are all here"
    );
    h.key_press(egui::Key::End);
    h.run_steps(2);
    for _ in 0..SLICES {
        if h.state().header_of(0).is_some_and(|x| x.stand_in.is_some()) {
            break;
        }
        h.key_press(egui::Key::ArrowUp);
        h.run_steps(2);
    }
    let hd = h.state().header_of(0).expect("shown").clone();
    assert!(
        hd.stand_in.is_some(),
        "no image still to come found by scrolling"
    );
    let label = viewport_label(h, 0);
    assert!(label.contains("is arriving"), "{label}");
    let (index, total) = annotated_position(h, 0);
    assert_eq!(total, SLICES, "{label}");
    (index, hd.sop_instance_uid)
}

/// The image a stand-in stood for came to the place it held.
fn filled_in_place(h: &egui_kittest::Harness<'static, App>, at: (usize, String)) {
    let hd = h.state().header_of(0).expect("shown");
    assert_eq!(
        hd.sop_instance_uid, at.1,
        "the viewport still on that image"
    );
    assert!(hd.stand_in.is_none(), "and it is here");
    assert_eq!(
        annotated_position(h, 0),
        (at.0, SLICES),
        "at the place its stand-in held"
    );
    assert_eq!(h.state().stand_ins(), 0);
}

/// Every instance the retrieve listed has the place the node gave it (so the
/// stand-ins were placed from the node's word, not guessed).
fn placed_by_the_node(cache: &std::path::Path, study: &str) {
    let listed = Store::open(cache)
        .expect("cache")
        .retrieval_instances(study)
        .expect("instances");
    assert_eq!(listed.len(), SLICES);
    assert!(
        listed
            .iter()
            .all(|i| i.position.is_some() && i.orientation.is_some()),
        "{listed:?}"
    );
}

/// What viewport 0 shows once its first image is on screen: the SOP instance,
/// its Instance Number and the viewport's accessible label.
fn first_image(h: &mut egui_kittest::Harness<'static, App>) -> (String, Option<i64>, String) {
    step_until(h, "the first image on screen", |a| {
        a.header_of(0).is_some() && a.decoded().0 > 0
    });
    let hd = h.state().header_of(0).expect("shown").clone();
    (
        hd.sop_instance_uid,
        hd.instance_number,
        viewport_label(h, 0),
    )
}

#[test]
fn a_study_opened_from_the_pacs_tab_while_it_arrives_by_wado_rs_shows_its_middle_slice_first() {
    use lightbox::ui::pacs::{PacsSettings, RetrieveState};
    let plugin = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";
    assert!(
        std::path::Path::new(plugin).exists(),
        "{plugin} is missing: install Debian's orthanc-dicomweb (as .ci/run does)"
    );
    let tmp = common::tempdir();
    let files = ct(&tmp.path().join("src"));
    let orthanc = common::pacs::Orthanc::start_with(
        tmp.path(),
        serde_json::Map::new(),
        serde_json::json!({
            "Plugins": [plugin],
            "DicomWeb": {"Enable": true, "Root": "/dicom-web/", "EnableWado": false}
        }),
    );
    orthanc.upload(&files);
    // ~10 KB an image at 60 KB/s: the study takes several seconds to arrive.
    let (_proxy, port) = common::throttle(tmp.path(), orthanc.http, 60_000);
    let config = tmp.path().join("web.toml");
    std::fs::write(
        &config,
        format!(
            "[[nodes]]\nname = \"slow\"\nprotocol = \"dicomweb\"\n\
             url = \"http://127.0.0.1:{port}/dicom-web\"\n"
        ),
    )
    .expect("config");
    let node = lightbox::config::load(&config).expect("config").nodes[0].clone();
    let cache = tmp.path().join("cache");
    let launch = Launch {
        pacs: PacsSettings {
            nodes: vec![node],
            ae_title: "LIGHTBOX".into(),
            ..Default::default()
        },
        ..Launch::new(cache.clone())
    };
    let mut h = viewer(launch);
    h.run_steps(2);
    h.get_by_label("slow").click();
    h.run_steps(2);
    h.get_by_label("Find").click();
    step_until(&mut h, "QIDO-RS answers", |a| {
        !a.pacs().results().is_empty()
    });
    let uid = h.state().pacs().results()[0].study_uid.clone();
    h.get_by_label("retrieve").click();
    step_until(&mut h, "the first image in the cache", |a| {
        matches!(
            a.pacs().state_of(&uid),
            Some(RetrieveState::Running { received, .. }) if *received > 0
        )
    });
    h.get_by_label("open").click();
    let (_, number, label) = first_image(&mut h);
    let arrived = cached(&cache, &uid);
    assert!(
        matches!(
            h.state().pacs().state_of(&uid),
            Some(RetrieveState::Running { .. })
        ) && arrived < SLICES,
        "the first image should be on screen before the retrieve ends ({arrived} of {SLICES} cached, {:?})",
        h.state().pacs().state_of(&uid)
    );
    assert_eq!(
        number,
        Some(middle_number(&files)),
        "the stack opens at its middle image, fetched first"
    );
    assert!(label.contains("arriving: "), "{label}");
    assert!(h.state().is_arriving());
    // Where every image lies came with WADO-RS /metadata.
    let standing = a_stand_in(&mut h);

    // The rest fills in.
    step_until(&mut h, "the retrieve", |a| {
        matches!(
            a.pacs().state_of(&uid),
            Some(RetrieveState::Done { .. } | RetrieveState::Failed(_))
        )
    });
    assert!(
        matches!(
            h.state().pacs().state_of(&uid),
            Some(RetrieveState::Done { complete: true, .. })
        ),
        "{:?}",
        h.state().pacs().state_of(&uid)
    );
    step_until(&mut h, "every image decoded", |a| {
        !a.is_arriving() && a.decoded() == (SLICES, SLICES)
    });
    assert_eq!(h.state().display_sets(), 1, "one stack, grown in place");
    filled_in_place(&h, standing);
    placed_by_the_node(&cache, &uid);
    let label = viewport_label(&h, 0);
    assert!(!label.contains("arriving"), "{label}");
    assert!(label.contains(&format!("/{SLICES}")), "{label}");
}

#[test]
fn a_study_retrieved_by_the_command_line_over_c_get_fills_the_viewer_as_it_arrives() {
    let tmp = common::tempdir();
    let files = ct(&tmp.path().join("src"));
    let study = lightbox::dicom::read_header(&files[0])
        .expect("header")
        .study_uid;
    let orthanc = common::pacs::Orthanc::start(tmp.path(), &[]);
    orthanc.upload(&files);
    // Slower than the DICOMweb case: the viewer starts only once the first
    // image is in.
    let (_proxy, port) = common::throttle(tmp.path(), orthanc.dicom, 25_000);
    let cache = tmp.path().join("cache");
    let config = tmp.path().join("lightbox.toml");
    std::fs::write(
        &config,
        format!(
            "ae_title = \"LIGHTBOX\"\ncache_root = {:?}\n[[nodes]]\nname = \"pacs\"\nae_title = \"ORTHANC\"\n\
             host = \"127.0.0.1\"\nport = {port}\nretrieve = \"get\"\nparallel = 1\n",
            cache.to_str().expect("utf8")
        ),
    )
    .expect("config");
    let retrieve = common::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_lightbox"))
            .args(["retrieve", "pacs", "--study", &study, "--middle-first"])
            .env("LIGHTBOX_CONFIG", &config)
            .env_remove("LIGHTBOX_CACHE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("lightbox retrieve"),
    );
    // Open it in the viewer as soon as its first image is in the cache.
    let start = Instant::now();
    while cached(&cache, &study) == 0 {
        assert!(start.elapsed() < Duration::from_secs(60), "nothing arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut h = viewer(Launch {
        open_studies: vec![study.clone()],
        ..Launch::new(cache.clone())
    });
    let (_, number, label) = first_image(&mut h);
    let arrived = cached(&cache, &study);
    let state = Store::open(&cache)
        .expect("cache")
        .retrieval(&study)
        .expect("retrieval")
        .map(|r| r.state);
    assert!(
        state == Some(RetrievalState::InProgress) && arrived < SLICES,
        "the first image should be on screen before the retrieve ends ({arrived} of {SLICES}, {state:?})"
    );
    assert_eq!(number, Some(middle_number(&files)), "middle image first");
    assert!(label.contains("arriving: "), "{label}");
    // Where every image lies came with the IMAGE level C-FIND.
    let standing = a_stand_in(&mut h);

    let mut retrieve = retrieve;
    let status = retrieve.0.wait().expect("wait");
    assert!(status.success(), "lightbox retrieve failed: {status}");
    step_until(&mut h, "every image decoded", |a| {
        !a.is_arriving() && a.decoded() == (SLICES, SLICES)
    });
    assert_eq!(h.state().display_sets(), 1, "one stack, grown in place");
    filled_in_place(&h, standing);
    placed_by_the_node(&cache, &study);
    let label = viewport_label(&h, 0);
    assert!(!label.contains("arriving"), "{label}");
}

#[test]
fn a_prior_arriving_during_mpr_waits_for_it_then_hangs_beside_todays_study_as_the_reader_left_it() {
    use lightbox::store::ImportMode;
    use lightbox::ui::pacs::PacsSettings;
    let tmp = common::tempdir();
    let current = CtSpec {
        slices: 24,
        size: 64,
        ..Default::default()
    };
    let prior = CtSpec {
        slices: SLICES,
        size: 64,
        seed: "lightbox-ct-prior".into(),
        study_date: "20240105".into(),
        ..Default::default()
    };
    let now = common::write_ct(&tmp.path().join("current"), &current);
    let then = common::write_ct(&tmp.path().join("prior"), &prior);
    let cache = tmp.path().join("cache");
    Store::open(&cache)
        .expect("cache")
        .import(&[tmp.path().join("current")], ImportMode::Copy)
        .expect("import");
    let today = lightbox::dicom::read_header(&now[0])
        .expect("header")
        .study_uid;
    let prior_uid = lightbox::dicom::read_header(&then[0])
        .expect("header")
        .study_uid;
    // The PACS holds both; the prior comes by C-GET over a slow link.
    let orthanc = common::pacs::Orthanc::start(tmp.path(), &[]);
    let mut all = now.clone();
    all.extend(then.iter().cloned());
    orthanc.upload(&all);
    let (_proxy, port) = common::throttle(tmp.path(), orthanc.dicom, 40_000);
    let mut node = lightbox::config::Node::ad_hoc("127.0.0.1", port, "ORTHANC");
    node.name = "slow".into();
    node.fetch_priors = true;
    node.retrieve = lightbox::config::RetrieveMethod::Get;
    node.parallel = 1;
    let mut h = viewer(Launch {
        open_studies: vec![today.clone()],
        pacs: PacsSettings {
            nodes: vec![node],
            ae_title: "LIGHTBOX".into(),
            ..Default::default()
        },
        ..Launch::new(cache.clone())
    });
    step_until(&mut h, "today's study decoded", |a| a.decoded() == (24, 24));
    // The reader moves three slices on, then reformats.
    for _ in 0..3 {
        h.key_press(egui::Key::ArrowDown);
        h.step();
    }
    let seen = h
        .state()
        .header_of(0)
        .expect("shown")
        .sop_instance_uid
        .clone();
    let index = h.state().viewport(0).expect("vp").index;
    h.key_press(egui::Key::M);
    h.run_steps(3);
    assert_eq!(h.state().layout(), (2, 2), "MPR");
    step_until(&mut h, "the prior's first images in the cache", |_| {
        cached(&cache, &prior_uid) > 0
    });
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(h.state().layout(), (2, 2), "MPR is not disturbed");
    for i in 0..3 {
        let date = h.state().header_of(i).and_then(|x| x.study_date.clone());
        assert_ne!(date.as_deref(), Some("20240105"), "viewport {i}");
    }
    // Back from MPR: the prior hangs beside today's study, which is where the
    // reader left it.
    h.key_press(egui::Key::M);
    step_until(&mut h, "the prior hung", |a| {
        (0..a.layout().0 * a.layout().1).any(|i| {
            a.header_of(i).and_then(|x| x.study_date.clone()).as_deref() == Some("20240105")
        })
    });
    let shown = (0..h.state().layout().0 * h.state().layout().1)
        .find(|&i| h.state().header_of(i).map(|x| x.study_uid.as_str()) == Some(today.as_str()))
        .expect("today's study still on screen");
    assert_eq!(
        h.state().header_of(shown).expect("today").sop_instance_uid,
        seen,
        "today's slice kept"
    );
    assert_eq!(h.state().viewport(shown).expect("vp").index, index);
}
