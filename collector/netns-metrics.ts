/**
 * Metrics of a collector that follows several network namespaces (`collect.netns` all or
 * containers): how many it follows, those it picked up and let go, and each namespace's own events
 * and losses, so a loss in one namespace shows under its name instead of hiding in a total.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export function netnsMetrics(registry: Registry) {
  return {
    followed: new Gauge({ name: 'ctpipe_collector_netns_followed', help: 'Network namespaces the collector follows now', registers: [registry] }),
    added: new Counter({ name: 'ctpipe_collector_netns_added_total', help: 'Network namespaces picked up (at start and while running)', registers: [registry] }),
    removed: new Counter({ name: 'ctpipe_collector_netns_removed_total', help: 'Network namespaces let go after they were removed', registers: [registry] }),
    failed: new Counter({ name: 'ctpipe_collector_netns_failed_total', help: 'Network namespaces that could not be entered (gone meanwhile, or no CAP_SYS_ADMIN)', registers: [registry] }),
    up: new Gauge({ name: 'ctpipe_collector_netns_up', help: '1 for each namespace followed now (the series goes when the namespace is let go)', labelNames: ['netns'], registers: [registry] }),
    events: new Counter({ name: 'ctpipe_collector_netns_events_total', help: 'Conntrack events received, per namespace (updated at each statistics poll)', labelNames: ['netns'], registers: [registry] }),
    lost: new Counter({ name: 'ctpipe_collector_netns_lost_events_total', help: 'Events the kernel dropped on a namespace\'s event socket (sk_drops), per namespace', labelNames: ['netns'], registers: [registry] }),
    enobufs: new Counter({ name: 'ctpipe_collector_netns_enobufs_total', help: 'Receive buffer overruns of a namespace\'s event socket, per namespace', labelNames: ['netns'], registers: [registry] }),
  };
}

export type NetnsMetrics = ReturnType<typeof netnsMetrics>;
