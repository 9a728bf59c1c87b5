//! `lightbox series` (patients, studies, series and display sets under a folder,
//! with geometry checks) and `lightbox volume` (a series loaded into a 16-bit
//! volume: geometry, range, time, memory): the commands about a folder.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use super::{exit_for, report_failures, scan_dir, to_json};
use crate::dicom;
use crate::error::{Error, Result};
use crate::model::{self, Patient};
use crate::volume;

pub(super) fn cmd_series(dir: &Path, json: bool) -> Result<ExitCode> {
    let t = Instant::now();
    let scan = scan_dir(dir)?;
    let patients = model::build(&scan.headers);
    if json {
        let v = serde_json::json!({
            "patients": patients,
            "files": scan.headers.iter().map(|h| h.path.display().to_string()).collect::<Vec<_>>(),
            "failures": scan.failures.iter().map(|(p, r)| serde_json::json!({"file": p.display().to_string(), "reason": r})).collect::<Vec<_>>(),
        });
        out!("{}", to_json(&v)?);
    } else {
        if let Some((path, counts)) = &scan.dicomdir {
            let counts: Vec<String> = counts.iter().map(|(t, n)| format!("{n} {t}")).collect();
            out!("Read through {} ({})", path.display(), counts.join(", "));
        }
        for w in &scan.warnings {
            eprintln!("warning: {w}");
        }
        print_tree(&patients, &scan.headers);
        out!(
            "{} file(s) read in {:.0} ms, {} unreadable",
            scan.headers.len(),
            t.elapsed().as_secs_f64() * 1e3,
            scan.failures.len()
        );
    }
    report_failures(&scan.failures);
    Ok(exit_for(&scan))
}

fn print_tree(patients: &[Patient], headers: &[dicom::ImageHeader]) {
    for p in patients {
        out!(
            "Patient {} ({})",
            p.name.as_deref().unwrap_or("(no name)"),
            p.id.as_deref().unwrap_or("no ID")
        );
        for s in &p.studies {
            out!(
                "  Study {} {} {}",
                s.date.as_deref().unwrap_or("(no date)"),
                s.description
                    .as_deref()
                    .map(|d| format!("\"{d}\""))
                    .unwrap_or_default(),
                s.uid
            );
            for se in &s.series {
                out!(
                    "    Series {} {} {} — {} instance(s){}  {}",
                    se.number
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| "-".into()),
                    se.modality.as_deref().unwrap_or("??"),
                    se.description
                        .as_deref()
                        .map(|d| format!("\"{d}\""))
                        .unwrap_or_default(),
                    se.instances.len(),
                    if se.non_image.is_empty() {
                        String::new()
                    } else {
                        format!(", {} without pixel data", se.non_image.len())
                    },
                    se.uid
                );
                for w in &se.warnings {
                    out!("      ! {w}");
                }
                for (i, ds) in se.display_sets.iter().enumerate() {
                    let h = &headers[ds.frames[0].instance];
                    let cal = &h.calibration;
                    let spacing = cal
                        .spacing_mm
                        .map(|s| {
                            format!("pixel {:.3}×{:.3} mm ({})", s[0], s[1], cal.basis.label())
                        })
                        .unwrap_or_else(|| "no pixel spacing (measurements in pixels)".into());
                    let geo = match &ds.geometry {
                        Some(g) => format!(
                            "{}, sorted by position, slice spacing {}",
                            g.plane,
                            g.spacing_mm
                                .map(|s| format!("{s:.3} mm"))
                                .unwrap_or_else(|| "n/a".into())
                        ),
                        None => "no geometry, sorted by Instance Number".into(),
                    };
                    out!(
                        "      Display set {}: {} {} {}×{}, {}; {}",
                        i + 1,
                        ds.frames.len(),
                        if ds.multiframe {
                            "frame(s) of one multi-frame image"
                        } else {
                            "image(s)"
                        },
                        ds.columns,
                        ds.rows,
                        geo,
                        spacing
                    );
                    if let Some(g) = &ds.geometry {
                        if let Some(f) = headers[ds.frames[0].instance].frames.first()
                            && let (Some(p), Some(o)) = (f.image_position, f.image_orientation)
                            && let Some(plane) =
                                crate::imaging::geometry::ImagePlane::new(p, o, [1.0, 1.0])
                        {
                            let l = plane.edge_labels();
                            out!(
                                "        orientation: left {} right {} top {} bottom {}",
                                l.left,
                                l.right,
                                l.top,
                                l.bottom
                            );
                        }
                        for issue in &g.issues {
                            out!("        ! {issue}");
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn cmd_volume(dir: &Path, series: Option<&str>, json: bool) -> Result<ExitCode> {
    let t0 = Instant::now();
    let scan = scan_dir(dir)?;
    let t_scan = t0.elapsed();
    let patients = model::build(&scan.headers);
    let mut candidates: Vec<(&model::Series, &model::DisplaySet)> = patients
        .iter()
        .flat_map(|p| p.studies.iter())
        .flat_map(|s| s.series.iter())
        .filter(|s| series.is_none_or(|u| s.uid == u))
        .flat_map(|s| s.display_sets.iter().map(move |d| (s, d)))
        .filter(|(_, d)| d.geometry.is_some())
        .collect();
    candidates.sort_by_key(|(_, d)| std::cmp::Reverse(d.frames.len()));
    let Some((se, set)) = candidates.first() else {
        report_failures(&scan.failures);
        return Err(Error::Series(match series {
            Some(u) => format!("{}: no series {u} with positioned images", dir.display()),
            None => format!("{}: no series with positioned images", dir.display()),
        }));
    };
    let t1 = Instant::now();
    let vol = volume::load(set, &scan.headers)?;
    let t_load = t1.elapsed();
    let range = vol.modality_range();
    let peak = volume::peak_rss_bytes();
    if json {
        let v = serde_json::json!({
            "series_uid": se.uid,
            "volume": vol,
            "voxel_bytes": vol.voxel_bytes(),
            "modality_range": range,
            "scan_ms": t_scan.as_secs_f64() * 1e3,
            "load_ms": t_load.as_secs_f64() * 1e3,
            "peak_rss_bytes": peak,
        });
        out!("{}", to_json(&v)?);
    } else {
        out!("Series      {}", se.uid);
        out!(
            "Dimensions  {} × {} × {} (columns × rows × slices)",
            vol.dims[0],
            vol.dims[1],
            vol.dims[2]
        );
        out!(
            "Spacing     {:.4} × {:.4} × {:.4} mm",
            vol.spacing_mm[0],
            vol.spacing_mm[1],
            vol.spacing_mm[2]
        );
        out!("Affine      patient (LPS, mm) from voxel (x, y, z, 1):");
        for r in 0..4 {
            let m = &vol.patient_from_voxel;
            out!(
                "            [{:>10.4} {:>10.4} {:>10.4} {:>10.4}]",
                m[(r, 0)],
                m[(r, 1)],
                m[(r, 2)],
                m[(r, 3)]
            );
        }
        if let Some((lo, hi)) = range {
            out!(
                "Values      {lo} … {hi} (modality units; rescale slope {} intercept {})",
                vol.rescale.slope,
                vol.rescale.intercept
            );
        }
        for issue in &vol.issues {
            out!("Warning     {issue}");
        }
        out!(
            "Time        header scan {:.1} ms ({} files), volume load {:.1} ms ({} of {} slices on the fast path)",
            t_scan.as_secs_f64() * 1e3,
            scan.headers.len(),
            t_load.as_secs_f64() * 1e3,
            vol.fast_slices,
            vol.dims[2]
        );
        let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
        if let Some(p) = peak {
            out!(
                "Memory      peak RSS {:.1} MiB for {:.1} MiB of voxels ({:.2}×)",
                mb(p),
                mb(vol.voxel_bytes() as u64),
                p as f64 / vol.voxel_bytes() as f64
            );
        }
    }
    report_failures(&scan.failures);
    Ok(exit_for(&scan))
}
