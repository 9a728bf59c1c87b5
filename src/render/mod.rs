//! The GPU display pipeline (wgpu, WGSL in `shaders/display.wgsl`): stored values
//! are uploaded once into an integer texture; Modality LUT, VOI, inversion, palette
//! and true colour are applied per fragment from a small uniform block and one LUT
//! buffer, so a window/level change is a uniform write, never a texture upload.
//!
//! [`GpuDisplay`] owns the pipelines for one device; it draws into any render pass
//! (the viewer's egui paint callback) or offscreen (tests, `render --gpu`). What
//! to draw comes from [`crate::imaging::render::display_plan`], the same decision
//! the CPU reference renderer executes.

use std::sync::atomic::{AtomicU64, Ordering};

use eframe::egui_wgpu::wgpu;
use wgpu::util::DeviceExt;

use crate::error::{Error, Result};
use crate::imaging::lut::{ModalityTransform, Voi, VoiFunction};
use crate::imaging::render::DisplayPlan;
use crate::values::Shutter;
use crate::values::{FramePixels, Samples};

const SHADER: &str = include_str!("../../shaders/display.wgsl");

mod volume;
pub use volume::{GpuMpr, MprDraw, VolumeTexture};
mod vr;
pub use vr::{GpuVr, VrDraw};

fn gpu_err(e: impl std::fmt::Display) -> Error {
    Error::Gpu(e.to_string())
}

/// A frame's stored values on the GPU.
#[derive(Debug)]
pub struct ImageTexture {
    pub width: u32,
    pub height: u32,
    /// Unique for the life of the process: what a viewport compares to know whether
    /// its prepared bind group still shows this texture (an address can be reused by
    /// the allocator once a texture is dropped; an id cannot).
    id: u64,
    signed: bool,
    view: wgpu::TextureView,
}

impl ImageTexture {
    /// This texture's identity (never reused within the process).
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// Source of [`ImageTexture::id`].
static NEXT_TEXTURE_ID: AtomicU64 = AtomicU64::new(1);

/// How the image maps onto the viewport: `image = m * (fragment - origin)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Row-major 2×3 affine from viewport pixels to image pixels.
    pub m: [[f32; 3]; 2],
    /// Viewport origin in framebuffer pixels.
    pub origin: [f32; 2],
    pub bilinear: bool,
}

impl Placement {
    /// One image pixel per viewport pixel, no offset (offscreen rendering).
    pub fn identity() -> Placement {
        Placement {
            m: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
            origin: [0.0, 0.0],
            bilinear: false,
        }
    }
}

/// Pipelines and layout for one device.
#[derive(Debug)]
pub struct GpuDisplay {
    bgl_signed: wgpu::BindGroupLayout,
    bgl_unsigned: wgpu::BindGroupLayout,
    pipeline_signed: wgpu::RenderPipeline,
    pipeline_unsigned: wgpu::RenderPipeline,
    pub format: wgpu::TextureFormat,
    /// Texture uploads performed (a W/L drag must not add any).
    uploads: AtomicU64,
}

/// Everything one draw needs (bind group with its uniforms and LUTs).
#[derive(Debug)]
pub struct Prepared {
    bind_group: wgpu::BindGroup,
    signed: bool,
    uniforms: wgpu::Buffer,
    /// The LUT buffer's contents (an update needing other LUTs must prepare anew).
    luts: Vec<u8>,
}

/// A headless device for offscreen rendering (tests, benches): whatever adapter
/// wgpu finds, Mesa's lavapipe on a machine without a GPU.
pub fn headless_device() -> Result<(wgpu::Device, wgpu::Queue, String)> {
    let instance = wgpu::Instance::default();
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }))
    .map_err(|e| {
        gpu_err(format!(
            "no adapter ({e}); install a Vulkan driver (Debian: mesa-vulkan-drivers for lavapipe)"
        ))
    })?;
    let info = adapter.get_info();
    let name = format!("{} ({:?})", info.name, info.backend);
    // The adapter's own texture and buffer sizes (wgpu asks for its portable
    // defaults otherwise: 2048-voxel 3-D textures, 256 MB buffers), so large
    // volumes take the fewest packed layers the hardware allows.
    let have = adapter.limits();
    let required_limits = wgpu::Limits {
        max_texture_dimension_2d: have.max_texture_dimension_2d,
        max_texture_dimension_3d: have.max_texture_dimension_3d,
        max_buffer_size: have.max_buffer_size,
        max_storage_buffer_binding_size: have.max_storage_buffer_binding_size,
        ..wgpu::Limits::default()
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("lightbox headless"),
        required_limits,
        ..Default::default()
    }))
    .map_err(gpu_err)?;
    Ok((device, queue, name))
}

impl GpuDisplay {
    /// Build the pipelines for targets of `format`.
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> GpuDisplay {
        let bgl_signed = bind_group_layout(device, true);
        let bgl_unsigned = bind_group_layout(device, false);
        let make = |signed: bool| {
            let bgl = if signed { &bgl_signed } else { &bgl_unsigned };
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("display.wgsl"),
                source: wgpu::ShaderSource::Wgsl(
                    SHADER
                        .replace("TEX_TYPE", if signed { "i32" } else { "u32" })
                        .into(),
                ),
            });
            let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("display"),
                bind_group_layouts: &[Some(bgl)],
                ..Default::default()
            });
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(if signed {
                    "display signed"
                } else {
                    "display unsigned"
                }),
                layout: Some(&pl),
                vertex: wgpu::VertexState {
                    module: &module,
                    entry_point: Some("vs_main"),
                    buffers: &[],
                    compilation_options: Default::default(),
                },
                fragment: Some(wgpu::FragmentState {
                    module: &module,
                    entry_point: Some("fs_main"),
                    targets: &[Some(wgpu::ColorTargetState {
                        format,
                        blend: None,
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                    compilation_options: Default::default(),
                }),
                primitive: wgpu::PrimitiveState::default(),
                depth_stencil: None,
                multisample: wgpu::MultisampleState::default(),
                multiview_mask: None,
                cache: None,
            })
        };
        GpuDisplay {
            pipeline_signed: make(true),
            pipeline_unsigned: make(false),
            bgl_signed,
            bgl_unsigned,
            format,
            uploads: AtomicU64::new(0),
        }
    }

    /// Upload a frame's stored values: R16Sint/R16Uint when they fit 16 bits,
    /// R32Sint otherwise; true colour as RGBA16Uint.
    pub fn upload(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        pixels: &FramePixels,
    ) -> Result<ImageTexture> {
        let (w, h) = (pixels.columns, pixels.rows);
        let n = (w as usize) * (h as usize);
        let (format, signed, bytes, bpp): (wgpu::TextureFormat, bool, Vec<u8>, u32) =
            match &pixels.samples {
                Samples::Mono(v) if v.len() == n => {
                    let (lo, hi) = pixels.min_max().unwrap_or((0, 0));
                    if lo >= 0 && hi <= u16::MAX as i32 {
                        let b = v.iter().flat_map(|&x| (x as u16).to_le_bytes()).collect();
                        (wgpu::TextureFormat::R16Uint, false, b, 2)
                    } else if lo >= i16::MIN as i32 && hi <= i16::MAX as i32 {
                        let b = v.iter().flat_map(|&x| (x as i16).to_le_bytes()).collect();
                        (wgpu::TextureFormat::R16Sint, true, b, 2)
                    } else {
                        let b = v.iter().flat_map(|&x| x.to_le_bytes()).collect();
                        (wgpu::TextureFormat::R32Sint, true, b, 4)
                    }
                }
                Samples::Rgb(v) if v.len() == n * 3 => {
                    // Samples deeper than 16 bits keep their top 16 (display needs
                    // no more; the shader divides by 2^16 - 1 then).
                    let shift = pixels.bits_stored.saturating_sub(16) as u32;
                    let b = v
                        .chunks_exact(3)
                        .flat_map(|c| {
                            [c[0], c[1], c[2], 0].into_iter().flat_map(move |s| {
                                ((s >> shift).min(u16::MAX as u32) as u16).to_le_bytes()
                            })
                        })
                        .collect();
                    (wgpu::TextureFormat::Rgba16Uint, false, b, 8)
                }
                _ => return Err(gpu_err("pixel data does not match the frame size")),
            };
        let limit = device.limits().max_texture_dimension_2d;
        if w == 0 || h == 0 || w > limit || h > limit {
            return Err(gpu_err(format!(
                "a {w}×{h} image does not fit this GPU's {limit}-pixel textures"
            )));
        }
        let texture = device.create_texture_with_data(
            queue,
            &wgpu::TextureDescriptor {
                label: Some("stored values"),
                size: wgpu::Extent3d {
                    width: w,
                    height: h,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage: wgpu::TextureUsages::TEXTURE_BINDING,
                view_formats: &[],
            },
            wgpu::util::TextureDataOrder::LayerMajor,
            &bytes,
        );
        debug_assert_eq!(bytes.len(), (w * h * bpp) as usize);
        self.uploads.fetch_add(1, Ordering::Relaxed);
        Ok(ImageTexture {
            width: w,
            height: h,
            id: NEXT_TEXTURE_ID.fetch_add(1, Ordering::Relaxed),
            signed,
            view: texture.create_view(&wgpu::TextureViewDescriptor::default()),
        })
    }

    /// The bind group for drawing `image` with `plan` at `placement` (uniforms and
    /// LUTs are small buffers; the image texture is shared).
    pub fn prepare(
        &self,
        device: &wgpu::Device,
        image: &ImageTexture,
        plan: &DisplayPlan,
        placement: &Placement,
        shutter: Option<&Shutter>,
    ) -> Prepared {
        let (uniforms, luts) = encode(
            plan,
            (image.width, image.height),
            placement,
            self.format.is_srgb(),
            shutter,
        );
        let ubuf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("display uniforms"),
            contents: &uniforms,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let lbuf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("display LUTs"),
            contents: &luts,
            usage: wgpu::BufferUsages::STORAGE,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("display"),
            layout: if image.signed {
                &self.bgl_signed
            } else {
                &self.bgl_unsigned
            },
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: ubuf.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(&image.view),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: lbuf.as_entire_binding(),
                },
            ],
        });
        Prepared {
            bind_group,
            signed: image.signed,
            uniforms: ubuf,
            luts,
        }
    }

    /// Texture uploads so far.
    pub fn uploads(&self) -> u64 {
        self.uploads.load(Ordering::Relaxed)
    }

    /// Change the window, zoom or pan (a W/L drag): one small uniform write.
    /// False when the plan needs other LUTs than those prepared (another VOI LUT,
    /// a window instead of a LUT): then [`Self::prepare`] anew.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &self,
        queue: &wgpu::Queue,
        prepared: &Prepared,
        image: &ImageTexture,
        plan: &DisplayPlan,
        placement: &Placement,
        shutter: Option<&Shutter>,
    ) -> bool {
        let (uniforms, luts) = encode(
            plan,
            (image.width, image.height),
            placement,
            self.format.is_srgb(),
            shutter,
        );
        if luts != prepared.luts {
            return false;
        }
        queue.write_buffer(&prepared.uniforms, 0, &uniforms);
        true
    }

    /// Draw into a render pass whose viewport covers the image's place.
    pub fn draw(&self, pass: &mut wgpu::RenderPass<'_>, prepared: &Prepared) {
        pass.set_pipeline(if prepared.signed {
            &self.pipeline_signed
        } else {
            &self.pipeline_unsigned
        });
        pass.set_bind_group(0, &prepared.bind_group, &[]);
        pass.draw(0..3, 0..1);
    }

    /// Render offscreen at one image pixel per output pixel; RGBA8, row-major.
    pub fn render_offscreen(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        image: &ImageTexture,
        plan: &DisplayPlan,
        shutter: Option<&Shutter>,
    ) -> Result<Vec<u8>> {
        let prepared = self.prepare(device, image, plan, &Placement::identity(), shutter);
        self.render_prepared(device, queue, &prepared, image.width, image.height)
    }

    /// Render an already prepared draw offscreen into a `w`×`h` target.
    pub fn render_prepared(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        prepared: &Prepared,
        w: u32,
        h: u32,
    ) -> Result<Vec<u8>> {
        render_target(device, queue, self.format, w, h, |pass| {
            self.draw(pass, prepared)
        })
    }
}

/// Run `draw` into a fresh `w`×`h` target of `format` (cleared to black) and
/// read it back: RGBA8, row-major.
fn render_target(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    format: wgpu::TextureFormat,
    w: u32,
    h: u32,
    draw: impl FnOnce(&mut wgpu::RenderPass<'_>),
) -> Result<Vec<u8>> {
    let target = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("offscreen"),
        size: wgpu::Extent3d {
            width: w,
            height: h,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let view = target.create_view(&wgpu::TextureViewDescriptor::default());
    let row = (w * 4).div_ceil(256) * 256;
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: (row * h) as u64,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("offscreen"),
    });
    {
        let mut pass = enc.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("offscreen"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                    store: wgpu::StoreOp::Store,
                },
            })],
            ..Default::default()
        });
        draw(&mut pass);
    }
    enc.copy_texture_to_buffer(
        wgpu::TexelCopyTextureInfo {
            texture: &target,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        wgpu::TexelCopyBufferInfo {
            buffer: &readback,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(row),
                rows_per_image: Some(h),
            },
        },
        wgpu::Extent3d {
            width: w,
            height: h,
            depth_or_array_layers: 1,
        },
    );
    queue.submit([enc.finish()]);
    let slice = readback.slice(..);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(gpu_err)?;
    rx.recv()
        .map_err(gpu_err)?
        .map_err(|e| gpu_err(format!("readback: {e}")))?;
    let data = slice
        .get_mapped_range()
        .map_err(|e| gpu_err(format!("readback: {e}")))?;
    let mut out = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h as usize {
        let start = y * row as usize;
        out.extend_from_slice(&data[start..start + (w * 4) as usize]);
    }
    drop(data);
    readback.unmap();
    Ok(out)
}

fn bind_group_layout(device: &wgpu::Device, signed: bool) -> wgpu::BindGroupLayout {
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("display"),
        entries: &[
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
            wgpu::BindGroupLayoutEntry {
                binding: 1,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Texture {
                    sample_type: if signed {
                        wgpu::TextureSampleType::Sint
                    } else {
                        wgpu::TextureSampleType::Uint
                    },
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
                count: None,
            },
            wgpu::BindGroupLayoutEntry {
                binding: 2,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: true },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
        ],
    })
}

/// The uniform block (layout of `Params` in the shader) and the LUT buffer.
fn encode(
    plan: &DisplayPlan,
    (width, height): (u32, u32),
    at: &Placement,
    srgb: bool,
    shutter: Option<&Shutter>,
) -> (Vec<u8>, Vec<u8>) {
    let mut u = Uniforms::default();
    let mut luts: Vec<u32> = Vec::new();
    let mut push = |l: &crate::imaging::lut::Lut| -> [u32; 4] {
        let off = luts.len() as u32;
        luts.extend(l.data.iter().map(|&v| v as u32));
        [
            l.first_mapped as i32 as u32,
            l.data.len() as u32,
            off,
            (l.max_output() as f32).to_bits(),
        ]
    };
    match plan {
        DisplayPlan::Gray(g) => {
            u.mode = 0;
            match &g.modality {
                ModalityTransform::Rescale(r) => {
                    u.slope = r.slope as f32;
                    u.intercept = r.intercept as f32;
                }
                ModalityTransform::Lut(l) => {
                    u.modality_kind = 1;
                    u.mlut = push(l);
                }
            }
            match &g.voi {
                Voi::Window { window, function } => {
                    u.center = window.center as f32;
                    u.width = window.width as f32;
                    u.function = match function {
                        VoiFunction::Linear => 0,
                        VoiFunction::LinearExact => 1,
                        VoiFunction::Sigmoid => 2,
                    };
                }
                Voi::Lut(l) => {
                    u.voi_kind = 1;
                    u.vlut = push(l);
                }
                Voi::Identity { min, max } => {
                    u.voi_kind = 2;
                    u.id_min = *min as f32;
                    u.id_max = *max as f32;
                }
            }
            u.invert = g.invert as u32;
        }
        DisplayPlan::Palette(p) => {
            u.mode = 1;
            u.pr = push(&p.red);
            u.pg = push(&p.green);
            u.pb = push(&p.blue);
        }
        DisplayPlan::Rgb {
            bits_stored,
            invert,
        } => {
            u.mode = 2;
            u.rgb_max = ((1u64 << (*bits_stored).clamp(1, 16)) - 1) as f32;
            u.invert = *invert as u32;
        }
    }
    u.interp = at.bilinear as u32;
    u.m0 = [at.m[0][0], at.m[0][1], at.m[0][2], width as f32];
    u.m1 = [at.m[1][0], at.m[1][1], at.m[1][2], height as f32];
    u.origin = [
        at.origin[0],
        at.origin[1],
        if srgb { 1.0 } else { 0.0 },
        0.0,
    ];
    if let Some(sh) = shutter {
        let mut flags = 0u32;
        if let Some(r) = sh.rect {
            flags |= 1;
            u.sh_rect = r.map(|v| v as f32);
        }
        if let Some(([cy, cx], rad)) = sh.circle {
            flags |= 2;
            u.sh_circle = [cy as f32, cx as f32, (rad * rad) as f32, 0.0];
        }
        let mut poly = (0, 0);
        if !sh.polygon.is_empty() {
            flags |= 4;
            poly = (luts.len() as u32, sh.polygon.len() as u32);
            for v in &sh.polygon {
                luts.push((v[0] as f32).to_bits());
                luts.push((v[1] as f32).to_bits());
            }
        }
        u.shutter = [flags, poly.0, poly.1, (sh.value as f32 / 65535.0).to_bits()];
    }
    if luts.is_empty() {
        luts.push(0);
    }
    (
        u.bytes(),
        luts.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

/// `Params` of the shader, field for field.
#[derive(Debug, Default)]
struct Uniforms {
    mode: u32,
    modality_kind: u32,
    voi_kind: u32,
    function: u32,
    slope: f32,
    intercept: f32,
    center: f32,
    width: f32,
    id_min: f32,
    id_max: f32,
    invert: u32,
    rgb_max: f32,
    /// first, len, offset, interp-or-max (bits)
    mlut: [u32; 4],
    interp: u32,
    vlut: [u32; 4],
    pr: [u32; 4],
    pg: [u32; 4],
    pb: [u32; 4],
    m0: [f32; 4],
    m1: [f32; 4],
    origin: [f32; 4],
    /// flags, polygon offset, polygon length, value (bits)
    shutter: [u32; 4],
    sh_rect: [f32; 4],
    sh_circle: [f32; 4],
}

impl Uniforms {
    fn bytes(&self) -> Vec<u8> {
        let mut w: Vec<u32> = vec![
            self.mode,
            self.modality_kind,
            self.voi_kind,
            self.function,
            self.slope.to_bits(),
            self.intercept.to_bits(),
            self.center.to_bits(),
            self.width.to_bits(),
            self.id_min.to_bits(),
            self.id_max.to_bits(),
            self.invert,
            self.rgb_max.to_bits(),
            self.mlut[0],
            self.mlut[1],
            self.mlut[2],
            self.interp,
        ];
        for l in [self.vlut, self.pr, self.pg, self.pb] {
            w.extend_from_slice(&l);
        }
        for v in [self.m0, self.m1, self.origin] {
            w.extend(v.iter().map(|f| f.to_bits()));
        }
        w.extend_from_slice(&self.shutter);
        for v in [self.sh_rect, self.sh_circle] {
            w.extend(v.iter().map(|f| f.to_bits()));
        }
        w.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
}
