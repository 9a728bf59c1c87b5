//! Hanging protocols: the shipped files parse, and each puts today's study and
//! its priors where a reader expects them; a rule nothing fits says so; a user's
//! file replaces a built-in one and a broken file is reported, not fatal.

mod common;

use lightbox::hanging::{self, Candidate, wildcard};

fn set(
    study: &str,
    date: &str,
    modality: &str,
    body: &str,
    series: &str,
    frames: usize,
) -> Candidate {
    Candidate {
        study_uid: study.into(),
        study_date: date.into(),
        study_description: match modality {
            "MR" => "MR BRAIN W/O".into(),
            _ => format!("{modality} {body}"),
        },
        modality: modality.into(),
        body_part: body.into(),
        series_description: series.into(),
        frames,
    }
}

#[test]
fn wildcards_match_like_dicom_with_alternatives() {
    assert!(wildcard("*axial*", "CT 2 Axial 1 mm"));
    assert!(wildcard("T?", "t2"));
    assert!(!wildcard("T?", "t22"));
    assert!(wildcard("CR|DX", "DX"));
    assert!(!wildcard("CR|DX", "MG"));
    assert!(wildcard("*", ""));
    assert!(!wildcard("a*b", "acbx"));
}

#[test]
fn the_shipped_protocol_files_all_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("hanging-protocols");
    let mut n = 0;
    for f in std::fs::read_dir(&dir).expect("hanging-protocols/") {
        let f = f.expect("entry").path();
        let text = std::fs::read_to_string(&f).expect("read");
        hanging::parse(&f.display().to_string(), &text).expect("parses");
        n += 1;
    }
    let (built_in, problems) = hanging::load(None);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        built_in.len(),
        n,
        "every file in hanging-protocols/ is built in"
    );
}

#[test]
fn a_ct_chest_hangs_beside_its_newest_prior() {
    let (protocols, _) = hanging::load(None);
    let sets = vec![
        set("old", "20220101", "CT", "CHEST", "Axial 5 mm", 60),
        set("prior", "20240105", "CT", "CHEST", "Axial 2 mm", 200),
        set("prior", "20240105", "CT", "CHEST", "Scout", 1),
        set("today", "20260105", "CT", "CHEST", "Scout", 1),
        set("today", "20260105", "CT", "CHEST", "Axial 1 mm", 400),
        set("today", "20260105", "CR", "CHEST", "PA", 1),
    ];
    let h = hanging::hang(&protocols, &sets).expect("a protocol");
    assert_eq!(h.protocol, "CT chest with prior");
    assert_eq!(h.layout, (1, 2));
    assert_eq!(h.viewports, vec![Ok(4), Ok(1)]);
    // Without the priors, the plain CT protocol: the stack, then the scout.
    let today: Vec<Candidate> = sets
        .iter()
        .filter(|c| c.study_uid == "today")
        .cloned()
        .collect();
    let h = hanging::hang(&protocols, &today).expect("a protocol");
    assert_eq!(h.protocol, "CT");
    assert_eq!(h.viewports, vec![Ok(1), Ok(0)]);
}

#[test]
fn radiographs_compare_with_the_prior_and_mr_brain_needs_its_contrasts() {
    let (protocols, _) = hanging::load(None);
    let cr = vec![
        set("a", "20250101", "CR", "CHEST", "PA", 1),
        set("b", "20260101", "DX", "CHEST", "PA", 1),
    ];
    let h = hanging::hang(&protocols, &cr).expect("a protocol");
    assert_eq!(h.protocol, "Projection radiograph with prior");
    assert_eq!(h.viewports, vec![Ok(1), Ok(0)]);
    let mr = vec![
        set("m", "20260101", "MR", "HEAD", "AX T1", 24),
        set("m", "20260101", "MR", "HEAD", "AX T2 FSE", 24),
        set("m", "20260101", "MR", "HEAD", "AX FLAIR", 24),
    ];
    let h = hanging::hang(&protocols, &mr).expect("a protocol");
    assert_eq!(h.protocol, "MR brain");
    assert_eq!(h.layout, (2, 2));
    assert_eq!(&h.viewports[..3], &[Ok(0), Ok(1), Ok(2)]);
    let why = h.viewports[3].clone().expect_err("no diffusion series");
    assert!(why.contains("DWI"), "{why}");
    // One MR series only: the 2×2 would be mostly empty, so it is not used.
    assert!(hanging::hang(&protocols, &mr[..1]).is_none());
}

#[test]
fn a_users_protocol_replaces_the_built_in_one_and_broken_files_are_reported() {
    let tmp = common::tempdir();
    std::fs::write(
        tmp.path().join("mine.toml"),
        "name = \"CT\"\npriority = 10\n[match]\nmodality = \"CT\"\n[layout]\nrows = 1\ncolumns = 1\n[[viewport]]\nmodality = \"CT\"\nwindow = \"lung\"\n",
    )
    .expect("write");
    std::fs::write(
        tmp.path().join("broken.toml"),
        "name = \"x\"\n[layout]\nrows = 9\ncolumns = 1\n",
    )
    .expect("write");
    let (protocols, problems) = hanging::load(Some(tmp.path()));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("broken.toml") && problems[0].contains("9×1"),
        "{problems:?}"
    );
    let ct = vec![set("t", "20260101", "CT", "ABDOMEN", "Axial", 100)];
    let h = hanging::hang(&protocols, &ct).expect("a protocol");
    assert_eq!(
        (h.layout, h.windows.clone()),
        ((1, 1), vec![Some("lung".to_string())])
    );
}
