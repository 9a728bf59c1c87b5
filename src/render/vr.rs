//! Volume rendering on the GPU: the volume's stored values in the same 3-D
//! integer texture as MPR ([`super::GpuMpr::upload`], uploaded once), one ray
//! per pixel in `shaders/vr.wgsl`. The rays are planned on the CPU by
//! [`crate::imaging::vr::plan`] — the reference renderer's own plan — and the
//! empty-space table comes from its [`Occupancy`] grid, so both paths walk
//! the same samples; turning the camera, moving the transfer function's
//! window or switching MIP/composite is a uniform and a small table write,
//! never an upload.

use eframe::egui_wgpu::wgpu;
use wgpu::util::DeviceExt;

use super::render_target;
use super::volume::{VOLUME_SAMPLING, VolumeTexture, fullscreen_pipeline, layout, time_draws};
use crate::error::Result;
use crate::imaging::vr::{BRICK, Mode, Occupancy, Options, Plan};
use crate::volume::GpuVolume;

const SHADER: &str = include_str!("../../shaders/vr.wgsl");

/// The volume-rendering pipelines for one device.
#[derive(Debug)]
pub struct GpuVr {
    bgl_signed: wgpu::BindGroupLayout,
    bgl_unsigned: wgpu::BindGroupLayout,
    pipeline_signed: wgpu::RenderPipeline,
    pipeline_unsigned: wgpu::RenderPipeline,
    pub format: wgpu::TextureFormat,
}

/// One prepared view: its bind group and buffers.
#[derive(Debug)]
pub struct VrDraw {
    bind_group: wgpu::BindGroup,
    signed: bool,
    ray: wgpu::Buffer,
    luts: wgpu::Buffer,
    luts_len: usize,
    pub columns: u32,
    pub rows: u32,
}

fn source(signed: bool, edit: &dyn Fn(String) -> String) -> String {
    edit(format!("{SHADER}\n{VOLUME_SAMPLING}"))
        .replace("TEX_TYPE", if signed { "i32" } else { "u32" })
}

impl GpuVr {
    /// Build the pipelines for targets of `format`.
    pub fn new(device: &wgpu::Device, format: wgpu::TextureFormat) -> GpuVr {
        GpuVr::with_shader(device, format, &|s| s)
    }

    /// The pipelines with the shader's text changed by `edit` first: for the
    /// tests that prove a wrong shader is caught.
    #[doc(hidden)]
    pub fn with_shader(
        device: &wgpu::Device,
        format: wgpu::TextureFormat,
        edit: &dyn Fn(String) -> String,
    ) -> GpuVr {
        let bgl_signed = layout(device, true, false);
        let bgl_unsigned = layout(device, false, false);
        let make = |signed: bool| {
            fullscreen_pipeline(
                device,
                if signed { &bgl_signed } else { &bgl_unsigned },
                source(signed, edit),
                if signed { "vr signed" } else { "vr unsigned" },
                format,
            )
        };
        GpuVr {
            pipeline_signed: make(true),
            pipeline_unsigned: make(false),
            bgl_signed,
            bgl_unsigned,
            format,
        }
    }

    /// The ray uniforms and the LUT buffer (slice coordinates, transfer
    /// function, brick table) of a view. `origin`: the viewport's top-left
    /// corner in the target.
    fn encode(
        &self,
        vol: &(impl GpuVolume + ?Sized),
        plan: &Plan,
        opts: &Options,
        occupancy: &Occupancy,
        origin: (f32, f32),
    ) -> Result<(Vec<u8>, Vec<u32>)> {
        let plan = &plan.clone().cropped(opts.crop.as_ref());
        let (slope, intercept) = (vol.value_rescale().slope, vol.value_rescale().intercept);
        let mut words: Vec<u32> = Vec::new();
        let (n_coords, gap_over) = match vol.real_slices() {
            Some(sc) => {
                words.extend(sc.coords.iter().map(|&c| (c as f32).to_bits()));
                (sc.coords.len(), sc.gap_over)
            }
            None => (0, 0.0),
        };
        let tf_at = words.len();
        let (n_points, mip, window) = match &opts.mode {
            Mode::Composite(tf) => {
                for p in &tf.points {
                    words.extend(
                        [p.value, p.rgb[0], p.rgb[1], p.rgb[2], p.opacity]
                            .iter()
                            .map(|&x| (x as f32).to_bits()),
                    );
                }
                (tf.points.len(), false, (0.0, 1.0))
            }
            Mode::Mip(w) => (0, true, (w.center, w.width)),
        };
        let table_at = words.len();
        match &opts.mode {
            Mode::Composite(tf) => words.extend(
                occupancy
                    .visible(tf, slope, intercept)
                    .iter()
                    .map(|&b| b as u32),
            ),
            Mode::Mip(_) => words.extend(
                occupancy
                    .brightest(slope)
                    .iter()
                    .map(|&s| ((slope * s as f64 + intercept) as f32).to_bits()),
            ),
        }
        let limit = u32::MAX as usize;
        if words.len() > limit {
            return Err(super::gpu_err("the brick table is too large"));
        }
        let v3 =
            |v: &nalgebra::Vector3<f64>, w: f64| [v.x as f32, v.y as f32, v.z as f32, w as f32];
        let g = &plan.gradient;
        let row = |r: usize, w: f64| {
            [
                g[(r, 0)] as f32,
                g[(r, 1)] as f32,
                g[(r, 2)] as f32,
                w as f32,
            ]
        };
        let light = -plan.camera.forward;
        let b = occupancy.bricks;
        let ray: Vec<[f32; 4]> = vec![
            v3(&plan.origin, plan.steps as f64),
            v3(&plan.du, plan.step_mm),
            v3(&plan.dv, if mip { 1.0 } else { 0.0 }),
            v3(&plan.step, if opts.shading { 1.0 } else { 0.0 }),
            [
                vol.size()[0] as f32,
                vol.size()[1] as f32,
                vol.size()[2] as f32,
                0.0,
            ],
            [n_coords as f32, 0.0, gap_over as f32, tf_at as f32],
            row(0, n_points as f64),
            row(1, slope),
            row(2, intercept),
            v3(&plan.lo, table_at as f64),
            v3(&plan.hi, if opts.skipping { 1.0 } else { 0.0 }),
            v3(&light, if self.format.is_srgb() { 1.0 } else { 0.0 }),
            [window.0 as f32, window.1 as f32, origin.0, origin.1],
            [b[0] as f32, b[1] as f32, b[2] as f32, BRICK as f32],
        ];
        let ray = ray.iter().flatten().flat_map(|f| f.to_le_bytes()).collect();
        Ok((ray, words))
    }

    /// Prepare the view `plan` describes (from [`crate::imaging::vr::plan`]
    /// for `vol`), drawn with `opts`, `occupancy` being
    /// [`Occupancy::of`] the volume.
    pub fn prepare(
        &self,
        device: &wgpu::Device,
        texture: &VolumeTexture,
        vol: &(impl GpuVolume + ?Sized),
        plan: &Plan,
        opts: &Options,
        occupancy: &Occupancy,
    ) -> Result<VrDraw> {
        if texture.dims != vol.size().map(|d| d as u32) {
            return Err(super::gpu_err("the texture is not this volume's"));
        }
        let (ray, words) = self.encode(vol, plan, opts, occupancy, (0.0, 0.0))?;
        let ray_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("vr ray"),
            contents: &ray,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let luts = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("vr slice coordinates, transfer function and bricks"),
            contents: &bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("vr"),
            layout: if texture.signed {
                &self.bgl_signed
            } else {
                &self.bgl_unsigned
            },
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: ray_buf.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(&texture.view),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: luts.as_entire_binding(),
                },
            ],
        });
        Ok(VrDraw {
            bind_group,
            signed: texture.signed,
            ray: ray_buf,
            luts,
            luts_len: words.len(),
            columns: plan.camera.columns as u32,
            rows: plan.camera.rows as u32,
        })
    }

    /// Turn the camera, move the transfer function or change the mode: two
    /// buffer writes. False when the view's size or the transfer function's
    /// number of points changed (the buffers' sizes): then prepare anew.
    /// `origin`: the viewport's top-left corner in the target.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &self,
        queue: &wgpu::Queue,
        draw: &VrDraw,
        vol: &(impl GpuVolume + ?Sized),
        plan: &Plan,
        opts: &Options,
        occupancy: &Occupancy,
        origin: (f32, f32),
    ) -> Result<bool> {
        if (plan.camera.columns as u32, plan.camera.rows as u32) != (draw.columns, draw.rows) {
            return Ok(false);
        }
        let (ray, words) = self.encode(vol, plan, opts, occupancy, origin)?;
        if words.len() != draw.luts_len {
            return Ok(false);
        }
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        queue.write_buffer(&draw.ray, 0, &ray);
        queue.write_buffer(&draw.luts, 0, &bytes);
        Ok(true)
    }

    /// Draw into a render pass whose viewport covers the view's place.
    pub fn draw(&self, pass: &mut wgpu::RenderPass<'_>, draw: &VrDraw) {
        pass.set_pipeline(if draw.signed {
            &self.pipeline_signed
        } else {
            &self.pipeline_unsigned
        });
        pass.set_bind_group(0, &draw.bind_group, &[]);
        pass.draw(0..3, 0..1);
    }

    /// Render a prepared view offscreen; RGBA8, row-major.
    pub fn render_offscreen(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        draw: &VrDraw,
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

    /// Mean milliseconds the GPU takes to draw `draw` offscreen at its size,
    /// over `frames` frames (each submitted and waited for).
    pub fn time_frames(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        draw: &VrDraw,
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
}
