#!/usr/bin/env node
// corral's command line, run from its TypeScript sources through tsx.
import { register } from "tsx/esm/api";

// corral runs on Node 20 on purpose (fauxqs 1.9.2); the SDK's notice about Node 22 is noise to its users.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
register();
// output piped into `head` and closed early: stop quietly, as Unix tools do
process.stdout.on("error", (e) => (e.code === "EPIPE" ? process.exit(0) : Promise.reject(e)));
const { main } = await import("../src/main.ts");
process.exitCode = await main(process.argv);
