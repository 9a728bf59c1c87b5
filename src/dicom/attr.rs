//! Small, forgiving accessors over `dicom-object` data sets. Real-world files carry
//! padded strings, empty values and the odd wrong VR; these helpers return `None`
//! for anything unusable instead of failing the whole file.

use dicom_core::Tag;
use dicom_object::InMemDicomObject;

/// A data set or a sequence item.
pub type Item = InMemDicomObject;

/// Trimmed, non-empty string value (all values joined by `\`).
pub fn string(obj: &Item, tag: Tag) -> Option<String> {
    let e = obj.get(tag)?;
    let s = e.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == ' ' || c == '\0').to_string();
    if s.is_empty() { None } else { Some(s) }
}

/// All numeric values of a DS/IS/FL/FD/US/SS/... attribute.
pub fn floats(obj: &Item, tag: Tag) -> Option<Vec<f64>> {
    let e = obj.get(tag)?;
    if let Ok(v) = e.to_multi_float64()
        && !v.is_empty()
        && v.iter().all(|x| x.is_finite())
    {
        return Some(v);
    }
    // Fall back to lenient text parsing ("1.0 \ 2.0", stray NULs).
    let s = e.to_str().ok()?;
    let v: Option<Vec<f64>> = s
        .split('\\')
        .map(|p| {
            p.trim_matches(|c: char| c == ' ' || c == '\0')
                .parse::<f64>()
                .ok()
        })
        .collect();
    v.filter(|v| !v.is_empty() && v.iter().all(|x| x.is_finite()))
}

/// First numeric value.
pub fn float(obj: &Item, tag: Tag) -> Option<f64> {
    floats(obj, tag).and_then(|v| v.first().copied())
}

/// First integer value.
pub fn int(obj: &Item, tag: Tag) -> Option<i64> {
    let e = obj.get(tag)?;
    if let Ok(v) = e.to_int::<i64>() {
        return Some(v);
    }
    float(obj, tag)
        .filter(|f| f.fract() == 0.0)
        .map(|f| f as i64)
}

/// Exactly `N` numeric values.
pub fn floats_n<const N: usize>(obj: &Item, tag: Tag) -> Option<[f64; N]> {
    let v = floats(obj, tag)?;
    if v.len() < N {
        return None;
    }
    let mut out = [0.0; N];
    out.copy_from_slice(&v[..N]);
    Some(out)
}

/// Exactly `N` numbers from a DICOM multi-value string (`1.5\-20\3e2`).
pub fn decimals<const N: usize>(s: &str) -> Option<[f64; N]> {
    let v: Vec<f64> = s
        .split('\\')
        .map(|p| {
            p.trim_matches(|c: char| c == ' ' || c == '\0')
                .parse::<f64>()
        })
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    if v.len() != N || !v.iter().all(|x| x.is_finite()) {
        return None;
    }
    let mut out = [0.0; N];
    out.copy_from_slice(&v);
    Some(out)
}

/// Items of a sequence attribute.
pub fn items(obj: &Item, tag: Tag) -> Option<&[Item]> {
    obj.get(tag)?.items()
}

/// First item of a sequence attribute.
pub fn first_item(obj: &Item, tag: Tag) -> Option<&Item> {
    items(obj, tag)?.first()
}

/// Raw value bytes in native (little-endian) order, for OB/OW/US arrays.
pub fn bytes(obj: &Item, tag: Tag) -> Option<Vec<u8>> {
    let e = obj.get(tag)?;
    e.to_bytes().ok().map(|b| b.into_owned())
}

/// Words of a US/SS/OW attribute (LUT descriptors and data), native order.
pub fn words(obj: &Item, tag: Tag) -> Option<Vec<u16>> {
    let e = obj.get(tag)?;
    if let Ok(v) = e.to_multi_int::<i64>()
        && e.vr() != dicom_core::VR::OW
        && e.vr() != dicom_core::VR::OB
    {
        return Some(v.into_iter().map(|x| x as u16).collect());
    }
    let b = e.to_bytes().ok()?;
    Some(
        b.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect(),
    )
}
