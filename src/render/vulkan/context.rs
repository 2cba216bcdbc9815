//! Instance, device selection, allocators and the compute pipelines.

use std::sync::Arc;

use vulkano::command_buffer::allocator::StandardCommandBufferAllocator;
use vulkano::descriptor_set::allocator::StandardDescriptorSetAllocator;
use vulkano::device::physical::{PhysicalDevice, PhysicalDeviceType, SubgroupFeatures};
use vulkano::device::{
    Device, DeviceCreateInfo, DeviceExtensions, DeviceFeatures, Queue, QueueCreateInfo, QueueFlags,
};
use vulkano::instance::{Instance, InstanceCreateFlags, InstanceCreateInfo};
use vulkano::memory::allocator::StandardMemoryAllocator;
use vulkano::pipeline::compute::ComputePipelineCreateInfo;
use vulkano::pipeline::layout::{PipelineDescriptorSetLayoutCreateInfo, PushConstantRange};
use vulkano::pipeline::{ComputePipeline, PipelineLayout, PipelineShaderStageCreateInfo};
use vulkano::shader::{ShaderModule, ShaderModuleCreateInfo, ShaderStages, SpecializationConstant};
use vulkano::{Version, VulkanLibrary};

use crate::render::{RenderConfig, RenderError};

pub(super) fn vk<E: std::fmt::Debug>(what: &'static str) -> impl Fn(E) -> RenderError {
    move |e| RenderError::Vulkan(format!("{what}: {e:?}"))
}

pub struct Context {
    pub device: Arc<Device>,
    pub queue: Arc<Queue>,
    pub mem: Arc<StandardMemoryAllocator>,
    pub cb_alloc: Arc<StandardCommandBufferAllocator>,
    pub ds_alloc: Arc<StandardDescriptorSetAllocator>,
    pub float_atomics: bool,
    pub name: String,
    /// Pixel block per invocation of the forward raster kernel, `[rows, cols, cull]`: a CPU
    /// device runs a subgroup as one SIMD vector, so taller blocks amortise each Gaussian's
    /// fetch; GPUs want one pixel per lane. `cull`: 0 none, 1 Gaussians per subgroup and then
    /// pixel rows, 2 Gaussians per subgroup only (on a CPU device each row skip is a loop whose
    /// bookkeeping costs more than the rows it skips). `GS_LIVO_RASTER_FWD=rows,cols,cull`
    /// overrides.
    pub raster_fwd: [u32; 3],
    /// The same for the backward raster kernel (`GS_LIVO_RASTER_BWD`).
    pub raster_bwd: [u32; 3],
}

fn type_rank(t: PhysicalDeviceType) -> u32 {
    match t {
        PhysicalDeviceType::DiscreteGpu => 0,
        PhysicalDeviceType::IntegratedGpu => 1,
        PhysicalDeviceType::VirtualGpu => 2,
        PhysicalDeviceType::Cpu => 3,
        _ => 4,
    }
}

/// Whether the best usable Vulkan device is a GPU or a CPU implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Gpu,
    Cpu,
}

/// The kind of the device `Auto` would pick (`None`: no loader or no usable device).
pub fn best_device_kind() -> Option<DeviceKind> {
    let lib = VulkanLibrary::new().ok()?;
    let inst = Instance::new(
        lib,
        InstanceCreateInfo {
            flags: InstanceCreateFlags::ENUMERATE_PORTABILITY,
            ..Default::default()
        },
    )
    .ok()?;
    let best = inst
        .enumerate_physical_devices()
        .ok()?
        .filter(usable)
        .map(|p| type_rank(p.properties().device_type))
        .min()?;
    Some(if best <= 2 {
        DeviceKind::Gpu
    } else {
        DeviceKind::Cpu
    })
}

/// Vulkan 1.2 with a compute queue and the subgroup operations the kernels use.
fn usable(p: &Arc<PhysicalDevice>) -> bool {
    p.api_version() >= Version::V1_2
        && p.queue_family_properties()
            .iter()
            .any(|q| q.queue_flags.intersects(QueueFlags::COMPUTE))
        && has_subgroup_ops(p)
}

/// Subgroup operations of the kernels (minima and maxima, votes, butterfly shuffles), in compute
/// shaders. Vulkan 1.1 only guarantees the basic ones.
fn has_subgroup_ops(p: &Arc<PhysicalDevice>) -> bool {
    let props = p.properties();
    let need = SubgroupFeatures::BASIC
        | SubgroupFeatures::VOTE
        | SubgroupFeatures::ARITHMETIC
        | SubgroupFeatures::SHUFFLE;
    props
        .subgroup_supported_operations
        .is_some_and(|ops| ops.contains(need))
        && props
            .subgroup_supported_stages
            .is_some_and(|st| st.intersects(ShaderStages::COMPUTE))
}

/// Names of the Vulkan devices the loader enumerates (empty when there is no loader/device).
pub fn enumerate_devices() -> Vec<String> {
    let Ok(lib) = VulkanLibrary::new() else {
        return Vec::new();
    };
    let Ok(inst) = Instance::new(
        lib,
        InstanceCreateInfo {
            flags: InstanceCreateFlags::ENUMERATE_PORTABILITY,
            ..Default::default()
        },
    ) else {
        return Vec::new();
    };
    inst.enumerate_physical_devices()
        .map(|it| it.map(|p| p.properties().device_name.clone()).collect())
        .unwrap_or_default()
}

/// `[rows, cols, cull]` from an environment variable, else `default`.
fn raster_layout(var: &str, default: [u32; 3]) -> Result<[u32; 3], RenderError> {
    let Ok(v) = std::env::var(var) else {
        return Ok(default);
    };
    let bad = || RenderError::InvalidInput(format!("{var}={v}: expected rows,cols,cull"));
    let p: Vec<u32> = v
        .split(',')
        .map(|x| x.trim().parse::<u32>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    match p[..] {
        [r, c, cull] if [1, 2, 4, 8, 16].contains(&r) && [1, 2].contains(&c) && cull <= 2 => {
            Ok([r, c, cull])
        }
        _ => Err(bad()),
    }
}

impl Context {
    pub fn new(cfg: &RenderConfig) -> Result<Self, RenderError> {
        let lib = VulkanLibrary::new().map_err(|e| RenderError::NoDevice(format!("{e}")))?;
        let instance = Instance::new(
            lib,
            InstanceCreateInfo {
                flags: InstanceCreateFlags::ENUMERATE_PORTABILITY,
                ..Default::default()
            },
        )
        .map_err(|e| RenderError::NoDevice(format!("instance: {e:?}")))?;
        let all: Vec<Arc<PhysicalDevice>> = instance
            .enumerate_physical_devices()
            .map_err(|e| RenderError::NoDevice(format!("{e:?}")))?
            .collect();
        if all.is_empty() {
            return Err(RenderError::NoDevice("no Vulkan device".into()));
        }
        let want = cfg.device.trim();
        let physical = if want.is_empty() {
            let mut c: Vec<_> = all.iter().filter(|p| usable(p)).cloned().collect();
            c.sort_by_key(|p| type_rank(p.properties().device_type));
            c.into_iter().next()
        } else if let Ok(idx) = want.parse::<usize>() {
            all.get(idx).cloned()
        } else {
            let w = want.to_ascii_lowercase();
            all.iter()
                .find(|p| p.properties().device_name.to_ascii_lowercase().contains(&w))
                .cloned()
        }
        .ok_or_else(|| {
            RenderError::NoDevice(format!(
                "no Vulkan 1.2 compute device matches '{want}' (found: {:?})",
                all.iter()
                    .map(|p| p.properties().device_name.clone())
                    .collect::<Vec<_>>()
            ))
        })?;
        if !usable(&physical) {
            return Err(RenderError::NoDevice(format!(
                "{} lacks Vulkan 1.2, a compute queue, or basic, vote, arithmetic and shuffle \
                 subgroup operations in compute shaders (it has {:?})",
                physical.properties().device_name,
                physical.properties().subgroup_supported_operations
            )));
        }
        let qf = physical
            .queue_family_properties()
            .iter()
            .position(|q| q.queue_flags.intersects(QueueFlags::COMPUTE))
            .expect("checked") as u32;
        let float_atomics = cfg.float_atomics
            && physical.supported_extensions().ext_shader_atomic_float
            && physical
                .supported_features()
                .shader_buffer_float32_atomic_add;
        let (extensions, mut features) = if float_atomics {
            (
                DeviceExtensions {
                    ext_shader_atomic_float: true,
                    ..DeviceExtensions::empty()
                },
                DeviceFeatures {
                    shader_buffer_float32_atomic_add: true,
                    ..DeviceFeatures::empty()
                },
            )
        } else {
            (DeviceExtensions::empty(), DeviceFeatures::empty())
        };
        features.subgroup_broadcast_dynamic_id =
            physical.supported_features().subgroup_broadcast_dynamic_id;
        let name = physical.properties().device_name.clone();
        let sg = physical.properties().subgroup_size.unwrap_or(0);
        if sg < 8 || !sg.is_power_of_two() {
            return Err(RenderError::NoDevice(format!(
                "{name}: subgroup size {sg}, the rasteriser needs a power of two >= 8"
            )));
        }
        let cpu = physical.properties().device_type == PhysicalDeviceType::Cpu;
        let raster_fwd = raster_layout(
            "GS_LIVO_RASTER_FWD",
            if cpu { [8, 2, 2] } else { [1, 1, 1] },
        )?;
        let raster_bwd = raster_layout(
            "GS_LIVO_RASTER_BWD",
            if cpu { [8, 2, 2] } else { [1, 1, 1] },
        )?;
        let (device, mut queues) = Device::new(
            physical,
            DeviceCreateInfo {
                queue_create_infos: vec![QueueCreateInfo {
                    queue_family_index: qf,
                    ..Default::default()
                }],
                enabled_extensions: extensions,
                enabled_features: features,
                ..Default::default()
            },
        )
        .map_err(vk("device"))?;
        let queue = queues.next().expect("one queue");
        tracing::info!(
            device = %name,
            float_atomics,
            ?raster_fwd,
            ?raster_bwd,
            "Vulkan rasteriser"
        );
        Ok(Self {
            mem: Arc::new(StandardMemoryAllocator::new_default(device.clone())),
            cb_alloc: Arc::new(StandardCommandBufferAllocator::new(
                device.clone(),
                Default::default(),
            )),
            ds_alloc: Arc::new(StandardDescriptorSetAllocator::new(
                device.clone(),
                Default::default(),
            )),
            device,
            queue,
            float_atomics,
            name,
            raster_fwd,
            raster_bwd,
        })
    }

    /// A compute pipeline from SPIR-V bytes, with the shared 128-byte push-constant range and
    /// the given specialisation constants `(id, value)`.
    pub fn pipeline(
        &self,
        name: &str,
        spv: &[u8],
        spec: &[(u32, u32)],
    ) -> Result<Arc<ComputePipeline>, RenderError> {
        let words = vulkano::shader::spirv::bytes_to_words(spv)
            .map_err(|e| RenderError::Vulkan(format!("{name}: {e:?}")))?;
        // SAFETY: the SPIR-V comes from glslang at build time and is validated by vulkano.
        let module =
            unsafe { ShaderModule::new(self.device.clone(), ShaderModuleCreateInfo::new(&words)) }
                .map_err(|e| RenderError::Vulkan(format!("{name}: {e:?}")))?;
        let entry = if spec.is_empty() {
            module.entry_point("main")
        } else {
            let info = spec
                .iter()
                .map(|&(id, v)| (id, SpecializationConstant::U32(v)))
                .collect();
            module
                .specialize(info)
                .map_err(|e| RenderError::Vulkan(format!("{name}: {e:?}")))?
                .entry_point("main")
        }
        .ok_or_else(|| RenderError::Vulkan(format!("{name}: no main")))?;
        let stage = PipelineShaderStageCreateInfo::new(entry);
        let mut info = PipelineDescriptorSetLayoutCreateInfo::from_stages([&stage])
            .into_pipeline_layout_create_info(self.device.clone())
            .map_err(|e| RenderError::Vulkan(format!("{name}: {e:?}")))?;
        info.push_constant_ranges = vec![PushConstantRange {
            stages: ShaderStages::COMPUTE,
            offset: 0,
            size: 128,
        }];
        let layout = PipelineLayout::new(self.device.clone(), info)
            .map_err(|e| RenderError::Vulkan(format!("{name}: {e:?}")))?;
        ComputePipeline::new(
            self.device.clone(),
            None,
            ComputePipelineCreateInfo::stage_layout(stage, layout),
        )
        .map_err(|e| RenderError::Vulkan(format!("{name}: {e:?}")))
    }
}
