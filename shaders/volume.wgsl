// Sampling a volume of stored values in a 3-D integer texture (`img`, TEX_TYPE
// i32 or u32), shared by MPR (`mpr.wgsl`) and volume rendering (`vr.wgsl`),
// which each declare the uniform block `v` with `dims` (columns, rows, slices;
// w > 0.5: nearest voxel) and `coords` (an uneven stack: x the number of slice
// coordinates, 0 when even; y where they start in the LUT buffer `luts`, as
// f32; z the distance beyond which two neighbours have a gap between them).
// The CPU twin is `imaging::reslice`'s sampling: half a voxel beyond the outer
// centres still inside, nothing outside or in a gap, uneven stacks sampled
// between their real slice positions.

// Voxel q's stored value. A stack deeper than the device's 3-D textures is
// packed k slices to a layer, one under the other (`render::volume`'s
// `upload`): k is the texture's height over the slice's.
fn voxel(q: vec3<i32>) -> f32 {
    let rows = i32(v.dims.y);
    let k = i32(textureDimensions(img).y) / rows;
    let t = vec3<i32>(q.x, q.y + (q.z % k) * rows, q.z / k);
    return f32(textureLoad(img, t, 0).x);
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
