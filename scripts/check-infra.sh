#!/usr/bin/env bash
# Offline check of sst.config.ts and infra/ (issue 14): nothing here reaches AWS.
#   1. `sst install` writes the SST platform and its providers to .sst/platform
#      (from the npm registry only; skipped when .sst/platform is already the
#      pinned version, complete);
#   2. tsc checks the config and infra/ against those types (tsconfig.infra.json);
#   3. the check is shown to be live: a copy of infra/ with `fifoo: true` for
#      `fifo: true` in queues.ts must fail, naming `fifoo`.
# Re-runnable; the first run takes a minute or two and ~320 MB in .sst/.
set -euo pipefail
cd "$(dirname "$0")/.."

export SST_SKIP_DEPENDENCY_CHECK=1 SST_NO_BUN=1 SST_TELEMETRY_DISABLED=1 AWS_EC2_METADATA_DISABLED=true
# no credentials, no profile: whatever runs here cannot act on an account
export AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= AWS_SESSION_TOKEN= AWS_PROFILE=

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

pinned=$(node -p 'require("./node_modules/sst/package.json").version')
platform=.sst/platform
installed() {
  [[ -f $platform/version && "$(cat "$platform/version")" == "$pinned" ]] &&
    [[ -f $platform/config.d.ts && -f $platform/node_modules/@pulumi/aws/package.json && -f $platform/node_modules/@pulumi/pulumi/package.json ]]
}

step "sst install (sst $pinned)"
if installed; then
  echo "$platform is sst $pinned already: skipped"
else
  npx --no-install sst install --stage ci
  installed || { echo "check-infra: sst install did not leave a complete $platform (sst $pinned)" >&2; exit 1; }
fi

step "tsc -p tsconfig.infra.json"
npx --no-install tsc -p tsconfig.infra.json

step "the check is live: a mistyped queue option must fail"
mutant=.sst/mutant
rm -rf "$mutant"
mkdir -p "$mutant"
cp -R infra "$mutant/infra"
sed 's#path="./.sst/platform/config.d.ts"#path="../platform/config.d.ts"#' sst.config.ts >"$mutant/sst.config.ts"
sed -i 's/fifo: true,/fifoo: true,/' "$mutant/infra/queues.ts"
grep -q 'fifoo: true' "$mutant/infra/queues.ts" || { echo "check-infra: infra/queues.ts has no 'fifo: true,' to mistype: update this check" >&2; exit 1; }
cat >"$mutant/tsconfig.json" <<JSON
{
  "extends": "../../tsconfig.infra.json",
  "compilerOptions": { "tsBuildInfoFile": "../tsc/mutant.tsbuildinfo" },
  "include": ["sst.config.ts", "infra/**/*.ts", "../platform/config.d.ts"]
}
JSON
# the platform's files are the same: start from what the real check knows of them (the mutant's own files are new to it)
[[ -f .sst/tsc/mutant.tsbuildinfo ]] || cp .sst/tsc/infra.tsbuildinfo .sst/tsc/mutant.tsbuildinfo
if out=$(npx --no-install tsc -p "$mutant/tsconfig.json" 2>&1); then
  echo "$out"
  echo "check-infra: tsc accepted 'fifoo: true' in infra/queues.ts: the infra check checks nothing" >&2
  exit 1
fi
if ! grep -E 'infra/queues\.ts\([0-9]+,[0-9]+\): error TS[0-9]+:.*fifoo' <<<"$out"; then
  echo "$out"
  echo "check-infra: tsc failed on the mutant, but not for 'fifoo' in infra/queues.ts" >&2
  exit 1
fi
rm -rf "$mutant"

step "infra ok"
