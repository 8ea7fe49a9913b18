#!/usr/bin/env -S node --max-semi-space-size=64
// ctpipe command-line entry point; the program lives in dist/ (built by `npm ci` / `npm run build`).
import('../dist/cli/main.js').catch((e) => {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('ctpipe: dist/ is missing; run `npm ci` (or `npm run build`) in the ctpipe directory first');
  } else {
    console.error(e);
  }
  process.exit(1);
});
