// Softmax cross-entropy over rows of logits, with its gradient and an accuracy count:
// entry `rows_main`: per row r (one thread), with z = logits[r, ·], y = labels[r], p = softmax(z)
//   computed as exp(z − max z) / Σ exp(z − max z) (stable for any finite logits):
//     grad[r, c] = (p_c − [c == y]) / rows
//     loss term  = (max z − z_y) + log Σ exp(z − max z)
//     hit        = 1 when the first index of max z equals y
//   and per-workgroup partial sums (loss terms, hits) in a fixed tree order.
//   A row whose label is ≥ classes is ignored: loss term 0, hit 0, grad row 0 (mean still over rows).
// entry `total_main`: one workgroup sums the partials: loss[0] = Σ loss terms / rows, correct[0] = Σ hits.
// Bindings: params {rows, classes, groups}; logits [rows, classes]; labels [rows] (u32);
//           grad [rows, classes]; partials [groups] (vec4); loss [1]; correct [1] (f32 count).
// Dispatch: rows_main (groups); total_main (1).

//! include lib/reduce.wgsl

const REDUCE_SIZE: u32 = 256u;

struct XentParams { rows: u32, classes: u32, groups: u32 }

@group(0) @binding(0) var<uniform> params: XentParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;
@group(0) @binding(6) var<storage, read_write> correct: array<f32>;

@compute @workgroup_size(256)
fn rows_main(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_index) lid: u32) {
  let classes = params.classes;
  let scale = 1.0 / f32(params.rows);
  var sums = vec4<f32>(0.0);
  for (var r = group.x * REDUCE_SIZE + lid; r < params.rows; r += params.groups * REDUCE_SIZE) {
    let base = r * classes;
    let label = labels[r];
    let valid = label < classes;
    // Strict > keeps the first maximum, which the accuracy count (and the reference) relies on.
    var top = logits[base];
    var arg = 0u;
    for (var j = 1u; j < classes; j++) {
      let z = logits[base + j];
      if (z > top) { top = z; arg = j; }
    }
    var total = 0.0;
    for (var j = 0u; j < classes; j++) { total += exp(logits[base + j] - top); }
    let inv_total = 1.0 / total;
    for (var j = 0u; j < classes; j++) {
      var g = 0.0;
      if (valid) {
        g = exp(logits[base + j] - top) * inv_total;
        if (j == label) { g -= 1.0; }
      }
      grad[base + j] = g * scale;
    }
    if (valid) {
      // top − z_y first: exact for nearby values, so large logits lose nothing to cancellation.
      sums.x += (top - logits[base + label]) + log(total);
      if (arg == label) { sums.y += 1.0; }
    }
  }
  let reduced = workgroup_sum(sums, lid);
  if (lid == 0u) { partials[group.x] = reduced; }
}

@compute @workgroup_size(256)
fn total_main(@builtin(local_invocation_index) lid: u32) {
  var sums = vec4<f32>(0.0);
  for (var g = lid; g < params.groups; g += REDUCE_SIZE) { sums += partials[g]; }
  let total = workgroup_sum(sums, lid);
  if (lid == 0u) {
    loss[0] = total.x / f32(params.rows);
    correct[0] = total.y;
  }
}
