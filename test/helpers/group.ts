/** Growing a `ctpipe process` consumer group on librdkafka's mock cluster. */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Procs } from './procs.js';

/**
 * Starts a member that joins a group which already has a leader. librdkafka's mock coordinator has
 * a flaw a real broker does not: if the leader's SyncGroup reaches it before a follower's, it marks
 * the group synced and answers the follower INVALID_REQUEST (rd_kafka_mock_cgrp_classic_sync_check
 * counts the assignments the leader sent; src/rdkafka_mock_cgrp.c), which kafkajs treats as fatal.
 * So the leader is frozen from before the election until the newcomer has sent its SyncGroup, an
 * order a real broker also sees. The newcomer logs at debug level so its kafkajs requests show.
 */
export async function joinGroup(procs: Procs, args: string[], leader: ChildProcessWithoutNullStreams): Promise<[ChildProcessWithoutNullStreams, number]> {
  const [p, l] = procs.start(args, { CTPIPE_LOG_LEVEL: 'debug' });
  await procs.waitLog(l, 'Request JoinGroup');
  await sleep(2500); // the leader notices the rebalance at its next heartbeat (1 s) and rejoins
  leader.kill('SIGSTOP');
  try {
    await procs.waitLog(l, 'Request SyncGroup', 20_000);
    await sleep(300);
  } finally {
    leader.kill('SIGCONT');
  }
  await procs.waitLog(l, /"partitions":\[\d[^\]]*\],"msg":"joined the consumer group"/);
  return [p, l];
}
