export { ConflictRetriesExhaustedError, Controller } from "./controller.js";
export type { ControllerOptions, TickOutcome } from "./controller.js";
export { authorizeControlMessage, controlMessages, startControlLoop } from "./loop.js";
export type { ControlLoopOptions } from "./loop.js";
