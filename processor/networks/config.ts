/**
 * The `enrich` section: what the processor adds to flows from outside the kernel's view.
 */
import { z } from 'zod';

export const enrichSection = z.strictObject({
  networks: z.string().min(1).optional().describe('Networks file (CSV with the header cidr,name,role,site,region,tenant, or .yaml): names, roles, sites, regions and tenants of address prefixes, the most specific prefix winning; loaded into ClickHouse at start and again when it changes or on SIGHUP, naming the flows stored from then on (`ctpipe networks check FILE` checks one). Unset: the names loaded before stay'),
});

export type EnrichConfig = z.output<typeof enrichSection>;
