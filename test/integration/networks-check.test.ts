/**
 * `ctpipe networks check FILE`: a good file (CSV or YAML) passes with a summary and exit 0; a bad
 * one lists FILE:LINE and the problem for each bad line on stderr, and exits 1.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';

const dir = tempDir('networks-check');
afterAll(() => release(dir));

const check = (...args: string[]) => spawnSync(process.execPath, [BIN, 'networks', ...args], { encoding: 'utf8' });

describe('ctpipe networks check', () => {
  it('passes a good CSV and a good YAML file', () => {
    const csv = path.join(dir, 'ok.csv');
    writeFileSync(csv, 'cidr,name,role,site,region,tenant\n10.0.0.0/8,corp,internal,par1,eu,acme\n10.1.0.0/16,lab,lab,,,\nfd00::/8,ula,internal,,,\n');
    const r = check('check', csv);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe(`${csv}: 3 networks (2 IPv4, 1 IPv6), 1 inside another (the most specific prefix wins); OK\n`);
    const yaml = path.join(dir, 'ok.yaml');
    writeFileSync(yaml, 'networks:\n  - cidr: 192.0.2.0/24\n    name: docs\n');
    expect(check('check', yaml)).toMatchObject({ status: 0, stdout: `${yaml}: 1 networks (1 IPv4, 0 IPv6), 0 inside another (the most specific prefix wins); OK\n` });
  });

  it('names every bad line and exits 1', () => {
    const csv = path.join(dir, 'bad.csv');
    writeFileSync(csv, 'cidr,name,role\n10.0.0.0/8,a,\n10.0.0.0/8,b,\n300.0.0.0/8,c,\n');
    const r = check('check', csv);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`${csv}:3: 10.0.0.0/8 is already on line 2 (one prefix, one set of names)\n${csv}:4: "300.0.0.0" is not an IPv4 or IPv6 address\n${csv}: 2 problems; the file would be refused\n`);
    const header = path.join(dir, 'header.csv');
    writeFileSync(header, 'network,name\n10.0.0.0/8,a\n');
    expect(check('check', header)).toMatchObject({ status: 1, stderr: expect.stringContaining(`${header}:1: bad header "network,name"`) as string });
    expect(check('check', path.join(dir, 'none.csv'))).toMatchObject({ status: 1, stderr: expect.stringContaining('cannot be read') as string });
  });

  it('says how it is used when the action or file is missing', () => {
    expect(check('verify', 'x')).toMatchObject({ status: 2, stderr: expect.stringContaining('usage: ctpipe networks check FILE') as string });
    expect(check('check')).toMatchObject({ status: 2 });
  });
});
