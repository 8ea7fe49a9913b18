/**
 * Precision and recall of the detectors against a labelled scenario run. A label is a time window
 * (from the scenario's start, less `slackMs` for detectors that date an anomaly from the start of
 * a window, to its end plus its settle time) and the kinds its traffic should open; a normal
 * period has none. An anomaly is a true positive when it started inside a window labelled with its
 * kind; every other anomaly is a false positive. A window's kind is detected when at least one
 * anomaly of that kind started inside it.
 */
export interface Label {
  name: string;
  kinds: string[];
  description: string;
  /** Epoch ms: the traffic began, ended, and the window closes. */
  start: number;
  end: number;
  until: number;
}

export interface Detected {
  kind: string;
  severity: string;
  /** Epoch ms. */
  started_at: number;
  ended_at: number | null;
}

export interface KindScore {
  kind: string;
  labelled: number;
  detected: number;
  anomalies: number;
  truePositives: number;
  precision: number | null;
  recall: number | null;
}

export interface Score {
  kinds: KindScore[];
  /** False positives that started inside a normal period (a true positive dated a little early, from its window's start, is not one). */
  normalFalsePositives: (Detected & { label: string })[];
  /** Anomalies outside every label's window. */
  unattributed: Detected[];
}

export function score(labels: Label[], anomalies: Detected[], allKinds: readonly string[], slackMs: number): Score {
  // normal periods get no slack: it would reach into the previous scenario's settle time
  const inside = (a: Detected, l: Label) => a.started_at >= l.start - (l.kinds.length ? slackMs : 0) && a.started_at <= l.until;
  const kinds = [...new Set([...allKinds, ...anomalies.map((a) => a.kind)])];
  const out: Score = { kinds: [], normalFalsePositives: [], unattributed: [] };
  for (const kind of kinds) {
    const windows = labels.filter((l) => l.kinds.includes(kind));
    const found = anomalies.filter((a) => a.kind === kind);
    const tp = found.filter((a) => windows.some((l) => inside(a, l))).length;
    const detected = windows.filter((l) => found.some((a) => inside(a, l))).length;
    out.kinds.push({
      kind, labelled: windows.length, detected, anomalies: found.length, truePositives: tp,
      precision: found.length ? tp / found.length : null, recall: windows.length ? detected / windows.length : null,
    });
  }
  for (const a of anomalies) {
    if (labels.some((l) => l.kinds.includes(a.kind) && inside(a, l))) continue; // a true positive
    const normal = labels.find((l) => l.kinds.length === 0 && inside(a, l));
    if (normal) out.normalFalsePositives.push({ ...a, label: normal.name });
    if (!labels.some((l) => inside(a, l))) out.unattributed.push(a);
  }
  return out;
}

/** The report's table, in Markdown. */
export function scoreTable(s: Score): string {
  const pct = (x: number | null) => (x === null ? 'n/a' : `${(100 * x).toFixed(0)}%`);
  return [
    '| kind | labelled windows | detected | anomalies | true positives | precision | recall |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...s.kinds.map((k) => `| \`${k.kind}\` | ${k.labelled} | ${k.detected} | ${k.anomalies} | ${k.truePositives} | ${pct(k.precision)} | ${pct(k.recall)} |`),
  ].join('\n');
}
