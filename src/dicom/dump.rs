//! Header dumps: readable text (tag, VR, keyword, value; sequences indented) and the
//! DICOM JSON model (PS3.18 F.2). Pixel data is never read for a dump.

use std::fmt::Write;

use dicom_core::dictionary::DataDictionary;
use dicom_core::header::Header;
use dicom_core::value::Value;
use dicom_dictionary_std::StandardDataDictionary;
use dicom_object::{DefaultDicomObject, InMemDicomObject};

/// Longest value shown in full in a text dump.
const MAX_TEXT: usize = 80;

/// The file meta group and data set as indented text, one element a line.
pub fn to_text(obj: &DefaultDicomObject) -> String {
    let mut out = String::new();
    let meta = obj.meta();
    let _ = writeln!(out, "# File meta information");
    let _ = writeln!(
        out,
        "(0002,0002) UI MediaStorageSOPClassUID      {}",
        meta.media_storage_sop_class_uid().trim_end_matches('\0')
    );
    let _ = writeln!(
        out,
        "(0002,0003) UI MediaStorageSOPInstanceUID   {}",
        meta.media_storage_sop_instance_uid().trim_end_matches('\0')
    );
    let _ = writeln!(
        out,
        "(0002,0010) UI TransferSyntaxUID            {}",
        meta.transfer_syntax().trim_end_matches('\0')
    );
    let _ = writeln!(out, "# Data set");
    dataset_text(&mut out, obj, 0);
    out
}

fn dataset_text(out: &mut String, ds: &InMemDicomObject, depth: usize) {
    for e in ds.iter() {
        let tag = e.tag();
        let name = StandardDataDictionary
            .by_tag(tag)
            .map(|d| d.alias)
            .unwrap_or(if tag.group() % 2 == 1 {
                "(private)"
            } else {
                "(unknown)"
            });
        let indent = "  ".repeat(depth);
        let value = match e.value() {
            Value::Sequence(seq) => {
                let _ = writeln!(
                    out,
                    "{indent}({:04X},{:04X}) SQ {name:<28} {} item(s)",
                    tag.group(),
                    tag.element(),
                    seq.items().len()
                );
                for (i, item) in seq.items().iter().enumerate() {
                    let _ = writeln!(out, "{indent}  > item {}", i + 1);
                    dataset_text(out, item, depth + 2);
                }
                continue;
            }
            Value::PixelSequence(px) => format!(
                "encapsulated: {} fragment(s), {} bytes",
                px.fragments().len(),
                px.fragments().iter().map(|f| f.len()).sum::<usize>()
            ),
            Value::Primitive(p) => {
                use dicom_core::VR::*;
                match e.vr() {
                    OB | OW | OD | OF | OL | OV | UN => {
                        format!("<{} bytes>", p.calculate_byte_len())
                    }
                    _ => {
                        let s = p.to_str();
                        let s = s.trim_end_matches(['\0', ' ']);
                        if s.chars().count() > MAX_TEXT {
                            let cut: String = s.chars().take(MAX_TEXT).collect();
                            format!("{cut}… ({} chars)", s.chars().count())
                        } else {
                            s.to_string()
                        }
                    }
                }
            }
        };
        let _ = writeln!(
            out,
            "{indent}({:04X},{:04X}) {} {name:<28} {value}",
            tag.group(),
            tag.element(),
            e.vr()
        );
    }
}

/// The data set in the DICOM JSON model, pretty-printed.
pub fn to_json(obj: &DefaultDicomObject) -> Result<String, String> {
    let ds: &InMemDicomObject = obj;
    dicom_json::to_string_pretty(ds).map_err(|e| e.to_string())
}
