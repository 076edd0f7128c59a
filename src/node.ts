/**
 * The Node entry of anchorax (the package's `node` export condition, also `anchorax/node`):
 * everything of the browser entry, with Dawn (the optional peer dependency `webgpu`) registered
 * as the WebGPU implementation and file paths read and written through `node:fs`.
 */
import './node-platform';

export * from './index';
