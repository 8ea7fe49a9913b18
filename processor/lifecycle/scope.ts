/**
 * A flow's scope in the lifecycle engine: a host, or one network namespace of a host when its
 * collector follows several (records carry `netns`). Flows of two namespaces with the same tuple
 * and conntrack id are different connections, and each namespace's loss and dumps resync only its
 * own flows, so the engine keys, arms and closes by scope. The scope is the host itself when there
 * is no namespace, so state saved before namespaces existed keeps its keys. A host holds no control
 * character (contract/validate.ts), so the NUL separator cannot be forged.
 */
const SEP = '\u0000';

export function scopeOf(host: string, netns: string | undefined): string {
  return netns ? `${host}${SEP}${netns}` : host;
}

/** The host and namespace ('' when none) of a scope. */
export function splitScope(scope: string): { host: string; netns: string } {
  const i = scope.indexOf(SEP);
  return i < 0 ? { host: scope, netns: '' } : { host: scope.slice(0, i), netns: scope.slice(i + 1) };
}
