//! The bridge to the GPU: the display pipeline shared by all viewports (in
//! `egui_wgpu`'s callback resources) and the per-viewport paint callback, which
//! re-prepares a bind group only when the texture (by its id) or the LUTs change.

use crate::imaging::render::DisplayPlan;
use crate::render::{GpuDisplay, ImageTexture, Placement, Prepared};
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
}

impl ViewerGpu {
    pub fn new(gpu: GpuDisplay) -> ViewerGpu {
        ViewerGpu {
            gpu,
            prepared: HashMap::new(),
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
