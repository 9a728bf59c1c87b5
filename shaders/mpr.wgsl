// MPR sampling: the part of display.wgsl between BEGIN and END SAMPLING, for a
// plane cut through a volume of stored values in a 3-D integer texture (`img`,
// TEX_TYPE as for 2-D). The CPU twin is `imaging::reslice` (trilinear or
// nearest, half a voxel beyond the outer centres still inside, padding outside,
// slabs over the same offsets along the normal, samples outside not counted,
// uneven stacks sampled between their real slice positions and gaps left empty);
// `tests/gpu_mpr.rs` compares the two. Integer textures are not filterable, so
// trilinear interpolation is done here with `textureLoad`, in f32 (exact for
// 16-bit values); the result, in stored units, goes on through the same
// modality/VOI/LUT pipeline as a 2-D image.

struct Plane {
    // Voxel coordinates (centres at integers) of pixel (0, 0); w: the padding
    // value in stored units.
    origin: vec4<f32>,
    // Per column; w: the number of slab offsets.
    di: vec4<f32>,
    // Per row; w: where the offsets (f32, mm) start in the LUT buffer.
    dj: vec4<f32>,
    // Per mm along the normal; w: 0 thin or average, 1 maximum, 2 minimum
    // (in stored units: a negative slope has swapped them already).
    dn: vec4<f32>,
    // Columns, rows, slices; w > 0.5: nearest voxel.
    dims: vec4<f32>,
    // An uneven stack: x the number of slice coordinates (0: even), y where
    // they start in the LUT buffer (f32), z the distance beyond which two
    // neighbours have a gap between them.
    coords: vec4<f32>,
};

@group(0) @binding(3) var<uniform> v: Plane;

// voxel, slice_coord, slice_index and sample: shaders/volume.wgsl.

// The plane's stored value at image position `pos` (pixel centres at +0.5):
// between pixel centres the plane itself is sampled there (a zoomed MPR is cut
// at screen resolution), or at the pixel's centre for nearest display.
fn stored(pos: vec2<f32>) -> vec4<f32> {
    var ij = pos - 0.5;
    if p.interp == 0u {
        ij = floor(pos);
    }
    let base = v.origin.xyz + v.di.xyz * ij.x + v.dj.xyz * ij.y;
    let count = u32(v.di.w);
    let at = u32(v.dj.w);
    let mode = u32(v.dn.w);
    var acc = 0.0;
    if mode == 1u {
        acc = -3.0e38;
    } else if mode == 2u {
        acc = 3.0e38;
    }
    var got = 0u;
    for (var k = 0u; k < count; k++) {
        let s = sample(base + v.dn.xyz * bitcast<f32>(luts[at + k]));
        if s.y < 0.5 {
            continue;
        }
        got++;
        if mode == 1u {
            acc = max(acc, s.x);
        } else if mode == 2u {
            acc = min(acc, s.x);
        } else {
            acc += s.x;
        }
    }
    if got == 0u {
        return vec4<f32>(v.origin.w);
    }
    if mode == 0u {
        acc /= f32(got);
    }
    return vec4<f32>(acc);
}
