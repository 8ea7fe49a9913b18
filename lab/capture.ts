/**
 * Captures raw ctnetlink datagrams from the lab for decoder fixtures: events of every traffic kind,
 * a table dump and statistics replies, straight from the kernel. `npm run capture-fixtures` writes
 * test/fixtures/netlink/lab-<kernel>.json; the unit tests decode these bytes without root.
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { forEachFrame } from '../collector/netlink/frames.js';
import * as R from '../collector/netlink/requests.js';
import { openNetfilterSocket } from '../collector/socket.js';
import { ADDR, Lab } from './lab.js';

export interface Fixture {
  kernel: string;
  captured: string;
  description: string;
  datagrams: { source: 'events' | 'dump' | 'stats'; hex: string }[];
}

export async function captureLab(out: string): Promise<Fixture> {
  const lab = await Lab.create();
  const datagrams: Fixture['datagrams'] = [];
  const collect = (source: 'events' | 'dump' | 'stats') => (chunk: Buffer | null) => {
    if (chunk) forEachFrame(chunk, (off, len) => datagrams.push({ source, hex: chunk.toString('hex', off, off + len) }));
  };
  try {
    const events = openNetfilterSocket({ groups: [1, 2, 3, 4, 6], rcvbuf: 8 << 20, netns: lab.netnsPath('fw') });
    events.start(collect('events'));
    await lab.tcpServer(8080);
    await lab.udpServer(5353);
    await lab.ftpServer();
    await sleep(200);
    await lab.tcpConnect(ADDR.server4, 8080, 1000);
    await lab.tcpRefused(ADDR.server4, 9);
    await lab.udpExchange(ADDR.server4, 5353, 2, 64);
    await lab.ping(ADDR.server4, 2);
    await lab.ping(ADDR.server6, 1);
    await lab.tcpConnect(ADDR.server6, 8080, 500);
    await lab.ftpGet('passive');
    await lab.ftpGet('active');
    await lab.conntrack(['-I', '-p', 'tcp', '-s', '192.0.2.1', '-d', '192.0.2.2', '--sport', '1000', '--dport', '2000', '--state', 'ESTABLISHED', '-t', '100', '--mark', '7', '--zone', '4']);
    await sleep(300);
    const query = openNetfilterSocket({ rcvbuf: 4 << 20, netns: lab.netnsPath('fw') });
    let source: 'dump' | 'stats' = 'dump';
    query.start((chunk) => collect(source)(chunk));
    const send = (msg: Buffer) => query.send(msg, (e) => {
      throw e;
    });
    send(R.ctDump(1));
    await sleep(300);
    send(R.expDump(2));
    await sleep(200);
    source = 'stats';
    send(R.ctStatsCpu(3));
    await sleep(200);
    send(R.ctStatsGlobal(4));
    await sleep(200);
    send(R.expStatsCpu(5));
    await sleep(200);
    await lab.conntrack(['-F']);
    await sleep(500);
    events.close();
    query.close();
  } finally {
    await lab.destroy();
  }
  const fixture: Fixture = {
    kernel: os.release(),
    captured: new Date().toISOString(),
    description: 'ctpipe lab (lab/lab.ts): TCP 198.51.100.2 -> 203.0.113.2:8080, refused :9, UDP :5353 (2 x 64 B), ping v4 x2 and v6, TCP v6 :8080, FTP passive and active, conntrack -I mark 7 zone 4, a dump, stats, then conntrack -F',
    datagrams,
  };
  writeFileSync(out, JSON.stringify(fixture, null, 1) + '\n');
  return fixture;
}
