// The training curves every page shows: per epoch (loss, accuracy) and per step (loss), for one
// or several versions (or runs) overlaid. Series ids follow the report:
// epoch-loss/<metric>/<version>, epoch-acc/<metric>/<version>, step-loss/loss/<version>.
import { el } from './util.js';
import { lineChart, colorOf } from './chart.js';

const pts = (rows, xKey, yKey) =>
  (rows || []).map((r) => [Number(r?.[xKey]), Number(r?.[yKey])])
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));

// items: [{label, epochs:[...], steps:[...]}]; the label is the version (or run id).
export function curves(items) {
  const multi = items.length > 1;
  const name = (it, metric) => (multi ? `${it.label} ${metric}` : metric);
  const epochChart = (id, title, yTitle, yFormat, metrics) => lineChart({
    id, title, xTitle: 'epoch', yTitle, xFormat: 'integer', yFormat,
    empty: 'No epoch finished yet.',
    series: items.flatMap((it, i) => metrics.map(([key, dashed]) => ({
      id: `${id}/${key}/${it.label}`, label: name(it, key), color: colorOf(i), dashed,
      points: pts(it.epochs, 'epoch', key),
    }))),
  });
  const stepChart = lineChart({
    id: 'step-loss', title: 'Loss per step', width: window.innerWidth < 900 ? 560 : 1140, height: 300, xTitle: 'global step', yTitle: 'loss',
    xFormat: 'integer', yFormat: 'number', empty: 'No step history yet (it is stored with the epoch metrics; log.every_steps: 0 turns it off).',
    series: items.map((it, i) => ({
      id: `step-loss/loss/${it.label}`, label: name(it, 'loss'), color: colorOf(i), markers: false,
      points: pts(it.steps, 'global_step', 'loss'),
    })),
  });
  return el('div', { class: 'charts' },
    epochChart('epoch-loss', 'Loss per epoch', 'loss', 'number', [['train_loss', false], ['test_loss', true]]),
    epochChart('epoch-acc', 'Accuracy per epoch', 'accuracy', 'percent', [['train_acc', false], ['test_acc', true]]),
    el('div', { class: 'steps wide' }, stepChart));
}
