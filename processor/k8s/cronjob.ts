/**
 * The CronJob behind a Job, from the Job's name alone (the RBAC grants no read of Jobs). The CronJob
 * controller names each Job `<cronjob>-<scheduled time in minutes since the epoch>` so that one
 * schedule time makes one Job (kubernetes/kubernetes pkg/controller/cronjob/utils.go, getJobName and
 * getTimeHashInMinutes: `scheduledTime.Unix() / 60`), and it refuses CronJob names over 52
 * characters so that name fits a 63-character label. A Job made by anything else with a name of that
 * shape is read as a CronJob's too: see docs/OPERATIONS.md (Kubernetes names).
 */

/** 2014-06-01, before the first Kubernetes release: no CronJob scheduled anything earlier (minutes). */
const FIRST_MINUTE = Date.UTC(2014, 5, 1) / 60_000;
/** A schedule time may lead the pod's creation by clock skew between controller and API server (minutes). */
const SKEW_MINUTES = 24 * 60;
const CRONJOB_NAME = /^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$/;

/**
 * The CronJob name when `job` reads as `<cronjob>-<minutes>` with the minutes a plausible schedule
 * time: after Kubernetes began and not after the pod was created (`createdMs`, a day's skew
 * allowed); undefined otherwise.
 */
export function cronJobOf(job: string, createdMs: number): string | undefined {
  const m = /^(.+)-(\d{1,12})$/.exec(job);
  if (!m || !CRONJOB_NAME.test(m[1]!)) return undefined;
  const minutes = Number(m[2]);
  if (minutes < FIRST_MINUTE || minutes > createdMs / 60_000 + SKEW_MINUTES) return undefined;
  return m[1];
}
