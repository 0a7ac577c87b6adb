// corral's command line: what `corral` runs (built to dist/corral.js by scripts/build.mjs; bin/corral.js runs the
// sources through tsx in a checkout that was not built).
import { main } from "./main.js";

// corral needs Node 22+; run on an older Node by hand, the AWS SDK's notice about it is noise to corral's users
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
// output piped into `head` and closed early: stop quietly, as Unix tools do
process.stdout.on("error", (e: NodeJS.ErrnoException) => (e.code === "EPIPE" ? process.exit(0) : Promise.reject(e)));
process.exitCode = await main(process.argv);
