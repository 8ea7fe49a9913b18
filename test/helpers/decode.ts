/** Decodes datagrams into plain lists, for tests. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeDatagram, type MessageHandler } from '../../collector/conntrack/decode.js';
import type { ExpStats, GlobalStats } from '../../collector/conntrack/stats.js';
import type { CtpipeError } from '../../common/errors.js';
import { packageRoot } from '../../common/paths.js';
import type { CpuStats, CtRecord, ExpRecord, UnknownAttr } from '../../contract/records.js';

export interface Decoded {
  ct: CtRecord[];
  exp: ExpRecord[];
  cpu: CpuStats[];
  global: GlobalStats[];
  expStats: ExpStats[];
  done: number[];
  errors: number[];
  rejects: CtpipeError[];
  unknown: UnknownAttr[];
}

export function emptyDecoded(): Decoded {
  return { ct: [], exp: [], cpu: [], global: [], expStats: [], done: [], errors: [], rejects: [], unknown: [] };
}

export function handlerFor(d: Decoded): MessageHandler {
  return {
    ct: (r) => d.ct.push(r),
    exp: (r) => d.exp.push(r),
    cpuStats: (s) => d.cpu.push(s),
    globalStats: (s) => d.global.push(s),
    expStats: (s) => d.expStats.push(s),
    done: (s) => d.done.push(s),
    kernelError: (_s, e) => d.errors.push(e),
    reject: (e) => d.rejects.push(e),
    unknownAttrs: (a) => d.unknown.push(...a),
  };
}

export function decodeBuffers(bufs: Buffer[], d = emptyDecoded()): Decoded {
  const h = handlerFor(d);
  for (const b of bufs) decodeDatagram(b, new DataView(b.buffer, b.byteOffset, b.byteLength), 0, b.length, 1_795_000_000, 0, h);
  return d;
}

export interface FixtureFile {
  kernel: string;
  datagrams: { source: 'events' | 'dump' | 'stats'; hex: string }[];
}

export function loadFixture(name = 'lab-6.18.44.json'): FixtureFile {
  return JSON.parse(readFileSync(path.join(packageRoot(), 'test', 'fixtures', 'netlink', name), 'utf8')) as FixtureFile;
}

export function fixtureBuffers(source?: 'events' | 'dump' | 'stats'): Buffer[] {
  return loadFixture().datagrams.filter((d) => !source || d.source === source).map((d) => Buffer.from(d.hex, 'hex'));
}
