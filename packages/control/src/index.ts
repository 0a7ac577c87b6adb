export { authorizeControlMessage, ConflictRetriesExhaustedError, controlMessages, Controller, startControlLoop } from "./controller.js";
export type { ControlLoopOptions, ControllerOptions } from "./controller.js";
