import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Logger } from "@corral/core";
import { cleanupStack, composeFile, corral, execIn, testServer } from "./support.js";

// Secrets never leak: a full secret lifecycle, with everything a user, an
// operator or a log shipper could see captured: CLI output, API bodies, the
// server's and the agent's log lines, and every body that crossed the wire
// to the queue (requests and responses, through a recording proxy).
const first = `first-${Date.now().toString(36)}-s3cr3t`;
const second = `second-${Date.now().toString(36)}-s3cr3t`;
const logLines: string[] = [];
const wire: string[] = [];
const seen: string[] = [];
const capture: Logger = {
  info: (m, f) => logLines.push(`${m} ${JSON.stringify(f ?? {})}`),
  error: (m, f) => logLines.push(`${m} ${JSON.stringify(f ?? {})}`),
};
let server: Awaited<ReturnType<typeof testServer>>;
beforeAll(async () => {
  server = await testServer({ tickMs: 300, log: capture, queueTap: (_d, body) => wire.push(body) });
});
afterAll(async () => {
  await server?.stop();
  await cleanupStack("leak");
});

const idle = `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`;
const file = composeFile(`services:
  web:
    image: corral-busybox:latest
    command: ${idle}
    cap_drop: [ALL]
    secrets:
      - source: web.leak.pw
        target: pw
secrets:
  web.leak.pw:
    external: true
`);

async function run(args: string[], input?: string) {
  const res = await corral(server, args, undefined, input);
  seen.push(`$ corral ${args.join(" ")}\n${res.stdout}${res.stderr}`);
  return res;
}

async function api(path: string) {
  const res = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${server.token}` } });
  const body = await res.text();
  seen.push(`GET ${path} ${res.status}\n${body}`);
  return body;
}

const readSecret = () => execIn("leak-web-1", ["cat", "/run/secrets/pw"]);

async function lookEverywhere() {
  for (const args of [["ps", "--all", "--containers", "--format", "json"], ["ps", "--all"], ["export", "leak", "-f", "-"], ["events", "leak"], ["history", "leak"], ["stack", "ls"], ["secret", "ls", "--format", "json"], ["inspect", "leak"], ["inspect", "leak/web"], ["inspect", "leak-web-1"]]) {
    await run(args);
  }
  for (const path of ["/v1/stacks", "/v1/stacks/leak", "/v1/stacks/leak/history", "/v1/stacks/leak/export", "/v1/stacks/leak/events?after=0", "/v1/services", "/v1/containers", "/v1/secrets", "/v1/hosts", "/v1/inspect?target=leak", "/openapi.json"]) {
    await api(path);
  }
}

it("after a secret's whole life, its values appear in no output, response, log line or queue message", async () => {
  // created from standard input, mounted, rotated from a file, upgraded, rolled back, upgraded and confirmed, removed
  expect((await run(["secret", "create", "web.leak.pw", "-"], first)).code).toBe(0);
  expect((await run(["up", "-d", "-f", file, "-s", "leak"])).code).toBe(0);
  expect(await readSecret()).toBe(first); // the value did reach the container: the path under test is real
  await lookEverywhere();
  const v2 = join(mkdtempSync(join(tmpdir(), "corral-leak-")), "v2");
  writeFileSync(v2, second);
  expect((await run(["secret", "create", "web.leak.pw", v2])).stdout).toContain("version 2");
  expect((await run(["up", "-d", "--upgrade", "-f", file, "-s", "leak"])).code).toBe(0);
  expect(await readSecret()).toBe(second);
  expect((await run(["up", "-d", "--rollback", "-s", "leak"])).code).toBe(0);
  expect(await readSecret()).toBe(first);
  expect((await run(["up", "-d", "--upgrade", "--confirm-upgrade", "-f", file, "-s", "leak"])).code).toBe(0);
  expect(await readSecret()).toBe(second);
  await lookEverywhere();
  expect((await run(["secret", "rm", "web.leak.pw"])).code).not.toBe(0); // in use, and the refusal names no value
  expect((await run(["rm", "leak"])).code).toBe(0);
  expect((await run(["secret", "rm", "web.leak.pw"])).code).toBe(0);

  // what was captured is real traffic, not an empty net
  expect(wire.some((b) => b.includes("leak-web-1") || b.includes("leak/web"))).toBe(true);
  expect(logLines.some((l) => l.includes("step done"))).toBe(true);
  expect(logLines.some((l) => l.includes("/v1/stacks/leak/up"))).toBe(true);
  for (const value of [first, second]) {
    for (const form of [value, Buffer.from(value).toString("base64")]) {
      expect(seen.filter((s) => s.includes(form))).toEqual([]);
      expect(logLines.filter((s) => s.includes(form))).toEqual([]);
      expect(wire.filter((s) => s.includes(form))).toEqual([]);
    }
  }
});
