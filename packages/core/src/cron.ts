import { CronExpressionParser } from "cron-parser";
import type { ServiceSpec } from "./model.js";

/** Labels that make a service a scheduled job. */
export const cronLabels = {
  schedule: "io.corral.cron.schedule",
  overlap: "io.corral.cron.overlap",
} as const;

export const cronSchedule = (spec: ServiceSpec | undefined): string | undefined => spec?.labels?.[cronLabels.schedule] ?? spec?.deploy?.labels?.[cronLabels.schedule];
export const cronOverlapAllowed = (spec: ServiceSpec): boolean => (spec.labels?.[cronLabels.overlap] ?? spec.deploy?.labels?.[cronLabels.overlap]) === "allow";

/** Why a schedule is not one (cron syntax, five fields, or six with seconds first), or undefined. */
export function scheduleProblem(schedule: string): string | undefined {
  const fields = schedule.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6) return `invalid cron schedule "${schedule}": expected 5 fields (minute hour day month weekday), or 6 with seconds first`;
  try {
    CronExpressionParser.parse(schedule, { tz: "UTC", currentDate: new Date(0) }).next();
    return undefined;
  } catch (e) {
    return `invalid cron schedule "${schedule}": ${(e as Error).message}`;
  }
}

/** The first time the schedule fires after `after` (UTC, epoch ms). */
export function nextFire(schedule: string, after: number): number {
  return CronExpressionParser.parse(schedule, { tz: "UTC", currentDate: new Date(after) }).next().getTime();
}

/** The latest time the schedule fired at or before `now`. */
export function lastFire(schedule: string, now: number): number {
  return CronExpressionParser.parse(schedule, { tz: "UTC", currentDate: new Date(now + 1) }).prev().getTime();
}
