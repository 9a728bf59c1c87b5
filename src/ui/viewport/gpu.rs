//! The bridge to the GPU: the display pipeline shared by all viewports (in
//! `egui_wgpu`'s callback resources) and the per-viewport paint callback, which
//! re-prepares a bind group only when the texture (by its id) or the LUTs change.

use crate::imaging::render::DisplayPlan;
use crate::render::{
    GpuDisplay, GpuMpr, GpuVr, ImageTexture, Placement, Prepared, VolumeTexture, VrDraw,
};
use eframe::egui::{self};
use eframe::egui_wgpu::{self, wgpu};
use std::collections::HashMap;
use std::sync::Arc;

/// GPU state shared by all viewports (lives in egui_wgpu's callback resources).
#[derive(Debug)]
pub struct ViewerGpu {
    pub gpu: GpuDisplay,
    /// Per viewport key: the id of the texture its bind group was made for, and it.
    pub(super) prepared: HashMap<u64, (u64, Prepared)>,
    /// The target's format, for the volume pipelines made when first needed.
    format: wgpu::TextureFormat,
    /// MPR's 3-D view on the GPU: the volume renderer, the uploader, the 3-D
    /// textures by shared block, and per viewport key the block its draw was
    /// prepared for, and the draw.
    vr: Option<(GpuMpr, GpuVr)>,
    volumes: HashMap<u64, VolumeTexture>,
    vr_draws: HashMap<u64, (u64, VrDraw)>,
}

impl ViewerGpu {
    pub fn new(gpu: GpuDisplay, format: wgpu::TextureFormat) -> ViewerGpu {
        ViewerGpu {
            gpu,
            prepared: HashMap::new(),
            format,
            vr: None,
            volumes: HashMap::new(),
            vr_draws: HashMap::new(),
        }
    }
}

/// A volume rendering drawn on the GPU into a viewport (see `ui::vr`): the
/// stack's shared block read as a volume, the rays of the view, how they
/// become pixels, the occupancy grid, and the picture's top-left corner in the
/// target (physical pixels).
pub(super) struct VrCallback {
    pub(super) key: u64,
    pub(super) frame: super::GpuVrFrame,
    pub(super) origin: (f32, f32),
}

impl egui_wgpu::CallbackTrait for VrCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(r) = resources.get_mut::<ViewerGpu>() else {
            return Vec::new();
        };
        let f = &self.frame;
        let format = r.format;
        let (mpr, vr) =
            r.vr.get_or_insert_with(|| (GpuMpr::new(device, format), GpuVr::new(device, format)));
        let view = f
            .block
            .view(f.patient_from_voxel, f.rescale, f.slice_coords.as_deref());
        let id = f.block.id();
        if !r.volumes.contains_key(&id) {
            match mpr.upload(device, queue, &view) {
                Ok(t) => {
                    // One stack's texture at a time: the last one shown.
                    r.volumes.clear();
                    r.vr_draws.clear();
                    r.volumes.insert(id, t);
                }
                Err(e) => {
                    tracing::error!("3-D view: {e}");
                    return Vec::new();
                }
            }
        }
        let Some(texture) = r.volumes.get(&id) else {
            return Vec::new();
        };
        let updated = match r.vr_draws.get(&self.key) {
            Some((block, d)) if *block == id => vr
                .update(queue, d, &view, &f.plan, &f.opts, &f.occupancy, self.origin)
                .unwrap_or(false),
            _ => false,
        };
        if !updated {
            match vr.prepare(device, texture, &view, &f.plan, &f.opts, &f.occupancy) {
                Ok(d) => {
                    let _ = vr.update(
                        queue,
                        &d,
                        &view,
                        &f.plan,
                        &f.opts,
                        &f.occupancy,
                        self.origin,
                    );
                    r.vr_draws.insert(self.key, (id, d));
                }
                Err(e) => tracing::error!("3-D view: {e}"),
            }
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(r) = resources.get::<ViewerGpu>()
            && let Some((_, vr)) = &r.vr
            && let Some((_, d)) = r.vr_draws.get(&self.key)
        {
            vr.draw(pass, d);
        }
    }
}

pub(super) struct ImageCallback {
    pub(super) key: u64,
    pub(super) texture: Arc<ImageTexture>,
    pub(super) plan: DisplayPlan,
    pub(super) placement: Placement,
    pub(super) shutter: Option<crate::values::Shutter>,
}

impl egui_wgpu::CallbackTrait for ImageCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(r) = resources.get_mut::<ViewerGpu>() else {
            return Vec::new();
        };
        let id = self.texture.id();
        let shutter = self.shutter.as_ref();
        // Same image and LUTs: only the uniforms change (window, zoom, pan).
        let updated = match r.prepared.get(&self.key) {
            Some((tex, p)) if *tex == id => r.gpu.update(
                queue,
                p,
                &self.texture,
                &self.plan,
                &self.placement,
                shutter,
            ),
            _ => false,
        };
        if !updated {
            let p = r
                .gpu
                .prepare(device, &self.texture, &self.plan, &self.placement, shutter);
            r.prepared.insert(self.key, (id, p));
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(r) = resources.get::<ViewerGpu>()
            && let Some((_, p)) = r.prepared.get(&self.key)
        {
            r.gpu.draw(pass, p);
        }
    }
}
