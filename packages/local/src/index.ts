export { startDynamo, startQueues } from "./standins.js";
export type { StandIn } from "./standins.js";
