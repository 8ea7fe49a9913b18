import { describe, expect, it } from 'vitest';
import { Lab, ADDR } from '../lab/lab.js';
import { openNetfilterSocket } from '../../collector/socket.js';
import { forEachFrame } from '../../collector/netlink/frames.js';
import { decodeDatagram } from '../../collector/conntrack/decode.js';
import { toJsonLine } from '../../contract/json.js';

describe('smoke', () => {
  it('sees events', async () => {
    const lab = await Lab.create();
    const lines: string[] = [];
    const sock = openNetfilterSocket({ groups: [1, 2, 3, 4, 6], rcvbuf: 8 << 20, netns: lab.netnsPath('fw') });
    sock.start((chunk) => {
      if (!chunk) return;
      const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      forEachFrame(chunk, (off, len, sec, nsec) => {
        decodeDatagram(chunk, dv, off, off + len, sec, nsec, {
          ct: (r) => lines.push(toJsonLine(r)), exp: (r) => lines.push(toJsonLine(r)),
          cpuStats: () => {}, globalStats: () => {}, expStats: () => {}, done: () => {}, kernelError: () => {},
          reject: (e) => lines.push('REJECT ' + e.message),
        });
      });
    });
    await lab.tcpServer(8080);
    await lab.tcpConnect(ADDR.server4, 8080, 1000);
    await lab.ftpServer();
    await lab.ftpGet('passive');
    await lab.ftpGet('active');
    await lab.ping(ADDR.server6, 1);
    await new Promise((r) => setTimeout(r, 500));
    console.log(lines.join('\n'));
    console.log(sock.stats());
    sock.close();
    await lab.destroy();
    expect(lines.length).toBeGreaterThan(0);
  });
});
