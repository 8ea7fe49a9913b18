/**
 * Node's own flags for ctpipe's long-running commands, one list that every way of starting ctpipe
 * carries (bin/ctpipe.js's first line, the Dockerfile's entry points, the systemd units; the
 * deploy test holds them to it) and the benchmarks start it with.
 *
 * A larger young generation: a storm's records and rows die young, but with V8's default 16 MB
 * semi-space the scavenger ran every few thousand events and promoted what was merely in flight;
 * 64 MB took a quarter off the CPU per event of `ctpipe run` (docs/PERFORMANCE.md, issue 19). The
 * new space still starts at 1 MB and grows only under allocation, so an idle collector stays small.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
