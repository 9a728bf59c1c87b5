// The display pipeline on the GPU (PS3.3 C.11, PS3.4 N.2): stored value ▸
// Modality LUT (rescale or LUT) ▸ VOI (LINEAR, LINEAR_EXACT, SIGMOID window, VOI LUT,
// or identity over a range) ▸ inversion (MONOCHROME1 / Presentation LUT / user);
// PALETTE COLOR through its three LUTs; true colour as stored. The CPU twin is
// `imaging::render`; tests compare the two on every case.
//
// Stored values are uploaded once, unconverted, into an integer texture (TEX_TYPE
// is i32 or u32, chosen at pipeline creation); every LUT lives in one storage
// buffer of u32. Bilinear interpolation, when asked for, interpolates stored values
// in f32 (exact for 16-bit integers) before the pipeline, so filtering never
// throws precision away.

struct Params {
    // mode: 0 gray, 1 palette, 2 rgb; modality: 0 rescale, 1 LUT;
    // voi: 0 window, 1 LUT, 2 identity; function: 0 linear, 1 linear exact, 2 sigmoid
    mode: u32, modality_kind: u32, voi_kind: u32, function: u32,
    slope: f32, intercept: f32, center: f32, width: f32,
    id_min: f32, id_max: f32, invert: u32, rgb_max: f32,
    mlut_first: i32, mlut_len: u32, mlut_off: u32, interp: u32,
    vlut_first: i32, vlut_len: u32, vlut_off: u32, vlut_max: f32,
    pr_first: i32, pr_len: u32, pr_off: u32, pr_max: f32,
    pg_first: i32, pg_len: u32, pg_off: u32, pg_max: f32,
    pb_first: i32, pb_len: u32, pb_off: u32, pb_max: f32,
    // Image pixel coordinates of a fragment: img = M * (frag - origin, 1).
    m0: vec4<f32>, // (a, b, c, image width)
    m1: vec4<f32>, // (d, e, f, image height)
    origin: vec4<f32>, // (x, y) of the viewport in framebuffer pixels; z > 0.5: sRGB target
    // Display Shutter: flags 1 rectangle, 2 circle, 4 polygon (vertices as f32
    // row, column pairs in the LUT buffer); the grey level outside.
    sh_flags: u32, sh_poly_off: u32, sh_poly_len: u32, sh_value: f32,
    sh_rect: vec4<f32>,   // left, right, upper, lower (1-based, inclusive)
    sh_circle: vec4<f32>, // centre row, centre column, radius squared
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var img: texture_2d<TEX_TYPE>; // SAMPLER BINDING
@group(0) @binding(2) var<storage, read> luts: array<u32>;

@vertex
fn vs_main(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    // One triangle covering the viewport.
    let x = f32((i << 1u) & 2u) * 2.0 - 1.0;
    let y = f32(i & 2u) * 2.0 - 1.0;
    return vec4<f32>(x, y, 0.0, 1.0);
}

fn lut(first: i32, len: u32, off: u32, x: i32) -> f32 {
    let i = clamp(x - first, 0, i32(len) - 1);
    return f32(luts[off + u32(i)]);
}

// BEGIN SAMPLING (the MPR pipeline puts shaders/mpr.wgsl here)
fn texel(xy: vec2<i32>) -> vec4<f32> {
    return vec4<f32>(textureLoad(img, xy, 0));
}

// The stored value(s) at image position `pos` (pixel centres at +0.5).
fn stored(pos: vec2<f32>) -> vec4<f32> {
    let size = vec2<i32>(i32(p.m0.w), i32(p.m1.w));
    if p.interp == 0u {
        let xy = clamp(vec2<i32>(floor(pos)), vec2<i32>(0), size - 1);
        return texel(xy);
    }
    let q = pos - 0.5;
    let base = vec2<i32>(floor(q));
    let f = q - floor(q);
    let a = texel(clamp(base, vec2<i32>(0), size - 1));
    let b = texel(clamp(base + vec2<i32>(1, 0), vec2<i32>(0), size - 1));
    let c = texel(clamp(base + vec2<i32>(0, 1), vec2<i32>(0), size - 1));
    let d = texel(clamp(base + vec2<i32>(1, 1), vec2<i32>(0), size - 1));
    return mix(mix(a, b, f.x), mix(c, d, f.x), f.y);
}
// END SAMPLING

fn voi(x: f32) -> f32 {
    if p.voi_kind == 1u {
        return lut(p.vlut_first, p.vlut_len, p.vlut_off, i32(floor(x))) / p.vlut_max;
    }
    if p.voi_kind == 2u {
        if p.id_max <= p.id_min {
            return 0.0;
        }
        return clamp((x - p.id_min) / (p.id_max - p.id_min), 0.0, 1.0);
    }
    let c = p.center;
    if p.function == 0u {
        let w = max(p.width, 1.0);
        if x <= c - 0.5 - (w - 1.0) / 2.0 {
            return 0.0;
        }
        if x > c - 0.5 + (w - 1.0) / 2.0 {
            return 1.0;
        }
        return (x - (c - 0.5)) / (w - 1.0) + 0.5;
    }
    let w = max(p.width, 1.0e-30);
    if p.function == 1u {
        if x <= c - w / 2.0 {
            return 0.0;
        }
        if x > c + w / 2.0 {
            return 1.0;
        }
        return (x - c) / w + 0.5;
    }
    return 1.0 / (1.0 + exp(-4.0 * (x - c) / w));
}

fn vertex(k: u32) -> vec2<f32> {
    let o = p.sh_poly_off + 2u * k;
    return vec2<f32>(bitcast<f32>(luts[o]), bitcast<f32>(luts[o + 1u]));
}

// Is the image pixel under `pos` shown by the Display Shutter? Tested at the
// pixel's centre in 1-based (row, column), exactly as the CPU reference does.
fn shutter_shows(pos: vec2<f32>) -> bool {
    if p.sh_flags == 0u {
        return true;
    }
    let x = floor(pos.x) + 1.0;
    let y = floor(pos.y) + 1.0;
    if (p.sh_flags & 1u) != 0u {
        let r = p.sh_rect;
        if x < r.x || x > r.y || y < r.z || y > r.w {
            return false;
        }
    }
    if (p.sh_flags & 2u) != 0u {
        let dy = y - p.sh_circle.x;
        let dx = x - p.sh_circle.y;
        if dy * dy + dx * dx > p.sh_circle.z {
            return false;
        }
    }
    if (p.sh_flags & 4u) != 0u {
        var inside = false;
        var j = p.sh_poly_len - 1u;
        for (var i = 0u; i < p.sh_poly_len; i++) {
            let vi = vertex(i);
            let vj = vertex(j);
            if (vi.x > y) != (vj.x > y) {
                let lhs = (x - vi.y) * (vj.x - vi.x);
                let rhs = (vj.y - vi.y) * (y - vi.x);
                if (vj.x > vi.x && lhs < rhs) || (vj.x < vi.x && lhs > rhs) {
                    inside = !inside;
                }
            }
            j = i;
        }
        if !inside {
            return false;
        }
    }
    return true;
}

// The value to write so that an sRGB target stores exactly `y` (display levels
// are already perceptual: the P-values of the Grayscale Standard Display Function).
fn out(c: vec3<f32>) -> vec4<f32> {
    if p.origin.z > 0.5 {
        let lo = c / 12.92;
        let hi = pow((c + 0.055) / 1.055, vec3<f32>(2.4));
        return vec4<f32>(select(hi, lo, c <= vec3<f32>(0.04045)), 1.0);
    }
    return vec4<f32>(c, 1.0);
}

// The same for a grey level: one transfer function evaluation instead of three.
fn out_gray(y: f32) -> vec4<f32> {
    var v = y;
    if p.origin.z > 0.5 {
        if y <= 0.04045 {
            v = y / 12.92;
        } else {
            v = pow((y + 0.055) / 1.055, 2.4);
        }
    }
    return vec4<f32>(v, v, v, 1.0);
}

@fragment
fn fs_main(@builtin(position) frag: vec4<f32>) -> @location(0) vec4<f32> {
    let local = frag.xy - p.origin.xy;
    let pos = vec2<f32>(
        p.m0.x * local.x + p.m0.y * local.y + p.m0.z,
        p.m1.x * local.x + p.m1.y * local.y + p.m1.z,
    );
    if pos.x < 0.0 || pos.y < 0.0 || pos.x >= p.m0.w || pos.y >= p.m1.w {
        return vec4<f32>(0.0, 0.0, 0.0, 1.0);
    }
    if !shutter_shows(pos) {
        return out_gray(p.sh_value);
    }
    let s = stored(pos);
    if p.mode == 2u {
        var rgb = clamp(s.rgb / p.rgb_max, vec3<f32>(0.0), vec3<f32>(1.0));
        if p.invert != 0u {
            rgb = 1.0 - rgb;
        }
        return out(rgb);
    }
    if p.mode == 1u {
        let i = i32(round(s.x));
        return out(vec3<f32>(
            lut(p.pr_first, p.pr_len, p.pr_off, i) / p.pr_max,
            lut(p.pg_first, p.pg_len, p.pg_off, i) / p.pg_max,
            lut(p.pb_first, p.pb_len, p.pb_off, i) / p.pb_max,
        ));
    }
    var m: f32;
    if p.modality_kind == 1u {
        m = lut(p.mlut_first, p.mlut_len, p.mlut_off, i32(round(s.x)));
    } else {
        m = p.slope * s.x + p.intercept;
    }
    var y = clamp(voi(m), 0.0, 1.0);
    if p.invert != 0u {
        y = 1.0 - y;
    }
    return out_gray(y);
}
