// `require('anchorax')`: anchorax is an ES module package. Node >= 22.12 can require() ES
// modules, so this hands over the Node entry there; older Node gets a clear message instead of
// ERR_REQUIRE_ESM's generic one. (Copied to dist/require.cjs by scripts/finish-dist.mjs.)
'use strict';
try {
  module.exports = require('./node.js');
} catch (err) {
  if (err && (err.code === 'ERR_REQUIRE_ESM' || err.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
    const message =
      'anchorax is an ES module package (ESM only): use `import { Engine } from "anchorax"` or ' +
      '`await import("anchorax")` instead of require(), or run Node >= 22.12, which can require() it.';
    const error = new Error(message);
    error.code = 'ERR_REQUIRE_ESM';
    throw error;
  }
  throw err;
}
