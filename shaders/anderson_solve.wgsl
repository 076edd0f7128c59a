// Anderson: the small regularised solve, in one workgroup (the start of a solve; its iterations
// run it inside anderson_step.wgsl). Completes row/column p of the Gram matrix G from the partial
// dots, then solves for α (lib/anderson_alpha.wgsl). On a restart slot 0 takes slot p's place,
// so G[0][0] <- G[p][p].
// Bindings: ctrl (read); params {groups, slots, reg}; ring = the schedule (lib/anderson_ring.wgsl);
//           partials [ceil(len / 4) × groups] vec4 (dot j in lane j % 4); gram [slots × slots]
//           (persists across iterations); alpha [slots].
// Dispatch: (1).

//! include lib/control.wgsl
//! include lib/anderson_ring.wgsl
//! include lib/anderson_alpha.wgsl

struct SolveParams { groups: u32, slots: u32, reg: f32 }

@group(0) @binding(0) var<storage, read> ctrl: Control;
@group(0) @binding(1) var<uniform> params: SolveParams;
@group(0) @binding(2) var<storage, read> ring: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> partials: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> gram: array<f32>;
@group(0) @binding(5) var<storage, read_write> alpha: array<f32>;

fn anderson_gram_at(r: u32, c: u32) -> f32 { return gram[r * params.slots + c]; }

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32) {
  if (solve_done(lid)) { return; }
  let entry = ring_entry(ctrl.h.nstep);
  let p = entry.x;
  let len = entry.y;
  let m = params.slots;
  for (var j = lid; j < len; j += 64u) {
    var dot = 0.0;
    let chunk = (j / 4u) * params.groups; // anderson_gram.wgsl: four slots per vec4
    for (var g = 0u; g < params.groups; g++) { dot += partials[chunk + g][j % 4u]; }
    gram[p * m + j] = dot;
    gram[j * m + p] = dot;
  }
  storageBarrier();
  if (lid != 0u) { return; }

  anderson_alpha(p, len, m, params.reg);
  for (var j = 0u; j < m; j++) { alpha[j] = alpha_value[j]; }
  if (entry.z != 0u) { gram[0] = gram[p * m + p]; }
}
