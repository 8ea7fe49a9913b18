/**
 * The traffic `ctpipe demo` sends through the lab firewall: a scripted minute and a half of web-like
 * TCP, DNS-like UDP, pings, FTP in both modes, a refused port, a short SYN scan and an INVALID burst,
 * over light background traffic that keeps the detectors' baselines honest. Steps run in order;
 * `progress` hears each one as it starts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ADDR, type Lab } from './lab.js';

export const DEMO_NFLOG_GROUP = 9;
export const WEB_PORT = 8080;
export const DNS_PORT = 53;
export const SCAN_FIRST_PORT = 1000;
export const SCAN_PORTS = 300;
export const INVALID_PACKETS = 5000;

export interface DemoStep {
  title: string;
  run(lab: Lab): Promise<unknown>;
}

export async function prepareDemoLab(lab: Lab): Promise<void> {
  // Flows end within the demo, not minutes later (the firewall namespace's own timeouts).
  for (const t of ['tcp_timeout_syn_sent', 'tcp_timeout_time_wait', 'tcp_timeout_close', 'tcp_timeout_fin_wait', 'tcp_timeout_last_ack',
    'udp_timeout', 'udp_timeout_stream', 'icmp_timeout', 'icmpv6_timeout']) {
    await lab.sysctl('fw', `net.netfilter.nf_conntrack_${t}`, '5');
  }
  await lab.tcpServer(WEB_PORT);
  await lab.udpServer(DNS_PORT);
  await lab.ftpServer();
}

export const DEMO_STEPS: DemoStep[] = [
  {
    title: 'warm-up: background traffic only, so the detectors learn what normal looks like',
    run: () => sleep(25_000),
  },
  {
    title: `web-like TCP: 30 request/response connections to ${ADDR.server4}:${WEB_PORT}, 10 over IPv6`,
    async run(lab) {
      for (let i = 0; i < 30; i++) await lab.tcpConnect(ADDR.server4, WEB_PORT, 500 + i * 100);
      for (let i = 0; i < 10; i++) await lab.tcpConnect(ADDR.server6, WEB_PORT, 800);
    },
  },
  {
    title: `DNS-like UDP: 20 query/answer exchanges to ${ADDR.server4}:${DNS_PORT}`,
    async run(lab) {
      for (let i = 0; i < 20; i++) await lab.udpExchange(ADDR.server4, DNS_PORT, 1, 60);
    },
  },
  {
    title: 'pings: ICMP echo over IPv4 and IPv6',
    async run(lab) {
      await lab.ping(ADDR.server4, 5);
      await lab.ping(ADDR.server6, 5);
    },
  },
  {
    title: 'FTP through the kernel ftp helper: two passive and two active downloads (RELATED data connections)',
    async run(lab) {
      for (const mode of ['passive', 'active', 'passive', 'active'] as const) await lab.ftpGet(mode);
    },
  },
  {
    title: `a refused port: 5 connections to ${ADDR.server4}:81, answered by RST`,
    async run(lab) {
      for (let i = 0; i < 5; i++) await lab.tcpRefused(ADDR.server4, 81);
    },
  },
  {
    title: `a short SYN scan: ${SCAN_PORTS} ports of ${ADDR.server4} from ${SCAN_FIRST_PORT}`,
    run: (lab) => lab.synScan(ADDR.server4, SCAN_FIRST_PORT, SCAN_PORTS, 5),
  },
  {
    title: `an INVALID burst: ${INVALID_PACKETS} SYN+FIN+RST packets (hping3), which conntrack marks INVALID`,
    run: (lab) => lab.hpingInvalid(ADDR.server4, INVALID_PACKETS, 80),
  },
  {
    title: 'settling: the last flows end and the detectors close their windows',
    run: () => sleep(20_000),
  },
];

/**
 * Light traffic until `stop.now` (a TCP exchange, a UDP exchange and a ping each second), and a
 * table dump every 5 s, which makes the kernel evict expired entries (and send their DESTROY) at
 * once instead of when its garbage collector next passes.
 */
export async function demoBackground(lab: Lab, stop: { now: boolean }): Promise<void> {
  const quiet = (p: Promise<unknown>) => p.catch(() => undefined);
  const traffic = async () => {
    while (!stop.now) {
      await quiet(lab.tcpConnect(ADDR.server4, WEB_PORT, 300));
      await quiet(lab.udpExchange(ADDR.server4, DNS_PORT, 1, 40));
      await quiet(lab.ping(ADDR.server4, 1));
      await sleep(1000);
    }
  };
  const reaper = async () => {
    for (let t = 0; !stop.now; t++) {
      if (t % 10 === 0) await quiet(lab.conntrack(['-L'], { allowFail: true }));
      await sleep(500);
    }
  };
  await Promise.all([traffic(), reaper()]);
}
