// Anderson's ring schedule, read by iteration. The table written by anderson.ts is a header
// ring[0] = (prefix, period, 0, 0) followed by the entries (p, len, restart, q) of iterations
// 0 .. prefix + period − 1: the schedule depends only on t and repeats with `period` from
// iteration `prefix` on, so iteration t ≥ prefix reads entry prefix + (t − prefix) mod period.
// The table's size is bounded by the window, not by maxDepth. Needs `ring` declared by the kernel.

// Most slots a ring has (windowSize + 1; src/solvers/options.ts bounds windowSize by it).
const MAX_SLOTS: u32 = 33u;

fn ring_entry(t: u32) -> vec4<u32> {
  let prefix = ring[0].x;
  let period = ring[0].y;
  var index = t;
  if (t >= prefix) { index = prefix + (t - prefix) % period; }
  return ring[1u + index];
}
