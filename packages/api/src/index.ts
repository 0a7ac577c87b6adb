export { createApi, createApp } from "./app.js";
export type { ApiDeps, ApiRoutes } from "./app.js";
export { bearerAuth, canSee, hashToken } from "./auth.js";
export type { Principal } from "./auth.js";
export { overlayRoutes, stackOnHost } from "./routes/overlay.js";
export type { OverlayRoutesDeps } from "./routes/overlay.js";
export { registryResolver } from "./ops/digests.js";
export type { ImageResolver, LoginLookup, ResolverOptions } from "./ops/digests.js";
