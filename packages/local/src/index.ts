export { startDynamo, startQueues } from "./standins.js";
export type { StandIn, WireTap } from "./standins.js";
export { controlKeys } from "./keys.js";
export type { ControlKeys } from "./keys.js";
export { adminToken, startServer, stderrLogger } from "./server.js";
export type { RunningServer, ServerOptions } from "./server.js";
