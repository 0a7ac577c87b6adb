export { startDynamo, startQueues } from "./standins.js";
export type { StandIn, WireTap } from "./standins.js";
export { controlKeys, controlKeysOf } from "./keys.js";
export { buildPlane, vtepPool } from "./plane.js";
export type { Plane, PlaneParts } from "./plane.js";
export type { ControlKeys } from "./keys.js";
export { adminToken, ServerStartError, startServer, stderrLogger } from "./server.js";
export type { RunningServer, ServerOptions } from "./server.js";
export { DataFolderInUseError, lockDataFolder } from "./lock.js";
