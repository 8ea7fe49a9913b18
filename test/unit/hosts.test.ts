/** process.hosts: exact names and shell-style patterns, anchored; nothing else matches. */
import { describe, expect, it } from 'vitest';
import { hostMatcher } from '../../processor/hosts.js';

describe('hostMatcher', () => {
  it('accepts any host when the list is empty', () => {
    expect(hostMatcher([])('anything at all')).toBe(true);
  });

  it('matches exact names and * and ? patterns, whole names only, regular-expression characters as themselves', () => {
    const ok = hostMatcher(['fw-1', 'edge-*', 'db-?.example.com']);
    for (const h of ['fw-1', 'edge-', 'edge-7', 'db-3.example.com']) expect(ok(h), h).toBe(true);
    for (const h of ['fw-10', 'xfw-1', 'victim-fw-1', 'db-33.example.com', 'db-3xexample.com', 'edge', 'Edge-1']) expect(ok(h), h).toBe(false);
    expect(hostMatcher(['a.b'])('axb')).toBe(false);
    expect(hostMatcher(['(x)+'])('(x)+')).toBe(true);
  });
});
