// The rows of a per-sample solve still going (src/solvers/per-sample.ts): `groups` is the
// indirect dispatch of the per-row kernels (one workgroup per row still going; 0 once the solve
// is done), `rows` their indices in order. rows_finish.wgsl writes it after every evaluation; the
// per-row kernels read their row as rows[workgroup index]. Starts as every row (the CPU writes it).
// Layout: groups at byte 0 (the indirect arguments), rows from byte 12 (a vec3's size).
struct RowsActive {
  groups: vec3<u32>,
  rows: array<u32>,
}
