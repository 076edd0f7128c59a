// Grid-stride loops over n elements with 256-thread workgroups: a kernel dispatched with
// min(ceil(n / 256), maxComputeWorkgroupsPerDimension) workgroups visits i = id.x, id.x + stride, …

fn grid_stride(groups: vec3u) -> u32 { return groups.x * 256u; }
