/** Checks on the `flows` rows of the lab's traffic. */
import { expect } from 'vitest';

export interface FtpRow { orig_dport: number; helper: string; related: boolean; flow_id: string; master_flow_id: string }

/** Two FTP control connections (helper ftp), and two data flows related to them, one to each. */
export function expectFtpLinked(rows: FtpRow[]): void {
  const controls = rows.filter((r) => r.orig_dport === 21);
  expect(controls.map((c) => c.helper)).toEqual(['ftp', 'ftp']);
  const data = rows.filter((r) => r.related);
  expect(data.length).toBe(2);
  expect(data.map((d) => d.master_flow_id).sort()).toEqual(controls.map((c) => c.flow_id).sort());
}
