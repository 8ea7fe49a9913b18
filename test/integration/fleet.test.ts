/**
 * A fleet through Kafka into two `ctpipe process` members of one group, one of them stopped with
 * SIGTERM while each holds the state of about half the hosts, later one SIGKILLed (its successor
 * replays what was logged since its last checkpoint): the fleet benchmark
 * (bench/fleet.ts, `npm run bench -- fleet`) at a bounded size. 100 hosts, each its own re-stamped
 * stream (bench/fleet-load.ts) with long-lived connections open across the stop, on a topic of 12
 * partitions; one host port-scanned. Fails on a lost or duplicated connection (count,
 * uniqExact(flow_id), per host, the rollup), a gap, a scan reported for another host or not at
 * all, open flows the processors do not hold, or a takeover over its bound.
 *
 * The bound: librdkafka's mock coordinator elects a leader on a timer, session timeout - 1 s after
 * the member left (rd_kafka_mock_cgrp_rebalance), where a Kafka broker answers once every
 * remaining member has rejoined. So the takeover is bounded twice: what a broker would give (the
 * time less the coordinator's hold) within 15 s, and all of it, the mock's hold of up to 5 s
 * included (session 6 s), within 25 s. Measured on 2 cores with other sessions' suites running:
 * 6.4 s and 11.2 s at load average 5 to 10; 8.8 s and 12.6 s at 12 to 14 before the restores began
 * at assignment (once 17 s and 21 s at 13, with partitions handled four at a time); with the
 * SIGKILL added, at load 13 to 14: 5.0 s and 9.1 s for the SIGTERM, and for the SIGKILL 2.5 s from
 * the rebalance less the timer (8.9 s from the signal less the timer, the 6 s session included). The issue's goal (10 s for 500 hosts) is the benchmark's to show
 * (docs/PERFORMANCE.md, Scale); this bound catches a takeover that stalls or regresses badly.
 */
import { describe, expect, it } from 'vitest';
import { runFleet } from '../../bench/fleet.js';

const HOSTS = 100;

describe('a fleet through Kafka, two processors, one stopped, then one killed', () => {
  it('stores every connection once, reports the scan for its host only, and hands 6 partitions over in time, twice', { timeout: 600_000 }, async () => {
    const r = await runFleet({
      hosts: HOSTS, flowsPerHost: 300, openPerHost: 60, rounds: 120, kills: ['SIGTERM', 'SIGKILL'], sessionTimeoutS: 6, checkpointS: 30,
    }, (line) => console.log(line));
    console.log(JSON.stringify({ takeovers: r.takeovers, memory: r.memory, store: r.store, scan: r.scan, loadavg: r.loadavg }));

    expect(r.flows).toBe(HOSTS * (300 + 60) + 300);
    expect(r.store.hostsWrong).toEqual([]);
    expect(r.store.hostsStored).toBe(HOSTS);
    expect(r.store.finalRows).toBe(r.flows);
    expect(r.store.rawFinalRows).toBe(r.flows); // before FINAL: no row stored twice
    expect(r.store.uniqFlowIds).toBe(r.flows);
    expect(r.store.rollupFlows).toBe(r.flows);
    expect(r.store.lost).toBe(0);
    expect(r.store.gaps).toBe(0);
    expect(r.store.losses).toBe(0);

    expect(r.scan.kinds).toContain('port_scan');
    expect(r.scan.wrongHosts).toEqual([]);

    // at the stop, each member held what the generator left open on its hosts
    const [atStop] = r.memory;
    expect(atStop!.length).toBe(2);
    for (const m of atStop!) {
      expect(m.openFlows).toBe(m.openGenerated);
      expect(m.openFlows).toBeGreaterThan(0);
    }
    const [t] = r.takeovers;
    expect(t!.movedPartitions).toBe(6);
    expect(t!.movedOpenFlows).toBe(atStop!.find((m) => m.member === 'A')!.openFlows);
    expect(t!.processingLessElectionMs).toBeLessThanOrEqual(15_000);
    expect(t!.processingMs).toBeLessThanOrEqual(25_000);

    // the SIGKILLed member left no final checkpoint: its successor replays the ranges logged since
    // the last one (checkpoints every 30 s, so there are several), inserting again only those whose rows may not all be stored (the counts above
    // fail on a row lost that way); it can only notice the death after the session timeout, so its
    // takeover is bounded from the rebalance
    const k = r.takeovers[1]!;
    expect(k.signal).toBe('SIGKILL');
    expect(k.movedPartitions).toBe(6);
    expect(k.replayRanges).toBeGreaterThan(0);
    expect(k.replayNotResent).toBeGreaterThan(0);
    expect(k.fromRebalanceLessElectionMs).toBeLessThanOrEqual(15_000);
  });
});
