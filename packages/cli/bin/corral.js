#!/usr/bin/env node
// corral's command line, run from its TypeScript sources through tsx.
import { register } from "tsx/esm/api";

// corral needs Node 22+ (npm start and npm test see to it, scripts/node22.mjs); run on an older Node by hand,
// the AWS SDK's notice about it is noise to corral's users.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
register();
// output piped into `head` and closed early: stop quietly, as Unix tools do
process.stdout.on("error", (e) => (e.code === "EPIPE" ? process.exit(0) : Promise.reject(e)));
const { main } = await import("../src/main.ts");
process.exitCode = await main(process.argv);
