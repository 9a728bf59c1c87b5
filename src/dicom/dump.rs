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

/// One element of a dump: its line (without indentation) and, for a sequence,
/// its items' elements.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: String,
    pub items: Vec<Vec<Node>>,
}

/// The data set as a tree (for a browser that folds sequences).
pub fn to_tree(obj: &DefaultDicomObject) -> Vec<Node> {
    dataset_nodes(obj)
}

fn dataset_text(out: &mut String, ds: &InMemDicomObject, depth: usize) {
    write_nodes(out, &dataset_nodes(ds), depth);
}

fn write_nodes(out: &mut String, nodes: &[Node], depth: usize) {
    let indent = "  ".repeat(depth);
    for n in nodes {
        let _ = writeln!(out, "{indent}{}", n.line);
        for (i, item) in n.items.iter().enumerate() {
            let _ = writeln!(out, "{indent}  > item {}", i + 1);
            write_nodes(out, item, depth + 2);
        }
    }
}

fn dataset_nodes(ds: &InMemDicomObject) -> Vec<Node> {
    let mut nodes = Vec::new();
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
        let value = match e.value() {
            Value::Sequence(seq) => {
                nodes.push(Node {
                    line: format!(
                        "({:04X},{:04X}) SQ {name:<28} {} item(s)",
                        tag.group(),
                        tag.element(),
                        seq.items().len()
                    ),
                    items: seq.items().iter().map(dataset_nodes).collect(),
                });
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
        nodes.push(Node {
            line: format!(
                "({:04X},{:04X}) {} {name:<28} {value}",
                tag.group(),
                tag.element(),
                e.vr()
            ),
            items: Vec::new(),
        });
    }
    nodes
}

/// The data set in the DICOM JSON model, pretty-printed.
pub fn to_json(obj: &DefaultDicomObject) -> Result<String, String> {
    let ds: &InMemDicomObject = obj;
    dicom_json::to_string_pretty(ds).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::DataSetSequence;
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;

    #[test]
    fn sequences_fold_into_items_and_the_text_indents_them() {
        let mut item = InMemDicomObject::new_empty();
        item.put(DataElement::new(
            tags::CODE_VALUE,
            VR::SH,
            PrimitiveValue::from("T-D3000"),
        ));
        let mut ds = InMemDicomObject::new_empty();
        ds.put(DataElement::new(
            tags::PATIENT_ID,
            VR::LO,
            PrimitiveValue::from("X1"),
        ));
        ds.put(DataElement::new(
            tags::ANATOMIC_REGION_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![item.clone(), item]),
        ));
        // Elements in tag order: the sequence (0008,2218) before Patient ID.
        let tree = dataset_nodes(&ds);
        assert_eq!(tree.len(), 2);
        assert!(tree[1].line.contains("PatientID") && tree[1].items.is_empty());
        assert!(tree[0].line.contains("2 item(s)"), "{}", tree[0].line);
        assert_eq!(tree[0].items.len(), 2);
        assert!(tree[0].items[1][0].line.contains("T-D3000"));
        let mut text = String::new();
        dataset_text(&mut text, &ds, 0);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert_eq!(lines[1], "  > item 1");
        assert!(
            lines[2].starts_with("    (0008,0100) SH CodeValue"),
            "{text}"
        );
        assert!(lines[5].starts_with("(0010,0020) LO PatientID"), "{text}");
    }
}
