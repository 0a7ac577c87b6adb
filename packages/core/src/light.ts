/**
 * core's small pure helpers that load nothing else of it (no zod schema, no
 * YAML, no fold): the CLI imports these as `@corral/core/light`, so that a
 * verb such as `corral ps` starts without evaluating the compose parser or
 * the decider. Everything here is also in index.ts.
 */
export { formatDuration, parseDuration } from "./units.js";
export { displayName } from "./names.js";
export { ago, parseHostLabel } from "./hosts.js";
export { splitCommand } from "./shell.js";
export { taskState } from "./task-state.js";
export { shortDigest } from "./images.js";
