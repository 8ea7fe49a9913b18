// After `npm install`: make package-lock.json list every optional platform package of every
// dependency, including those this registry does not serve (chdb's macOS and arm64 libraries).
// npm leaves unresolvable optional packages out of the lock file, and `npm ci` then refuses to
// install ("Missing: @chdb/lib-darwin-arm64 from lock file"). Platform fields let npm skip them.
import { readFileSync, writeFileSync } from 'node:fs';

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const platform = (name) => {
  const os = name.includes('darwin') ? ['darwin'] : name.includes('win32') ? ['win32'] : ['linux'];
  const cpu = name.includes('arm64') ? ['arm64'] : ['x64'];
  return { os, cpu, ...(name.endsWith('-gnu') ? { libc: ['glibc'] } : {}) };
};
let added = 0;
for (const [path, pkg] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(pkg.optionalDependencies ?? {})) {
    const at = `node_modules/${dep}`;
    if (!lock.packages[at] && !lock.packages[`${path}/${at}`]) {
      lock.packages[at] = { version, ...platform(dep), optional: true };
      added++;
    }
  }
}
const sorted = {};
for (const k of Object.keys(lock.packages).sort()) sorted[k] = lock.packages[k];
lock.packages = sorted;
writeFileSync('package-lock.json', JSON.stringify(lock, null, 2) + '\n');
console.log(`package-lock.json: ${added} optional platform package(s) added`);
