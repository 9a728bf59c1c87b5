//! Elements a writer stored as UN (unknown VR) although the standard's
//! dictionary knows them — what `gdcmconv` writes when it turns an implicit VR
//! file into an explicit VR one without `--use-dict`, every attribute UN. PS3.5
//! 6.2.2 lets a reader that knows the tag read the value as its real VR, and
//! pydicom and DCMTK's readers do (pydicom's `replace_un_with_known_vr`): so
//! does Lightbox, for the top-level data set. Values that do not fit the
//! dictionary's VR (an odd length for US, say) stay UN.

use dicom_core::dictionary::{DataDictionary, VirtualVr};
use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_object::DefaultDicomObject;

/// Read as its dictionary VR every top-level UN element the dictionary
/// knows. Only little-endian data sets hold UN (explicit VR little endian,
/// and the encapsulated syntaxes).
pub(super) fn resolve(obj: &mut DefaultDicomObject) {
    if obj.meta().transfer_syntax() == "1.2.840.10008.1.2.2" {
        return;
    }
    let unknown: Vec<(dicom_core::Tag, Vec<u8>)> = obj
        .iter()
        .filter(|e| e.vr() == VR::UN)
        .filter_map(|e| match e.value() {
            Value::Primitive(PrimitiveValue::U8(b)) => Some((e.tag(), b.to_vec())),
            _ => None,
        })
        .collect();
    for (tag, bytes) in unknown {
        let Some(VirtualVr::Exact(vr)) = StandardDataDictionary.by_tag(tag).map(|d| d.vr) else {
            continue;
        };
        if let Some(value) = as_vr(vr, &bytes) {
            obj.put(DataElement::new(tag, vr, value));
        }
    }
}

/// `bytes` (little endian) read as a value of `vr`; None when they are not one.
fn as_vr(vr: VR, bytes: &[u8]) -> Option<PrimitiveValue> {
    use VR::*;
    fn numbers<const N: usize, T>(b: &[u8], f: impl Fn([u8; N]) -> T) -> Option<Vec<T>> {
        b.len().is_multiple_of(N).then(|| {
            b.chunks_exact(N)
                .map(|c| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(c);
                    f(a)
                })
                .collect()
        })
    }
    Some(match vr {
        AE | AS | CS | DA | DS | DT | IS | LO | PN | SH | TM | UC | UI => {
            let text = text(bytes);
            let trimmed = text.trim_end_matches(['\0', ' ']);
            PrimitiveValue::Strs(
                trimmed
                    .split('\\')
                    .map(|s| s.trim_matches([' ', '\0']).to_string())
                    .collect(),
            )
        }
        LT | ST | UT | UR => PrimitiveValue::Str(text(bytes).trim_end_matches(['\0', ' ']).into()),
        US => PrimitiveValue::U16(numbers(bytes, u16::from_le_bytes)?.into()),
        SS => PrimitiveValue::I16(numbers(bytes, i16::from_le_bytes)?.into()),
        UL => PrimitiveValue::U32(numbers(bytes, u32::from_le_bytes)?.into()),
        SL => PrimitiveValue::I32(numbers(bytes, i32::from_le_bytes)?.into()),
        FL => PrimitiveValue::F32(numbers(bytes, f32::from_le_bytes)?.into()),
        FD => PrimitiveValue::F64(numbers(bytes, f64::from_le_bytes)?.into()),
        OB | OW | OF | OD | OL | OV => PrimitiveValue::U8(bytes.to_vec().into()),
        _ => return None,
    })
}

/// Text as written: UTF-8 when it is (ISO_IR 192, and all ASCII), else each
/// byte as Latin-1.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::tags;

    #[test]
    fn known_attributes_stored_as_un_read_as_their_vr() {
        let mut obj = dicom_object::InMemDicomObject::new_empty()
            .with_meta(
                dicom_object::meta::FileMetaTableBuilder::new()
                    .transfer_syntax("1.2.840.10008.1.2.1")
                    .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.2")
                    .media_storage_sop_instance_uid("1.2.3"),
            )
            .expect("meta");
        let un =
            |tag, b: &[u8]| DataElement::new(tag, VR::UN, PrimitiveValue::U8(b.to_vec().into()));
        obj.put(un(tags::PATIENT_NAME, b"PHANTOM^CHEST "));
        obj.put(un(tags::PIXEL_SPACING, b"0.7\\0.68"));
        obj.put(un(tags::ROWS, &512u16.to_le_bytes()));
        obj.put(un(tags::COLUMNS, &[1, 2, 3]));
        obj.put(un(dicom_core::Tag(0x0009, 0x0010), b"PRIVATE "));
        obj.put(un(dicom_core::Tag(0x0009, 0x1001), b"\x01\x02"));
        resolve(&mut obj);
        let name = obj.element(tags::PATIENT_NAME).expect("name");
        assert_eq!(
            (name.vr(), name.to_str().expect("text").as_ref()),
            (VR::PN, "PHANTOM^CHEST")
        );
        let ps = obj.element(tags::PIXEL_SPACING).expect("spacing");
        assert_eq!(ps.to_multi_float64().expect("numbers"), vec![0.7, 0.68]);
        assert_eq!(
            obj.element(tags::ROWS)
                .expect("rows")
                .to_int::<u16>()
                .expect("rows"),
            512
        );
        // Three bytes are no US: left as they were; so is a private element
        // (its creator is LO, as the standard says).
        assert_eq!(obj.element(tags::COLUMNS).expect("columns").vr(), VR::UN);
        let creator = obj
            .element(dicom_core::Tag(0x0009, 0x0010))
            .expect("creator");
        assert_eq!(
            (creator.vr(), creator.to_str().expect("text").as_ref()),
            (VR::LO, "PRIVATE")
        );
        assert_eq!(
            obj.element(dicom_core::Tag(0x0009, 0x1001))
                .expect("private")
                .vr(),
            VR::UN
        );
    }
}
