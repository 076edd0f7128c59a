/**
 * The `dropout` stage: inverted dropout with masks from the solve's key and evaluation index
 * (shaders/stages/dropout.wgsl), none in inference mode.
 */
import type { Engine } from '../../engine';
import { OptionError } from '../../errors';
import { checkDropout, dropoutParams, type DropoutOptions } from '../dropout';
import type { Stage } from '../stage';
import { PointwiseKernels } from './common';

/**
 * Inverted dropout: in training mode each element is zeroed with probability `rate` and the kept
 * ones are scaled by 1 / (1 − rate); with `inference: true` and outside a solve it is the identity.
 * Masks follow the solve's `key` and evaluation index like the tanh block's (see
 * {@link DropoutOptions}); the stage's index in its sequential layer is mixed into the key, so two
 * dropout stages draw different masks.
 *
 * @throws OptionError (`'dropout'`, `'dropout.rate'`, `'dropout.noise'`).
 */
export function dropout(options: number | DropoutOptions): Stage {
  if (options === undefined) throw new OptionError('dropout', 'needs a rate in [0, 1) or { rate, noise }');
  return dropoutStage(checkDropout(options));
}

/**
 * @internal The dropout stage for checked settings; its masks are salted with `salt`, or with its
 * index in the layer when omitted (the tanh block's dropout uses salt 0, its masks of old).
 */
export function dropoutStage(settings: Readonly<Required<DropoutOptions>> | null, salt?: number): Stage {
  const uniforms = (index: number) => ({ drop_salt: salt ?? index, ...dropoutParams(settings) });
  return Object.freeze({
    kind: 'dropout',
    params: Object.freeze({}),
    readsQd: false,
    instantiate: (engine: Engine, inputSize: number, index: number) =>
      new PointwiseKernels(engine, 'dropout stage', 'stageDropout', inputSize, uniforms(index), { input: 'x_in', output: 'y_out' }),
    epilogueLink: (index: number) => ({ op: 'dropout' as const, dropout: uniforms(index) }),
  });
}
