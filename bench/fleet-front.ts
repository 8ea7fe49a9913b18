/**
 * ClickHouse for the fleet benchmark in a process of its own (lab/clickhouse-front.ts over chDB
 * at the path given): the store the two processors share answers at the pace a server would,
 * not between the load generator's rounds. Prints its URL on stdout; closes on SIGTERM.
 */
import { ClickHouseFront } from '../lab/clickhouse-front.js';

const front = await ClickHouseFront.start(process.argv[2] ?? './fleet-ch');
process.stdout.write(`${front.url}\n`);
process.once('SIGTERM', () => void front.close().then(() => process.exit(0)));
