/** The scenario scorer (lab/score.ts) on a hand-made run: true and false positives, misses, normal periods. */
import { describe, expect, it } from 'vitest';
import { score, type Detected, type Label } from '../../lab/score.js';

const label = (name: string, kinds: string[], start: number, until: number): Label => ({ name, kinds, description: '', start, end: start, until });
const at = (kind: string, started_at: number): Detected => ({ kind, severity: 'warning', started_at, ended_at: null });

describe('scenario scoring', () => {
  const labels = [label('normal', [], 0, 100), label('scan', ['port_scan', 'rej_storm'], 100, 200), label('quiet', [], 200, 300), label('scan-2', ['port_scan'], 300, 400)];

  it('counts true positives, misses and false positives per kind, with slack only before anomaly windows', () => {
    const s = score(labels, [at('port_scan', 97), at('port_scan', 150), at('invalid_spike', 250), at('port_scan', 500)], ['port_scan', 'rej_storm', 'invalid_spike'], 5);
    const k = Object.fromEntries(s.kinds.map((x) => [x.kind, x]));
    expect(k.port_scan).toMatchObject({ labelled: 2, detected: 1, anomalies: 3, truePositives: 2, recall: 0.5 });
    expect(k.port_scan!.precision).toBeCloseTo(2 / 3);
    expect(k.rej_storm).toMatchObject({ labelled: 1, detected: 0, recall: 0, precision: null });
    expect(k.invalid_spike).toMatchObject({ labelled: 0, anomalies: 1, truePositives: 0, precision: 0, recall: null });
    // 97 is a true positive dated early (slack): not a normal-period false positive
    expect(s.normalFalsePositives.map((a) => [a.kind, a.label])).toEqual([['invalid_spike', 'quiet']]);
    expect(s.unattributed.map((a) => a.started_at)).toEqual([500]);
  });
});
