//! Criterion benchmarks of the core paths on a synthetic CT (64 slices of 512², in
//! `target/criterion-data`, written once): header scan, volume load, decoding and
//! rendering one slice, and reslicing the volume (oblique, coronal, a 10 mm MIP).
//! For comparisons against other tools in the same run, see `benches/compare.py`
//! and `benches/compare_reslice.py`.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use lightbox::dicom::Image;
use lightbox::imaging::render::{RenderOptions, VoiChoice, render};
use lightbox::imaging::reslice;
use lightbox::{model, scan, synth, volume};
use nalgebra::Vector3;

fn data_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/criterion-data/ct");
    let n = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    if n != 64 {
        let _ = std::fs::remove_dir_all(&dir);
        synth::write_ct(
            &dir,
            &synth::CtSpec {
                slices: 64,
                size: 512,
                ..Default::default()
            },
        )
        .expect("synth");
    }
    dir
}

fn benches(c: &mut Criterion) {
    let dir = data_dir();
    let files = scan::list_files(&dir).expect("list");
    c.bench_function("header scan, 64 CT files", |b| {
        b.iter(|| scan::scan_files(&files))
    });

    let s = scan::scan_files(&files);
    let patients = model::build(&s.headers);
    let set = patients[0].studies[0].series[0].display_sets[0].clone();
    c.bench_function("volume load, 64 × 512² CT slices", |b| {
        b.iter(|| volume::load(&set, &s.headers).expect("load"))
    });

    let path = &files[files.len() / 2];
    c.bench_function("open + decode one 512² CT slice", |b| {
        b.iter(|| Image::open(path).expect("open").frame(0).expect("decode"))
    });

    let img = Image::open(path).expect("open");
    let px = img.frame(0).expect("decode");
    let opts = RenderOptions {
        voi: VoiChoice::Preset("lung".into()),
        ..Default::default()
    };
    c.bench_function("render one 512² CT slice (lung window)", |b| {
        b.iter(|| render(&img.header, 0, &px, &opts).expect("render"))
    });

    // The reference reslicer on the loaded volume (warm: no load, no file).
    let vol = volume::load(&set, &s.headers).expect("load");
    let row = Vector3::new(0.8, 0.5, 0.3).normalize();
    let n0 = Vector3::new(0.1, -0.4, 0.9).normalize();
    let col = (n0 - row * n0.dot(&row)).normalize();
    let oblique = reslice::centred_plane(&vol, row, col, None, Some((512, 512)));
    let coronal = reslice::named_plane(&vol, reslice::Named::Coronal);
    let thin = reslice::Options::default();
    let mip = reslice::Options {
        slab: Some(reslice::Slab {
            thickness_mm: 10.0,
            mode: reslice::SlabMode::Mip,
        }),
        ..thin
    };
    c.bench_function("reslice an oblique 512² plane (trilinear)", |b| {
        b.iter(|| reslice::reslice(&vol, &oblique, &thin).expect("reslice"))
    });
    c.bench_function("reslice the coronal plane of 64 × 512² slices", |b| {
        b.iter(|| reslice::reslice(&vol, &coronal, &thin).expect("reslice"))
    });
    c.bench_function("reslice an oblique 512² plane as a 10 mm MIP", |b| {
        b.iter(|| reslice::reslice(&vol, &oblique, &mip).expect("reslice"))
    });
}

criterion_group! {
    name = imaging;
    config = Criterion::default().sample_size(20);
    targets = benches
}
criterion_main!(imaging);
