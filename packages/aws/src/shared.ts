import { readConfig } from "./config.js";
import { jsonLogger } from "./log.js";
import { once } from "./once.js";
import { awsPlane, type AwsPlane } from "./plane.js";

/** The logger and the control plane of this instance, built on the first invocation from the configuration (see readConfig). */
export const log = jsonLogger();
export const plane: () => Promise<AwsPlane> = once(() => awsPlane(readConfig(), log));
