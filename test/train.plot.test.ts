// The training plot `npm run train` writes (demo/mnist/plot.ts, a Vega-Lite spec rendered by
// bench/vega.ts), on made-up metrics: the SVG is read back as XML and checked for its two panels'
// lines and points, the held-out accuracy, axes and legend.
import { describe, expect, it } from 'vitest';
import { PLOT_AXES, PLOT_SERIES, plotSvg, type HeldOutPoint, type PlotPoint } from '../demo/mnist/plot';
import { findAll, hasClass, parseXml, textsOf, type XmlElement } from './helpers/svg';

// Metrics read every 2nd of 20 steps; the loss of step 8 overflowed.
const points: PlotPoint[] = Array.from({ length: 10 }, (_, i) => ({ step: 2 * (i + 1), loss: i === 3 ? Infinity : 2.3 - 0.2 * i, accuracy: 0.1 + 0.08 * i }));
const heldOut: HeldOutPoint[] = [
  { step: 10, accuracy: 0.61 },
  { step: 20, accuracy: 0.835 },
];

const paths = (group: XmlElement) => findAll(group, (e) => e.name === 'path');
/** The first path of the mark group whose class includes `name` (a line mark draws one path). */
const line = (root: XmlElement, name: string) => {
  const [group] = findAll(root, (e) => hasClass(e, 'mark-line', 'role-mark', name));
  expect(group, name).toBeDefined();
  return paths(group)[0];
};
const vertices = (path: XmlElement) => (path.attributes.d.match(/[ML]/g) ?? []).length;

describe('training plot', () => {
  it('draws the loss and the batch accuracy per finite step and the held-out accuracy per evaluation, with axes and a legend', async () => {
    const root = parseXml(await plotSvg(points, heldOut, 'DEQ MNIST: picard + jfb <&>'));
    expect(root.name).toBe('svg');
    expect(textsOf(root, 'role-title-text')).toEqual(['DEQ MNIST: picard + jfb <&>']);
    expect(textsOf(root, 'role-title-subtitle')).toEqual(['9 measured steps of 20; held-out accuracy 83.50 % after step 20; 1 step with a non-finite loss not drawn']);
    const names = [PLOT_SERIES.loss.name, PLOT_SERIES.trainAccuracy.name, PLOT_SERIES.heldOut.name];
    expect(textsOf(root, 'role-legend-label')).toEqual(names);
    expect(textsOf(root, 'role-axis-title').sort()).toEqual([PLOT_AXES.accuracy, PLOT_AXES.loss, PLOT_AXES.step].sort());
    const axisLabels = textsOf(root, 'role-axis-label');
    expect(axisLabels).toContain('0%');
    expect(axisLabels).toContain('100%');

    const loss = line(root, 'loss_marks');
    const trainAccuracy = line(root, 'trainAccuracy_marks');
    const heldOutLine = line(root, 'heldOut_marks');
    expect([vertices(loss), vertices(trainAccuracy), vertices(heldOutLine)]).toEqual([9, 9, 2]);
    // Each line in its legend entry's colour.
    const legendColors = findAll(root, (e) => hasClass(e, 'role-legend-symbol')).map((g) => g.children[0].attributes.fill);
    expect([loss, trainAccuracy, heldOutLine].map((p) => p.attributes.stroke)).toEqual(legendColors);
    expect(new Set(legendColors).size).toBe(3);

    // The held-out evaluations: a point each, labelled with the accuracy.
    const heldOutPoints = findAll(root, (e) => hasClass(e, 'mark-symbol', 'role-mark'))
      .flatMap(paths)
      .map((p) => p.attributes['aria-label']);
    expect(heldOutPoints).toEqual(['training step: 10; value: 0.61; series: held-out accuracy', 'training step: 20; value: 0.835; series: held-out accuracy']);
    expect(textsOf(root, 'mark-text', 'heldOutLabel_marks')).toEqual(['61.0%', '83.5%']);
  });

  it('still renders a plot when no step was measured (stopped before the first metrics)', async () => {
    const root = parseXml(await plotSvg([], [{ step: 0, accuracy: 0.1 }], 'stopped early'));
    expect(textsOf(root, 'role-title-subtitle')).toEqual(['0 measured steps of 1; held-out accuracy 10.00 % after step 0']);
    expect(textsOf(root, 'role-legend-label')).toEqual([PLOT_SERIES.loss.name, PLOT_SERIES.heldOut.name]);
    expect(textsOf(root, 'mark-text', 'heldOutLabel_marks')).toEqual(['10.0%']);
  });

  it('leaves the batch accuracy out of lines and legend where no step measured it', async () => {
    const root = parseXml(await plotSvg(points.map(({ step, loss }) => ({ step, loss })), heldOut, 'loss only'));
    expect(textsOf(root, 'role-legend-label')).toEqual([PLOT_SERIES.loss.name, PLOT_SERIES.heldOut.name]);
    expect(vertices(line(root, 'loss_marks'))).toBe(9);
    expect(findAll(root, (e) => hasClass(e, 'mark-line', 'role-mark', 'trainAccuracy_marks')).flatMap(paths)).toEqual([]);
    expect(vertices(line(root, 'heldOut_marks'))).toBe(2);
  });
});
