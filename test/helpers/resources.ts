/** What an end-to-end test file sets up (a scratch directory, the lab, Kafka, a store, processes), and releasing it. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Store } from '../../processor/store.js';
import type { ClickHouseFront } from '../../lab/clickhouse-front.js';
import type { KafkaMock } from '../../lab/kafka-mock.js';
import type { Lab } from '../../lab/lab.js';
import type { Procs } from './procs.js';

/** A new directory under the OS temp directory, named ctpipe-NAME-XXXXXX. */
export const tempDir = (name: string): string => mkdtempSync(path.join(tmpdir(), `ctpipe-${name}-`));

/** A part to release: processes (SIGKILLed), a store or the ClickHouse front (closed), the lab, the Kafka mock, a directory. */
export type Part = Procs | Store | ClickHouseFront | Lab | KafkaMock | string | undefined;

/** Releases `parts` in the order given, passing over those never made (a beforeAll that failed first). */
export async function release(...parts: Part[]): Promise<void> {
  for (const p of parts) {
    if (!p) continue;
    if (typeof p === 'string') rmSync(p, { recursive: true, force: true });
    else if ('killAll' in p) await p.killAll();
    else if ('destroy' in p) await p.destroy();
    else if ('close' in p) await p.close(); // the front's close, not its stop (an outage)
    else await p.stop();
  }
}
