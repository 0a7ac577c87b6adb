import { generateKeyPairSync } from "node:crypto";
import { readdirSync, readFileSync, readlinkSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Logger, Step, StackState } from "@corral/core";
import { controlKeys } from "@corral/local";
import { CONTROL, deadLetterUrlOf, ensureFifoQueue, exportPublicKey, hostQueueName, hostSender, signer, sqsClient } from "@corral/queue";
import { dynamoClient, EventStore } from "@corral/store";
import { cleanupStack, composeFile, corral, docker, eventually, execIn, spawnCorral, stackContainers, testServer } from "./support.js";

// The queue is a trust boundary. An attacker who reaches the queue stand-in (or
// an over-broad IAM role on AWS) can send anything to any queue; none of it may
// run a container, run an exec, or change what the control plane believes.
// Forged, misaddressed, expired, replayed and malformed messages are put on
// both queues of a running server, and Docker and the event log are looked at.
const refusals: string[] = [];
const logLines: string[] = [];
const capture: Logger = {
  info: (m, f) => logLines.push(`${m} ${JSON.stringify(f ?? {})}`),
  error: (m, f) => {
    logLines.push(`${m} ${JSON.stringify(f ?? {})}`);
    if (m.endsWith("message refused")) refusals.push(`${m}: ${String(f?.reason)}`);
  },
};
const wire: string[] = [];
let server: Awaited<ReturnType<typeof testServer>>;
let sqs: SQSClient;
let hostQueue: string;
let store: EventStore;
const mallory = generateKeyPairSync("ed25519");

beforeAll(async () => {
  // (a full sweep every second: the tick that reads every stack finds the commit nobody told the controller of)
  server = await testServer({ tickMs: 300, fullSweepMs: 1_000, log: capture, queueTap: (direction, body) => direction === "request" && wire.push(body) });
  sqs = sqsClient(server.endpoints.sqs);
  hostQueue = await ensureFifoQueue(sqs, hostQueueName("corral", "test-host"));
  store = new EventStore(dynamoClient(server.endpoints.dynamo), { table: "corral" }); // reads without checking MACs: what an attacker can do
});
afterAll(async () => {
  await server?.stop();
  await cleanupStack("trust");
  await cleanupStack("trustgate");
  for (const c of await docker.listContainers({ all: true, filters: { name: ["trust-evil"] } })) await docker.getContainer(c.Id).remove({ force: true });
});

const idle = `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`;
const put = (queueUrl: string, body: string, dedup: string, group = "attacker") =>
  sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body, MessageGroupId: group, MessageDeduplicationId: `${dedup}-${Date.now()}` }));
const untilRefused = (count: number) => eventually(async () => refusals.length >= count, 20_000);
/** Every message on a queue handled (none waiting, none in flight). */
const drained = (queueUrl: string) =>
  eventually(async () => {
    const a = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"] }))).Attributes ?? {};
    return a.ApproximateNumberOfMessages === "0" && a.ApproximateNumberOfMessagesNotVisible === "0";
  }, 20_000);
async function deadLetters(queueUrl: string): Promise<string[]> {
  const reasons: string[] = [];
  for (let i = 0; i < 20; i++) {
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: deadLetterUrlOf(queueUrl), MaxNumberOfMessages: 10, MessageAttributeNames: ["All"], WaitTimeSeconds: 0 }));
    if (!got.Messages?.length) break;
    for (const m of got.Messages) {
      reasons.push(m.MessageAttributes?.reason?.StringValue ?? "");
      await sqs.send(new DeleteMessageCommand({ QueueUrl: deadLetterUrlOf(queueUrl), ReceiptHandle: m.ReceiptHandle }));
    }
  }
  return reasons;
}
const planned = (state: StackState, action: Step["action"], service: string) => Object.values(state.steps).find((r) => r.step.action === action && r.step.service === service);

describe("the queue is a trust boundary", () => {
  it("forged, misaddressed, expired and malformed messages on a host's queue run nothing", async () => {
    const up = await corral(server, ["up", "-d", "-s", "trust", "-f", composeFile(`services:\n  web:\n    image: corral-busybox:latest\n    command: ${idle}\n    cap_drop: [ALL]\n`)]);
    expect(up.code).toBe(0);
    const state = await store.load("trust");
    const web = planned(state, "create", "web")!.step;
    // a create step that would own the host: privileged, host network, every capability, / mounted
    const evil: Step = {
      ...web,
      id: "evil-create",
      op: "evil",
      service: "evil",
      container: "trust-evil-1",
      after: [],
      spec: { ...web.spec!, privileged: true, network_mode: "host", cap_add: ["ALL"], cap_drop: [], volumes: [{ type: "bind", source: "/", target: "/host" }] },
    };
    const step = (s: Step) => ({ kind: "step", step: s, attempt: 1 });
    const real = controlKeys(server.dataDir); // the genuine key, to show that addressing and expiry are checked too
    const session = { kind: "session", id: "s-evil", type: "exec", containers: ["trust-web-1"], exec: { cmd: ["touch", "/tmp/pwned"] } };
    const before = refusals.length;
    await put(hostQueue, JSON.stringify(step(evil)), "unsigned");
    await put(hostQueue, signer(CONTROL, mallory.privateKey).seal("test-host", step(evil)), "mallory");
    await put(hostQueue, signer(CONTROL, real.privateKey).seal("other-host", step(evil)), "misaddressed");
    await put(hostQueue, signer(CONTROL, real.privateKey).seal("test-host", step({ ...evil, host: "other-host" })), "other-host-step");
    await put(hostQueue, signer(CONTROL, real.privateKey, { ttlMs: -1000 }).seal("test-host", step(evil)), "expired");
    await put(hostQueue, signer(hostSender("test-host"), mallory.privateKey).seal("test-host", step(evil)), "from-a-host");
    await put(hostQueue, JSON.stringify(session), "session");
    await put(hostQueue, "{{{ not json", "garbage");
    await untilRefused(before + 8);
    const reasons = refusals.slice(before).join("\n");
    for (const why of ["not a signed corral envelope", "bad signature", "addressed to other-host", "is for host other-host", "expired", "unknown sender host:test-host", "not JSON"]) expect(reasons).toContain(why);
    expect(await docker.listContainers({ all: true, filters: { name: ["trust-evil"] } })).toEqual([]);
    expect(await execIn("trust-web-1", ["sh", "-c", "ls /tmp/pwned 2>/dev/null || echo absent"])).toBe("absent\n");
    // each went to the host queue's dead-letter queue at once, with the reason
    expect((await deadLetters(hostQueue)).length).toBeGreaterThanOrEqual(8);
    // and the stack still works
    expect((await corral(server, ["restart", "trust/web"])).code).toBe(0);
  });

  it("a replayed step does not act again, and a replayed report is not believed again", async () => {
    expect((await corral(server, ["stop", "trust/web"])).code).toBe(0);
    expect((await corral(server, ["start", "trust/web"])).code).toBe(0);
    const bodies = wire.flatMap((w) => {
      try {
        return ((JSON.parse(w) as { Entries?: Array<{ MessageBody?: string }> }).Entries ?? []).flatMap((e) => (e.MessageBody?.startsWith('{"v":1') ? [e.MessageBody] : []));
      } catch {
        return [];
      }
    });
    const open = (raw: string) => ({ raw, ...(JSON.parse(raw) as { by: string; to: string; body: string }), msg: JSON.parse((JSON.parse(raw) as { body: string }).body) as Record<string, unknown> });
    const envelopes = bodies.map(open);
    const stop = envelopes.filter((e) => e.to === "test-host" && (e.msg.step as Step | undefined)?.action === "stop").at(-1)!;
    expect(stop).toBeDefined();
    const stopId = (stop.msg.step as Step).id;
    const report = envelopes.find((e) => e.by === "host:test-host" && e.msg.kind === "report" && e.msg.stepId === stopId)!;
    expect(report).toBeDefined();
    const version = (await store.load("trust")).version;
    const before = refusals.length;
    await put(hostQueue, stop.raw, "replayed-stop", "slot");
    await put(server.endpoints.controlQueueUrl, report.raw, "replayed-report", "slot");
    await untilRefused(before + 2);
    expect(refusals.slice(before).join("\n")).toMatch(/replay[\s\S]*replay/);
    const [web] = (await stackContainers("trust")).filter((c) => c.Names[0] === "/trust-web-1");
    expect(web?.State).toBe("running");
    expect((await store.load("trust")).version).toBe(version);
  });

  it("forged reports on the control queue do not move an operation on; only the host that runs a step may report it", async () => {
    // a start step that waits on a health check the test passes by hand: the step stays planned meanwhile
    const file = composeFile(`services:
  gate:
    image: corral-busybox:latest
    command: ${idle}
    cap_drop: [ALL]
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready"]
      interval: 1s
      retries: 120
`);
    const up = spawnCorral(server, ["up", "-d", "-s", "trustgate", "-f", file]);
    const exited = new Promise<number | null>((resolve) => up.on("exit", (code) => resolve(code)));
    let start: Step | undefined;
    await eventually(async () => {
      const s = await store.load("trustgate").catch(() => undefined);
      const r = s && planned(s, "start", "gate");
      start = r?.status === "planned" ? r.step : undefined;
      return start !== undefined && (await stackContainers("trustgate")).some((c) => c.State === "running");
    });
    // another host, registered for real, with its own key
    const intruder = generateKeyPairSync("ed25519");
    const reg = await fetch(`${server.url}/v1/hosts/intruder/register`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
      body: JSON.stringify({ engine: "x", publicKey: exportPublicKey(intruder.publicKey) }),
    });
    expect(reg.status).toBe(200);
    const claim = (host: string) => ({ kind: "report", stack: "trustgate", stepId: start!.id, host, ok: true, health: "healthy" });
    const control = server.endpoints.controlQueueUrl;
    const before = refusals.length;
    await put(control, JSON.stringify(claim("test-host")), "unsigned");
    await put(control, signer(hostSender("test-host"), mallory.privateKey).seal(CONTROL, claim("test-host")), "mallory");
    await put(control, signer(hostSender("intruder"), intruder.privateKey).seal(CONTROL, claim("test-host")), "speaks-for-another");
    await put(control, signer(hostSender("intruder"), intruder.privateKey).seal(CONTROL, { kind: "stack-changed", stack: "trustgate", version: 1 }), "stack-changed");
    await put(control, signer(hostSender("intruder"), intruder.privateKey).seal("test-host", claim("intruder")), "misaddressed");
    // signed and about itself, but the step is test-host's: the decider ignores it
    await put(control, signer(hostSender("intruder"), intruder.privateKey).seal(CONTROL, claim("intruder")), "not-its-step");
    await untilRefused(before + 5);
    await drained(control);
    const reasons = refusals.slice(before).join("\n");
    for (const why of ["not a signed corral envelope", "bad signature", "may not speak for host test-host", "may not announce a stack change", "addressed to test-host"]) expect(reasons).toContain(why);
    const waiting = await store.load("trustgate");
    expect(waiting.steps[start!.id]?.status).toBe("planned");
    expect(waiting.op?.status).toBe("running");
    // the real verdict, from the real host, ends it
    await execIn("trustgate-gate-1", ["touch", "/tmp/ready"]);
    expect(await exited).toBe(0);
    expect((await store.load("trustgate")).steps[start!.id]?.status).toBe("succeeded");
  });

  it("a commit the control plane did not write is refused: no step of it runs, and the API says why", async () => {
    const state = await store.load("trust");
    const web = (await store.commits("trust")).flatMap((c) => c.events).find((e) => e.type === "StepPlanned" && e.step.action === "create")!;
    if (web.type !== "StepPlanned") throw new Error("no create step");
    const evil: Step = { ...web.step, id: "forged-create", op: state.op?.id ?? "op", container: "trust-evil-2", after: [] };
    // written straight into the table, as its owner (or root) can on the embedded stand-in's private socket
    await store.append("trust", state.version, [{ type: "StepPlanned", step: evil, at: Date.now() } as never], "controller");
    // the embedded server is its table's only writer: the states it keeps are current, and it meets the forged
    // commit at its next write to the stack (that version is taken), then reads the log and refuses it
    const restart = await corral(server, ["restart", "trust/web"]);
    expect(restart.code).not.toBe(0);
    expect(restart.stderr).toMatch(/stack trust: commit \d+ was not written by this control plane/);
    const ps = await corral(server, ["ps"]);
    expect(ps.code).not.toBe(0);
    expect(ps.stderr).toMatch(/stack trust: commit \d+ was not written by this control plane/);
    await eventually(async () => logLines.some((l) => l.startsWith("reconcile failed") && l.includes("not written by this control plane")), 10_000);
    expect(await docker.listContainers({ all: true, filters: { name: ["trust-evil"] } })).toEqual([]);
  });
});

describe("listeners", () => {
  it("corral server opens no port on anything but loopback, and its stores listen on sockets only its user may reach", async () => {
    const data = mkdtempSync(join(tmpdir(), "corral-listen-"));
    const child = spawnCorral(server, ["server", "--port", "0", "--data", data, "--host-id", "listen-host"]);
    try {
      await new Promise<void>((resolve, reject) => {
        let seen = "";
        const timer = setTimeout(() => reject(new Error(`server did not start: ${seen}`)), 30_000);
        child.stdout?.on("data", (d: Buffer) => {
          seen += d.toString();
          if (!seen.includes("corral server on")) return;
          clearTimeout(timer);
          resolve();
        });
      });
      const inodes = new Set(
        readdirSync(`/proc/${child.pid}/fd`).flatMap((fd) => {
          const link = (() => {
            try {
              return readlinkSync(`/proc/${child.pid}/fd/${fd}`);
            } catch {
              return "";
            }
          })();
          const m = /^socket:\[(\d+)\]$/.exec(link);
          return m ? [m[1]!] : [];
        }),
      );
      const listening = ["tcp", "tcp6", "udp", "udp6"].flatMap((proto) =>
        readFileSync(`/proc/net/${proto}`, "utf8")
          .split("\n")
          .slice(1)
          .map((line) => line.trim().split(/\s+/))
          .filter((f) => f.length > 9 && inodes.has(f[9]!) && (proto.startsWith("udp") || f[3] === "0A"))
          .map((f) => ({ proto, local: f[1]! })),
      );
      expect(listening.length).toBeGreaterThanOrEqual(1); // the API
      const loopback = (hex: string) => hex.startsWith("0100007F:") || hex.startsWith("00000000000000000000000001000000:");
      expect(listening.filter((l) => !loopback(l.local))).toEqual([]);
      // DynamoDB's and SQS's stand-ins: Unix sockets (listening: flag 00010000) in a folder of mode 0700
      const unix = readFileSync("/proc/net/unix", "utf8")
        .split("\n")
        .slice(1)
        .map((line) => line.trim().split(/\s+/))
        .filter((f) => f.length >= 8 && inodes.has(f[6]!) && f[3] === "00010000")
        .map((f) => f[7]!);
      expect(unix.map((p) => basename(p)).sort()).toEqual(["dynamo.sock", "sqs.sock"]);
      for (const p of unix) expect((statSync(dirname(p)).mode & 0o777).toString(8)).toBe("700");
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.on("exit", r));
    }
  });
});
