// Volume rendering on the GPU: one orthographic ray per pixel through the 3-D
// texture of stored values (`img`, TEX_TYPE i32 or u32), sampled by
// shaders/volume.wgsl (appended: voxel, slice_coord, slice_index, sample).
// The CPU twin, and the test's reference, is `imaging::vr::render`: the same
// ray plan (computed once on the CPU and handed over here), the same
// trilinear samples under the reslicer's rules, the transfer function of
// modality values with its opacity per mm corrected for the step, headlight
// Blinn-Phong shading from central differences, front-to-back compositing
// stopped at OPAQUE, and the same empty-space skipping over BRICK³-voxel
// bricks (a brick table of "anything visible here" for composite, of the
// brightest modality value for MIP). `tests/gpu_vr.rs` compares the two.

struct Ray {
    // Voxel coordinates (x, y, slice coordinate) of pixel (0, 0)'s ray start;
    // w: the number of steps.
    origin: vec4<f32>,
    // Per column; w: the step in mm.
    du: vec4<f32>,
    // Per row; w: 0 composite, 1 MIP.
    dv: vec4<f32>,
    // One step along the ray; w: 1 shaded, 0 not.
    step: vec4<f32>,
    // Columns, rows, slices; w > 0.5: nearest voxel (never for VR).
    dims: vec4<f32>,
    // An uneven stack: x the number of slice coordinates (0: even), y where
    // they start in `luts`, z the gap distance; w: where the transfer
    // function's points (value, r, g, b, opacity per mm) start.
    coords: vec4<f32>,
    // Rows of the matrix turning voxel gradients into patient ones; w: the
    // number of transfer-function points, the rescale slope, the intercept.
    g0: vec4<f32>,
    g1: vec4<f32>,
    g2: vec4<f32>,
    // The volume's box in voxel coordinates; lo.w: where the brick table
    // starts in `luts`; hi.w: 1 skipping empty bricks.
    lo: vec4<f32>,
    hi: vec4<f32>,
    // Towards the light (patient coordinates); w: 1 when the target is sRGB
    // (the colour is written linear so that the stored byte is the CPU's).
    light: vec4<f32>,
    // MIP window centre and width (DICOM linear); z, w: the viewport's
    // top-left corner in the target (pixels).
    window: vec4<f32>,
    // Bricks along x, y, z; w: BRICK.
    bricks: vec4<f32>,
};

@group(0) @binding(0) var<uniform> v: Ray;
@group(0) @binding(1) var img: texture_3d<TEX_TYPE>;
@group(0) @binding(2) var<storage, read> luts: array<u32>;

const OPAQUE: f32 = 0.99;
// Ambient, diffuse, specular, shininess (imaging::vr::SHADE).
const SHADE: vec4<f32> = vec4<f32>(0.3, 0.7, 0.25, 20.0);

@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    let x = f32((i << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(i & 2u) * 2.0 - 1.0;
    return vec4<f32>(x, y, 0.0, 1.0);
}

fn lut_f32(i: u32) -> f32 {
    return bitcast<f32>(luts[i]);
}

// Colour and opacity per mm of modality value `x` (TransferFunction::eval).
fn tf_eval(x: f32) -> vec4<f32> {
    let at = u32(v.coords.w);
    let n = u32(v.g0.w);
    // The first point whose value exceeds x.
    var k = 0u;
    while k < n && lut_f32(at + 5u * k) <= x {
        k++;
    }
    if k == 0u {
        return tf_point(at);
    }
    if k == n {
        return tf_point(at + 5u * (n - 1u));
    }
    let a = tf_point(at + 5u * (k - 1u));
    let b = tf_point(at + 5u * k);
    let va = lut_f32(at + 5u * (k - 1u));
    let vb = lut_f32(at + 5u * k);
    return mix(a, b, (x - va) / (vb - va));
}

fn tf_point(i: u32) -> vec4<f32> {
    return vec4<f32>(lut_f32(i + 1u), lut_f32(i + 2u), lut_f32(i + 3u), lut_f32(i + 4u));
}

// The last slice whose coordinate is <= t, clamped to the stack.
fn slice_at(t: f32) -> i32 {
    let nz = i32(v.dims.z);
    if v.coords.x < 0.5 {
        return min(i32(max(t, 0.0)), nz - 1);
    }
    var lo = 0;
    var hi = nz;
    // partition_point(c <= t)
    while lo < hi {
        let mid = (lo + hi) / 2;
        if slice_coord(mid) <= t {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return clamp(lo, 1, nz) - 1;
}

fn coord_of(k: i32) -> f32 {
    if v.coords.x < 0.5 {
        return f32(k);
    }
    return slice_coord(k);
}

// The brick holding `q` (x: its index) and the ray parameter, in steps from
// `p0`, at which the ray leaves it (y).
fn brick(q: vec3<f32>, p0: vec3<f32>) -> vec2<f32> {
    let n = i32(v.bricks.w);
    let nb = vec3<i32>(v.bricks.xyz);
    var idx = vec3<i32>(0);
    var exit = 3.0e38;
    for (var a = 0; a < 3; a++) {
        var k = 0;
        var lo = 0.0;
        var hi = 0.0;
        if a < 2 {
            k = min(i32(max(q[a], 0.0)), i32(v.dims[a]) - 1) / n;
            lo = f32(k * n);
            hi = f32((k + 1) * n);
        } else {
            k = slice_at(q[a]) / n;
            let last = i32(v.dims.z) - 1;
            lo = coord_of(k * n);
            hi = coord_of(min((k + 1) * n, last));
        }
        idx[a] = k;
        let d = v.step[a];
        if d > 1.0e-12 && k + 1 < nb[a] {
            exit = min(exit, (hi - p0[a]) / d);
        } else if d < -1.0e-12 && k > 0 {
            exit = min(exit, (lo - p0[a]) / d);
        }
    }
    return vec2<f32>(f32(idx.x + nb.x * (idx.y + nb.y * idx.z)), exit);
}

// The steps [first, end) of the ray from `p` that can be inside the box.
fn span(p: vec3<f32>) -> vec2<u32> {
    let steps = v.origin.w;
    var t0 = 0.0;
    var t1 = steps;
    for (var a = 0; a < 3; a++) {
        let d = v.step[a];
        if abs(d) < 1.0e-12 {
            if p[a] < v.lo[a] || p[a] > v.hi[a] {
                return vec2<u32>(0u, 0u);
            }
            continue;
        }
        let u = (v.lo[a] - p[a]) / d;
        let w = (v.hi[a] - p[a]) / d;
        t0 = max(t0, min(u, w));
        t1 = min(t1, max(u, w));
    }
    if t1 < t0 {
        return vec2<u32>(0u, 0u);
    }
    let k0 = u32(max(floor(t0) - 1.0, 0.0));
    let k1 = min(u32(ceil(t1) + 2.0), u32(steps));
    return vec2<u32>(k0, k1);
}

// Whether sample point q lies in the box (the volume's, or the crop box
// inside it: `Plan::holds`), with the sampling's edge allowance.
fn in_box(q: vec3<f32>) -> bool {
    return all(q >= v.lo.xyz - vec3<f32>(EDGE)) && all(q <= v.hi.xyz + vec3<f32>(EDGE));
}

// Headlight shading at `q` (stored value `s`): the colour's factor and the
// specular term.
fn shade(q: vec3<f32>, s: f32) -> vec2<f32> {
    var g = vec3<f32>(0.0);
    for (var a = 0; a < 3; a++) {
        var e = vec3<f32>(0.0);
        e[a] = 1.0;
        let p = sample(q + e);
        let m = sample(q - e);
        if p.y > 0.5 && m.y > 0.5 {
            g[a] = (p.x - m.x) / 2.0;
        } else if p.y > 0.5 {
            g[a] = p.x - s;
        } else if m.y > 0.5 {
            g[a] = s - m.x;
        }
    }
    let gp = vec3<f32>(dot(v.g0.xyz, g), dot(v.g1.xyz, g), dot(v.g2.xyz, g)) * v.g1.w;
    let norm = length(gp);
    if norm < 1.0e-6 {
        return vec2<f32>(1.0, 0.0);
    }
    let d = abs(dot(gp, v.light.xyz) / norm);
    return vec2<f32>(SHADE.x + SHADE.y * d, SHADE.z * pow(d, SHADE.w));
}

// DICOM's linear window.
fn voi_window(x: f32) -> f32 {
    let c = v.window.x;
    let w = max(v.window.y, 1.0);
    let lo = c - 0.5 - (w - 1.0) / 2.0;
    let hi = c - 0.5 + (w - 1.0) / 2.0;
    if x <= lo {
        return 0.0;
    }
    if x > hi {
        return 1.0;
    }
    return (x - (c - 0.5)) / (w - 1.0) + 0.5;
}

fn ray_composite(p0: vec3<f32>, k0: u32, k1: u32) -> vec3<f32> {
    let slope = v.g1.w;
    let intercept = v.g2.w;
    let table = u32(v.lo.w);
    var c = vec3<f32>(0.0);
    var acc = 0.0;
    var k = k0;
    while k < k1 {
        let q = p0 + v.step.xyz * f32(k);
        if v.hi.w > 0.5 {
            let b = brick(q, p0);
            if luts[table + u32(b.x)] == 0u {
                k = max(u32(max(floor(b.y - 1.0e-3), 0.0)), k + 1u);
                continue;
            }
        }
        k++;
        if !in_box(q) {
            continue;
        }
        let s = sample(q);
        if s.y < 0.5 {
            continue;
        }
        let tf = tf_eval(slope * s.x + intercept);
        if tf.w <= 0.0 {
            continue;
        }
        var alpha = 1.0;
        if tf.w < 1.0 {
            alpha = 1.0 - pow(1.0 - tf.w, v.du.w);
        }
        var lit = vec2<f32>(1.0, 0.0);
        if v.step.w > 0.5 {
            lit = shade(q, s.x);
        }
        c += (1.0 - acc) * alpha * min(tf.rgb * lit.x + lit.y, vec3<f32>(1.0));
        acc += (1.0 - acc) * alpha;
        if acc >= OPAQUE {
            break;
        }
    }
    return c;
}

fn ray_mip(p0: vec3<f32>, k0: u32, k1: u32) -> vec3<f32> {
    let slope = v.g1.w;
    let intercept = v.g2.w;
    let table = u32(v.lo.w);
    var best = -3.0e38;
    var any_inside = false;
    var k = k0;
    while k < k1 {
        let q = p0 + v.step.xyz * f32(k);
        if v.hi.w > 0.5 {
            let b = brick(q, p0);
            if bitcast<f32>(luts[table + u32(b.x)]) <= best {
                k = max(u32(max(floor(b.y - 1.0e-3), 0.0)), k + 1u);
                continue;
            }
        }
        k++;
        if !in_box(q) {
            continue;
        }
        let s = sample(q);
        if s.y > 0.5 {
            best = max(best, slope * s.x + intercept);
            any_inside = true;
        }
    }
    if !any_inside {
        return vec3<f32>(0.0);
    }
    return vec3<f32>(voi_window(best));
}

fn to_linear(c: vec3<f32>) -> vec3<f32> {
    return select(pow((c + 0.055) / 1.055, vec3<f32>(2.4)), c / 12.92, c <= vec3<f32>(0.04045));
}

@fragment
fn fs_main(@builtin(position) frag: vec4<f32>) -> @location(0) vec4<f32> {
    let ij = floor(frag.xy - v.window.zw);
    let p0 = v.origin.xyz + v.du.xyz * ij.x + v.dv.xyz * ij.y;
    let ks = span(p0);
    var c = vec3<f32>(0.0);
    if v.dv.w > 0.5 {
        c = ray_mip(p0, ks.x, ks.y);
    } else {
        c = ray_composite(p0, ks.x, ks.y);
    }
    // The CPU's 8-bit value, exactly representable.
    c = round(clamp(c, vec3<f32>(0.0), vec3<f32>(1.0)) * 255.0) / 255.0;
    if v.light.w > 0.5 {
        c = to_linear(c);
    }
    return vec4<f32>(c, 1.0);
}
