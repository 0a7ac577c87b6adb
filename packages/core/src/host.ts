/**
 * What a host agent acts with, and nothing else of core: the wire schemas
 * (model.ts), labels, image and port names, the overlay's plan, the logger.
 * The agent imports these as `@corral/core/host`, so that it loads no cron
 * parser (luxon pages in ICU's data: ~9 MB of an idle agent's RSS), no
 * compose parser, no decider. Everything here is also in index.ts; a test
 * (host.test.ts) keeps this module's imports clear of those.
 */
export * from "./model.js";
export { groupOf } from "./dispatch.js";
export { effectiveHealthcheck } from "./health.js";
export { registryOf, repositoryOf, shortDigest } from "./images.js";
export { inSubnet, subnetsOf } from "./ipv4.js";
export { lineLogger, logLevels, type Logger, type LogLevel } from "./log.js";
export { iptablesRestore, OVERLAY_DEVICE, OVERLAY_OVERHEAD, overlayPlan, stackBridge, type OverlayPlan, type OverlayView } from "./overlay.js";
export { directPorts, parseRoutes, routedPorts, routesLabel, type Route } from "./ports.js";
export { restartOf } from "./restart.js";
export { splitImage } from "./hooks.js";
export type { PulledImage } from "./events.js";
export type { WantedContainer } from "./wanted.js";
