//! MPR on the GPU: a volume's stored values uploaded once into a 3-D integer
//! texture (R16Sint or R16Uint — 16-bit integer formats are not filterable, so
//! the shader interpolates with `textureLoad`; never f16 or 8 bits, which lose
//! HU), and planes and thick slabs cut from it per fragment, then the same
//! modality/VOI/LUT pipeline as 2-D images (`shaders/display.wgsl` with
//! `shaders/mpr.wgsl` as its sampling). Where the samples lie is decided once,
//! on the CPU, by [`crate::imaging::reslice::sampling`] — the reference
//! reslicer's own plan — so the two paths walk the same points; a window or
//! plane change is a uniform write, never an upload.

use std::sync::atomic::{AtomicU64, Ordering};

use eframe::egui_wgpu::wgpu;
use wgpu::util::DeviceExt;

use super::{NEXT_TEXTURE_ID, Placement, SHADER, encode, gpu_err, render_target};
use crate::error::Result;
use crate::imaging::render::DisplayPlan;
use crate::imaging::reslice::{Interpolation, Options, Sampling, SlabMode};
use crate::volume::{GpuVolume, VoxelData};

const SAMPLING: &str = include_str!("../../shaders/mpr.wgsl");
/// Trilinear sampling of the 3-D texture, shared with volume rendering.
pub(crate) const VOLUME_SAMPLING: &str = include_str!("../../shaders/volume.wgsl");

/// Slices uploaded per write (the staging copy stays small: no second copy of
/// the volume in memory).
const SLICES_PER_WRITE: usize = 16;

/// A volume's stored values on the GPU.
#[derive(Debug)]
pub struct VolumeTexture {
    pub dims: [u32; 3],
    /// Slices to a layer of the texture (1 unless the stack is deeper than
    /// the device's 3-D textures: see [`GpuMpr::upload`]).
    pub packing: u32,
    /// Bytes on the GPU.
    pub bytes: u64,
    id: u64,
    pub(crate) signed: bool,
    pub(crate) view: wgpu::TextureView,
}

/// How many slices go to a layer of the texture so that a volume of `dims`
/// fits 3-D textures of `limit` voxels a side: the fewest that do (None when
/// a slice alone is too wide or too tall).
fn packing(dims: [usize; 3], limit: usize) -> Option<usize> {
    let [w, h, d] = dims;
    if w > limit || h > limit {
        return None;
    }
    (1..=limit / h).find(|&k| d.div_ceil(k) <= limit)
}

impl VolumeTexture {
    /// This texture's identity (never reused within the process).
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// The MPR pipelines for one device.
#[derive(Debug)]
pub struct GpuMpr {
    bgl_signed: wgpu::BindGroupLayout,
    bgl_unsigned: wgpu::BindGroupLayout,
    pipeline_signed: wgpu::RenderPipeline,
    pipeline_unsigned: wgpu::RenderPipeline,
    pub format: wgpu::TextureFormat,
    uploads: AtomicU64,
}

/// One prepared plane: its bind group and buffers.
#[derive(Debug)]
pub struct MprDraw {
    bind_group: wgpu::BindGroup,
    signed: bool,
    uniforms: wgpu::Buffer,
    plane: wgpu::Buffer,
    /// The LUT buffer's contents (LUTs, slab offsets, slice coordinates).
    luts: Vec<u8>,
    pub columns: u32,
    pub rows: u32,
}

/// The display shader with the MPR sampling in place of the 2-D one.
fn shader_source(signed: bool) -> String {
    let begin = SHADER
        .find("// BEGIN SAMPLING")
        .expect("display.wgsl marks its sampling");
    let end = SHADER
        .find("// END SAMPLING")
        .expect("display.wgsl marks its sampling");
    let src = format!(
        "{}{}\n{}{}",
        &SHADER[..begin],
        SAMPLING,
        VOLUME_SAMPLING,
        &SHADER[end..]
    );
    src.replace(
        "var img: texture_2d<TEX_TYPE>; // SAMPLER BINDING",
        "var img: texture_3d<TEX_TYPE>;",
    )
    .replace("TEX_TYPE", if signed { "i32" } else { "u32" })
}

/// Bindings 0 (uniforms), 1 (the 3-D texture), 2 (the LUT storage buffer)
/// and, for MPR, 3 (the plane's uniforms).
pub(crate) fn layout(device: &wgpu::Device, signed: bool, plane: bool) -> wgpu::BindGroupLayout {
    let buffer = |binding: u32, ty: wgpu::BufferBindingType| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let mut entries = vec![
        buffer(0, wgpu::BufferBindingType::Uniform),
        wgpu::BindGroupLayoutEntry {
            binding: 1,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Texture {
                sample_type: if signed {
                    wgpu::TextureSampleType::Sint
                } else {
                    wgpu::TextureSampleType::Uint
                },
                view_dimension: wgpu::TextureViewDimension::D3,
                multisampled: false,
            },
            count: None,
        },
        buffer(2, wgpu::BufferBindingType::Storage { read_only: true }),
    ];
    if plane {
        entries.push(buffer(3, wgpu::BufferBindingType::Uniform));
    }
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("volume"),
        entries: &entries,
    })
}

/// A pipeline drawing one full-viewport triangle with `source`'s `vs_main`
/// and `fs_main` into targets of `format`.
pub(crate) fn fullscreen_pipeline(
    device: &wgpu::Device,
    bgl: &wgpu::BindGroupLayout,
    source: String,
    label: &str,
    format: wgpu::TextureFormat,
) -> wgpu::RenderPipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(bgl)],
        ..Default::default()
    });
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(label),
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
}

/// Mean milliseconds the GPU takes to run `draw` into an offscreen `w`×`h`
/// target of `format`, over `frames` frames (each submitted and waited for;
/// nothing read back), after one frame that pays for work still queued.
pub(crate) fn time_draws(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    format: wgpu::TextureFormat,
    (w, h): (u32, u32),
    frames: u32,
    draw: impl Fn(&mut wgpu::RenderPass<'_>),
) -> Result<f64> {
    let target = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("timing"),
        size: wgpu::Extent3d {
            width: w,
            height: h,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
        view_formats: &[],
    });
    let view = target.create_view(&wgpu::TextureViewDescriptor::default());
    let frame = || -> Result<()> {
        let mut enc = device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("timing"),
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
        queue.submit([enc.finish()]);
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(gpu_err)?;
        Ok(())
    };
    frame()?;
    let t0 = std::time::Instant::now();
    for _ in 0..frames.max(1) {
        frame()?;
    }
    Ok(t0.elapsed().as_secs_f64() * 1e3 / frames.max(1) as f64)
}

impl GpuMpr {
    /// Build the pipelines for targets of `format`.
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> GpuMpr {
        let bgl_signed = layout(device, true, true);
        let bgl_unsigned = layout(device, false, true);
        let make = |signed: bool| {
            fullscreen_pipeline(
                device,
                if signed { &bgl_signed } else { &bgl_unsigned },
                shader_source(signed),
                if signed { "mpr signed" } else { "mpr unsigned" },
                format,
            )
        };
        GpuMpr {
            pipeline_signed: make(true),
            pipeline_unsigned: make(false),
            bgl_signed,
            bgl_unsigned,
            format,
            uploads: AtomicU64::new(0),
        }
    }

    /// Volume uploads so far.
    pub fn uploads(&self) -> u64 {
        self.uploads.load(Ordering::Relaxed)
    }

    /// Upload `vol`'s stored values once, a few slices at a time. A stack
    /// deeper than the device's 3-D textures is packed: k slices to a layer,
    /// one under the other (the shaders read voxels with `textureLoad`, so the
    /// layout is theirs to choose — see `shaders/volume.wgsl`'s `voxel`);
    /// refused, with the limit named, only when a slice itself is wider or
    /// taller than that limit.
    pub fn upload(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        vol: &(impl GpuVolume + ?Sized),
    ) -> Result<VolumeTexture> {
        let limit = device.limits().max_texture_dimension_3d as usize;
        self.upload_within(device, queue, vol, limit)
    }

    /// [`GpuMpr::upload`] as if the device's 3-D textures were at most `limit`
    /// voxels a side (the tests' way to make a small volume take the packed
    /// layout a 2,000-slice one takes).
    #[doc(hidden)]
    pub fn upload_within(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        vol: &(impl GpuVolume + ?Sized),
        limit: usize,
    ) -> Result<VolumeTexture> {
        let [w, h, d] = vol.size();
        if w == 0 || h == 0 || d == 0 {
            return Err(gpu_err("an empty volume"));
        }
        let Some(k) = packing(vol.size(), limit) else {
            return Err(gpu_err(format!(
                "a {w}×{h}×{d} volume does not fit this GPU's {limit}-voxel 3-D textures"
            )));
        };
        let layers = d.div_ceil(k);
        let (format, signed) = match vol.values() {
            VoxelData::I16(_) => (wgpu::TextureFormat::R16Sint, true),
            VoxelData::U16(_) => (wgpu::TextureFormat::R16Uint, false),
        };
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("volume stored values"),
            size: wgpu::Extent3d {
                width: w as u32,
                height: (h * k) as u32,
                depth_or_array_layers: layers as u32,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D3,
            format,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let slice = w * h;
        // Layers whose k slices are all there, written a few at a time; the
        // last may hold fewer (the rows after them are never read).
        let full = d / k;
        let per_write = (SLICES_PER_WRITE / k).max(1);
        let mut bytes = Vec::with_capacity(slice * 2 * SLICES_PER_WRITE.max(k).min(d));
        let mut l0 = 0;
        while l0 < layers {
            let (l1, rows) = if l0 < full {
                ((l0 + per_write).min(full), h * k)
            } else {
                (layers, h * (d - full * k))
            };
            let (z0, z1) = (l0 * k, (l1 * k).min(d));
            bytes.clear();
            match vol.values() {
                VoxelData::I16(v) => bytes.extend(
                    v[z0 * slice..z1 * slice]
                        .iter()
                        .flat_map(|x| x.to_le_bytes()),
                ),
                VoxelData::U16(v) => bytes.extend(
                    v[z0 * slice..z1 * slice]
                        .iter()
                        .flat_map(|x| x.to_le_bytes()),
                ),
            }
            queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture: &texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d {
                        x: 0,
                        y: 0,
                        z: l0 as u32,
                    },
                    aspect: wgpu::TextureAspect::All,
                },
                &bytes,
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(w as u32 * 2),
                    rows_per_image: Some(rows as u32),
                },
                wgpu::Extent3d {
                    width: w as u32,
                    height: rows as u32,
                    depth_or_array_layers: (l1 - l0) as u32,
                },
            );
            l0 = l1;
        }
        queue.submit([]);
        self.uploads.fetch_add(1, Ordering::Relaxed);
        Ok(VolumeTexture {
            dims: [w as u32, h as u32, d as u32],
            packing: k as u32,
            bytes: (slice * k * layers * 2) as u64,
            id: NEXT_TEXTURE_ID.fetch_add(1, Ordering::Relaxed),
            signed,
            view: texture.create_view(&wgpu::TextureViewDescriptor::default()),
        })
    }

    /// The uniform blocks and the LUT buffer of a plane.
    fn encode(
        &self,
        vol: &(impl GpuVolume + ?Sized),
        sampling: &Sampling,
        opts: &Options,
        size: (u32, u32),
        plan: &DisplayPlan,
        placement: &Placement,
    ) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let (uniforms, luts) = encode(plan, size, placement, self.format.is_srgb(), None);
        let mut words: Vec<u32> = luts
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let offsets_at = words.len();
        words.extend(sampling.offsets.iter().map(|&o| (o as f32).to_bits()));
        let coords_at = words.len();
        let (n_coords, gap_over) = match vol.real_slices() {
            Some(sc) => {
                words.extend(sc.coords.iter().map(|&c| (c as f32).to_bits()));
                (sc.coords.len(), sc.gap_over)
            }
            None => (0, 0.0),
        };
        let (slope, intercept) = (vol.value_rescale().slope, vol.value_rescale().intercept);
        // In stored units a negative slope turns maxima into minima.
        let mode = match opts.slab.map(|s| s.mode) {
            Some(SlabMode::Mip) if slope < 0.0 => 2.0,
            Some(SlabMode::MinIp) if slope < 0.0 => 1.0,
            Some(SlabMode::Mip) => 1.0,
            Some(SlabMode::MinIp) => 2.0,
            _ => 0.0,
        };
        let padding = if slope != 0.0 {
            (opts.padding - intercept) / slope
        } else {
            0.0
        };
        let v3 =
            |v: &nalgebra::Vector3<f64>, w: f64| [v.x as f32, v.y as f32, v.z as f32, w as f32];
        let plane: Vec<[f32; 4]> = vec![
            v3(&sampling.origin, padding),
            v3(&sampling.di, sampling.offsets.len() as f64),
            v3(&sampling.dj, offsets_at as f64),
            v3(&sampling.dn, mode),
            [
                vol.size()[0] as f32,
                vol.size()[1] as f32,
                vol.size()[2] as f32,
                if opts.interpolation == Interpolation::Nearest {
                    1.0
                } else {
                    0.0
                },
            ],
            [n_coords as f32, coords_at as f32, gap_over as f32, 0.0],
        ];
        let plane = plane
            .iter()
            .flatten()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        let luts = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        (uniforms, plane, luts)
    }

    /// Prepare the plane `sampling` describes (from
    /// [`crate::imaging::reslice::sampling`] for `vol`, `opts`), `size` =
    /// (columns, rows), displayed by `plan` at `placement`.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare(
        &self,
        device: &wgpu::Device,
        texture: &VolumeTexture,
        vol: &(impl GpuVolume + ?Sized),
        sampling: &Sampling,
        opts: &Options,
        size: (u32, u32),
        plan: &DisplayPlan,
        placement: &Placement,
    ) -> MprDraw {
        let (uniforms, plane, luts) = self.encode(vol, sampling, opts, size, plan, placement);
        let ubuf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("mpr display uniforms"),
            contents: &uniforms,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let pbuf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("mpr plane"),
            contents: &plane,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let lbuf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("mpr LUTs and offsets"),
            contents: &luts,
            usage: wgpu::BufferUsages::STORAGE,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("mpr"),
            layout: if texture.signed {
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
                    resource: wgpu::BindingResource::TextureView(&texture.view),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: lbuf.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: pbuf.as_entire_binding(),
                },
            ],
        });
        MprDraw {
            bind_group,
            signed: texture.signed,
            uniforms: ubuf,
            plane: pbuf,
            luts,
            columns: size.0,
            rows: size.1,
        }
    }

    /// Move the plane, change the window, zoom or pan: two small uniform
    /// writes. False when the LUT buffer would change (another slab thickness,
    /// another VOI LUT): then [`Self::prepare`] anew.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &self,
        queue: &wgpu::Queue,
        draw: &MprDraw,
        vol: &(impl GpuVolume + ?Sized),
        sampling: &Sampling,
        opts: &Options,
        plan: &DisplayPlan,
        placement: &Placement,
    ) -> bool {
        let (uniforms, plane, luts) = self.encode(
            vol,
            sampling,
            opts,
            (draw.columns, draw.rows),
            plan,
            placement,
        );
        if luts != draw.luts {
            return false;
        }
        queue.write_buffer(&draw.uniforms, 0, &uniforms);
        queue.write_buffer(&draw.plane, 0, &plane);
        true
    }

    /// Draw into a render pass whose viewport covers the plane's place.
    pub fn draw(&self, pass: &mut wgpu::RenderPass<'_>, draw: &MprDraw) {
        pass.set_pipeline(if draw.signed {
            &self.pipeline_signed
        } else {
            &self.pipeline_unsigned
        });
        pass.set_bind_group(0, &draw.bind_group, &[]);
        pass.draw(0..3, 0..1);
    }

    /// Mean milliseconds the GPU takes to draw `draw` into an offscreen
    /// target of its size, over `frames` frames (each submitted and waited
    /// for; nothing read back): a viewer's frame cost of the plane.
    pub fn time_frames(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        draw: &MprDraw,
        frames: u32,
    ) -> Result<f64> {
        time_draws(
            device,
            queue,
            self.format,
            (draw.columns, draw.rows),
            frames,
            |pass| self.draw(pass, draw),
        )
    }

    /// Render a prepared plane offscreen at one plane pixel per output pixel
    /// (prepared with [`Placement::identity`]); RGBA8, row-major.
    pub fn render_offscreen(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        draw: &MprDraw,
    ) -> Result<Vec<u8>> {
        render_target(
            device,
            queue,
            self.format,
            draw.columns,
            draw.rows,
            |pass| self.draw(pass, draw),
        )
    }
}
