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

fn voxel(q: vec3<i32>) -> f32 {
    return f32(textureLoad(img, q, 0).x);
}

fn slice_coord(k: i32) -> f32 {
    return bitcast<f32>(luts[u32(v.coords.y) + u32(k)]);
}

// Comparisons at the edges of the volume and of gaps allow this much (voxel
// units) for f32 rounding, so a sample exactly on an edge (where the CPU's f64
// says "inside") is inside here too.
const EDGE: f32 = 1.0e-4;

// The fractional slice index of slice coordinate `t`, or -1 in a gap (the
// twin of `SliceCoords::index`).
fn slice_index(t: f32) -> f32 {
    let n = i32(v.coords.x);
    let c0 = slice_coord(0);
    let cl = slice_coord(n - 1);
    if t <= c0 {
        return select(-1.0, 0.0, c0 - t <= (slice_coord(1) - c0) / 2.0 + EDGE);
    }
    if t >= cl {
        return select(-1.0, f32(n - 1), t - cl <= (cl - slice_coord(n - 2)) / 2.0 + EDGE);
    }
    // The last k with coords[k] <= t.
    var lo = 0;
    var hi = n - 1;
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if slice_coord(mid) <= t {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let a = slice_coord(lo);
    let b = slice_coord(lo + 1);
    let d = b - a;
    if d > v.coords.z {
        let half = v.coords.z / 1.5 / 2.0;
        if t - a <= half + EDGE {
            return f32(lo);
        }
        if b - t <= half + EDGE {
            return f32(lo + 1);
        }
        return -1.0;
    }
    return f32(lo) + (t - a) / d;
}

// The stored value at voxel coordinates `q` and 1, or 0 and 0 outside the
// volume (or in a gap).
fn sample(q: vec3<f32>) -> vec2<f32> {
    var w = q;
    if v.coords.x > 0.5 {
        let z = slice_index(w.z);
        if z < 0.0 {
            return vec2<f32>(0.0, 0.0);
        }
        w.z = z;
    }
    let dims = v.dims.xyz;
    if any(w < vec3<f32>(-0.5 - EDGE)) || any(w > dims - 0.5 + EDGE) {
        return vec2<f32>(0.0, 0.0);
    }
    let c = clamp(w, vec3<f32>(0.0), dims - 1.0);
    let last = vec3<i32>(dims) - 1;
    if v.dims.w > 0.5 {
        return vec2<f32>(voxel(min(vec3<i32>(c + 0.5), last)), 1.0);
    }
    let b = vec3<i32>(c);
    let f = c - vec3<f32>(b);
    let e = min(b + 1, last);
    let c00 = mix(voxel(b), voxel(vec3<i32>(e.x, b.y, b.z)), f.x);
    let c10 = mix(voxel(vec3<i32>(b.x, e.y, b.z)), voxel(vec3<i32>(e.x, e.y, b.z)), f.x);
    let c01 = mix(voxel(vec3<i32>(b.x, b.y, e.z)), voxel(vec3<i32>(e.x, b.y, e.z)), f.x);
    let c11 = mix(voxel(vec3<i32>(b.x, e.y, e.z)), voxel(e), f.x);
    return vec2<f32>(mix(mix(c00, c10, f.y), mix(c01, c11, f.y), f.z), 1.0);
}

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
