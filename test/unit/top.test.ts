import { describe, expect, it } from 'vitest';
import { renderTop, type TopData } from '../../cli/top.js';

const data: TopData = {
  at: Date.parse('2026-11-21T10:00:05Z'),
  windowS: 60,
  hosts: [
    { host: 'fw-1', new_per_s: 123.4, failed: 12, bytes: 5_300_000, entries: 9_000, max_entries: 10_000, invalid_per_s: 0.5 },
    { host: 'lb-22', new_per_s: 2, failed: 0, bytes: 900, entries: 10, max_entries: 262_144, invalid_per_s: 0 },
  ],
  ports: [{ proto: 6, port: 443, flows: 7000, sources: 40, bytes: 5_000_000 }, { proto: 1, port: 0, flows: 3, sources: 1, bytes: 252 }],
  states: [{ conn_state: 'SF', flows: 75 }, { conn_state: 'REJ', flows: 25 }],
};

describe('ctpipe top rendering', () => {
  it('shows hosts with rates, table fill and INVALID, ports and the share of each state, in aligned columns', () => {
    const lines = renderTop(data).split('\n');
    expect(lines[0]).toBe('ctpipe top: last 60 s at 10:00:05 UTC');
    const hosts = lines.slice(lines.indexOf('HOSTS') + 1, lines.indexOf('HOSTS') + 4);
    expect(hosts[0]).toMatch(/^host\s+new\/s\s+failed\s+bytes\s+table\s+fill\s+invalid\/s$/);
    expect(hosts[1]).toMatch(/^fw-1 {3}\s*123\s+12\s+5\.3M\s+9000\/10000\s+90\.0%\s+0\.50$/);
    expect(hosts[2]).toMatch(/^lb-22\s+2\.00\s+0\s+900\s+10\/262144\s+0\.0%\s+0\.00$/);
    expect(new Set(hosts.map((l) => l.length)).size).toBe(1); // right-aligned to one width
    expect(lines).toContain('STATES');
    expect(lines.find((l) => l.startsWith('SF'))).toMatch(/75\s+75\.0%$/);
    expect(lines.find((l) => l.startsWith('REJ'))).toMatch(/25\s+25\.0%$/);
    expect(lines.find((l) => l.startsWith('tcp/443'))).toMatch(/7000\s+40\s+5\.0M$/);
    expect(lines.find((l) => l.startsWith('icmp'))).toMatch(/^icmp\s+3\s+1\s+252$/);
  });

  it('says when the window holds nothing', () => {
    const text = renderTop({ ...data, hosts: [], ports: [], states: [] });
    expect(text).toContain('HOSTS\n  no flows in this window');
    expect(text).toContain('STATES\n  none');
  });
});
