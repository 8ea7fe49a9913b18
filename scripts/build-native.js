// Builds the netlink receive addon (collector/native). Runs as the package's install script.
// Uses npm's bundled node-gyp; points it at the Node headers installed with Node when npm has no
// nodedir configured, so a machine without network access to nodejs.org can still build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const args = ['rebuild', '--silent'];
const systemHeaders = path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node', 'node_api.h');
if (!process.env.npm_config_nodedir && existsSync(systemHeaders)) {
  args.push(`--nodedir=${path.dirname(path.dirname(path.dirname(systemHeaders)))}`);
}
let gyp = process.env.npm_config_node_gyp;
if (!gyp || !existsSync(gyp)) {
  const npmDir = path.join(path.dirname(path.dirname(process.execPath)), 'lib', 'node_modules', 'npm');
  gyp = createRequire(path.join(npmDir, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
}
const r = spawnSync(process.execPath, [gyp, ...args], { stdio: 'inherit' });
if (r.status !== 0) {
  console.error('ctpipe: building the netlink addon failed (needs g++, make, python3 and the Node headers)');
  process.exit(r.status ?? 1);
}
