// The operands of a fused step's commit (lib/step.wgsl) as bindings 4 and 5: the iterate measured
// last and the one before it [n].

@group(0) @binding(4) var<storage, read> step_candidate: array<f32>;
@group(0) @binding(5) var<storage, read> step_previous: array<f32>;

fn step_candidate_at(i: u32) -> f32 { return step_candidate[i]; }
fn step_previous_at(i: u32) -> f32 { return step_previous[i]; }
