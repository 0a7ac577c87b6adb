import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupStack, corral, docker, eventually, httpGet, stackContainers, testServer } from "./support.js";

// The Swarm exercise through Swarm's own verbs: docker service create / update / rollback / ps, on the real engine.
let server: Awaited<ReturnType<typeof testServer>>;
const port = 60021;

/** corral-svc:TAG, a web server answering TAG at / (broken: answering nothing there, so its health check fails). */
function image(tag: string, broken = false) {
  const dockerfile = `FROM corral-hello:latest\nRUN ${broken ? "rm /www/index.html" : `echo ${tag} > /www/index.html`}\n`;
  execFileSync("docker", ["build", "-q", "-t", `corral-svc:${tag}`, "-"], { input: dockerfile, stdio: ["pipe", "ignore", "inherit"] });
}

beforeAll(async () => {
  image("v1");
  image("v2", true);
  image("v3");
  server = await testServer({ tickMs: 300 });
}, 120_000);
afterAll(async () => {
  await server?.stop();
  for (const s of ["svcx", "bad"]) await cleanupStack(s);
});

type Row = Record<string, string>;
const running = async (stack: string) =>
  (await stackContainers(stack))
    .filter((c) => c.State === "running")
    .map((c) => c.Image)
    .sort();
const tasks = async (name: string) => JSON.parse((await corral(server, ["service", "ps", name, "--format", "json"])).stdout) as Row[];

describe("docker service verbs, the Swarm exercise", () => {
  it("create, update, a failing update that rolls back by itself, ps's history, rollback to the previous spec", async () => {
    const unknown = await corral(server, ["service", "create", "--name", "svcx", "--privileged", "corral-svc:v1"]);
    expect(unknown.code).not.toBe(0); // a flag corral does not take is refused before anything is sent
    expect(unknown.stderr).toContain("--privileged");

    const made = await corral(server, [
      "service", "create", "--name", "svcx", "--replicas", "2", "--publish", `${port}:80`,
      "--health-cmd", "wget -q -O /dev/null http://127.0.0.1/", "--health-interval", "1s", "--health-retries", "2",
      "--update-parallelism", "1", "--update-failure-action", "rollback", "--cap-add", "NET_BIND_SERVICE", "corral-svc:v1",
    ]);
    expect(made.stderr).toBe("");
    expect(made.code).toBe(0);
    expect(made.stdout.trim().split("\n").at(-1)).toBe("svcx");
    expect(await running("svcx")).toEqual(["corral-svc:v1", "corral-svc:v1"]);
    expect((await httpGet(`http://127.0.0.1:${port}/`)).trim()).toBe("v1");

    // an update: a new revision holding exactly that change, rolled out one container at a time
    const up = await corral(server, ["service", "update", "--image", "corral-svc:v3", "--env-add", "MODE=blue", "svcx"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect(await running("svcx")).toEqual(["corral-svc:v3", "corral-svc:v3"]);
    expect((await httpGet(`http://127.0.0.1:${port}/`)).trim()).toBe("v3");
    const env = (await docker.getContainer((await stackContainers("svcx")).find((c) => c.State === "running")!.Id).inspect()).Config.Env;
    expect(env).toContain("MODE=blue");
    const history = await corral(server, ["history", "svcx"]);
    expect(history.stdout).toMatch(/2\s.*svcx.*(image|environment)/);
    const exported = (await corral(server, ["export", "svcx", "-f", "-"])).stdout;
    expect(exported).toContain("image: corral-svc:v3");
    expect(exported).toContain("MODE: blue");
    expect(exported).toContain("failure_action: rollback");
    const [inspect] = JSON.parse((await corral(server, ["service", "inspect", "svcx"])).stdout) as Array<{ Spec: { image: string }; PreviousSpec: { image: string } }>;
    expect(inspect!.Spec.image).toBe("corral-svc:v3");
    expect(inspect!.PreviousSpec.image).toBe("corral-svc:v1");

    // an image whose health check fails: the update rolls back by itself, and says why
    const bad = await corral(server, ["service", "update", "--image", "corral-svc:v2", "svcx/svcx"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/unhealthy/);
    expect(bad.stderr).toMatch(/rolled back to revision 2/);
    expect(await running("svcx")).toEqual(["corral-svc:v3", "corral-svc:v3"]);
    expect((await httpGet(`http://127.0.0.1:${port}/`)).trim()).toBe("v3");

    // service ps: each slot's container, its earlier ones beneath it
    const ps = await corral(server, ["service", "ps", "svcx"]);
    expect(ps.code).toBe(0);
    const lines = ps.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^ID\s+NAME\s+IMAGE\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR\s+PORTS$/);
    expect(lines[1]).toMatch(/svcx-svcx-1\s+corral-svc:v3\s+\S+\s+Running\s+Running (\d+ seconds?|less than a second) ago/);
    expect(lines.some((l) => /\\_ svcx-svcx-1\s+corral-svc:v2\s+\S+\s+Shutdown\s+Shutdown .* ago\s+.*unhealthy/.test(l))).toBe(true);
    expect(lines.some((l) => /\\_ svcx-svcx-1\s+corral-svc:v1\s+\S+\s+Shutdown\s+Shutdown/.test(l))).toBe(true);
    const rows = await tasks("svcx");
    expect(rows.filter((r) => r.desiredState === "Running").map((r) => r.image)).toEqual(["corral-svc:v3", "corral-svc:v3"]);
    expect(Object.keys(rows[0]!)).toEqual(["id", "name", "image", "node", "desiredState", "currentState", "error", "ports"]);

    // rollback: to the previous spec (v1), a new revision; history says so
    const back = await corral(server, ["service", "rollback", "svcx"]);
    expect(back.stderr).toBe("");
    expect(back.code).toBe(0);
    expect(await running("svcx")).toEqual(["corral-svc:v1", "corral-svc:v1"]);
    expect((await httpGet(`http://127.0.0.1:${port}/`)).trim()).toBe("v1");
    expect((await corral(server, ["history", "svcx"])).stdout).toContain("rollback of svcx to revision 1");
  }, 240_000);

  it("replicas alone is a scale; ls lists the service; bad values are refused naming the service and the flag, changing nothing", async () => {
    const scaled = await corral(server, ["service", "update", "--replicas", "3", "svcx"]);
    expect(scaled.stderr).toBe("");
    expect(scaled.code).toBe(0);
    expect(await running("svcx")).toHaveLength(3);
    const ls = JSON.parse((await corral(server, ["service", "ls", "--format", "json"])).stdout) as Row[];
    expect(ls.find((r) => r.name === "svcx/svcx")).toMatchObject({ mode: "replicated", replicas: "3/3", image: "corral-svc:v1" });

    const before = (await corral(server, ["history", "svcx"])).stdout;
    const refused = await corral(server, ["service", "update", "--env-add", "NOVALUE", "--publish-add", "80:99999", "svcx"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("service update svcx/svcx: services.svcx: --env-add: \"NOVALUE\" is not KEY=VALUE");
    expect(refused.stderr).toContain("--publish-add");
    // the site's policy, as for any up: a port outside the range, a capability not allowed
    const policy = await corral(server, ["service", "update", "--publish-add", "8081:80", "svcx"]);
    expect(policy.code).not.toBe(0);
    expect(policy.stderr).toMatch(/service update svcx\/svcx: services\.svcx\.ports.*8081/);
    const cap = await corral(server, ["service", "create", "--name", "bad", "--cap-add", "SYS_ADMIN", "corral-svc:v1"]);
    expect(cap.code).not.toBe(0);
    expect(cap.stderr).toMatch(/service create bad\/bad: services\.bad\.cap_add.*SYS_ADMIN/);
    expect((await corral(server, ["service", "update", "svcx/nope", "--image", "x"])).stderr).toContain("stack svcx has no service nope");
    expect((await corral(server, ["service", "update", "svcx"])).stderr).toContain("nothing to update");
    expect((await corral(server, ["history", "svcx"])).stdout).toBe(before);
    expect(await stackContainers("bad")).toEqual([]);

    // the bot's way (README): an update held for a verdict, followed, then confirmed
    const held = await fetch(`${server.url}/v1/stacks/svcx/services/svcx/update`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json", "idempotency-key": "deploy-4711" },
      body: JSON.stringify({ patch: { envAdd: ["HELD=1"] }, hold: true }),
    });
    expect(held.status).toBe(202);
    const { op } = (await held.json()) as { op: string };
    // rolled out (not while it rolls: "rolling out revision …"), it waits for its verdict
    await eventually(async () => (JSON.parse((await corral(server, ["service", "inspect", "svcx"])).stdout) as Array<{ UpdateStatus: { Message: string } }>)[0]!.UpdateStatus.Message.includes("awaiting confirmation"), 60_000, 250);
    await new Promise((r) => setTimeout(r, 2000));
    expect(JSON.parse((await corral(server, ["service", "inspect", "svcx"])).stdout)[0].UpdateStatus.State).toBe("updating"); // still held: nothing confirmed it
    expect(op).toBeTruthy();
    expect((await corral(server, ["up", "-d", "--confirm-upgrade", "-s", "svcx"])).code).toBe(0);
    expect(JSON.parse((await corral(server, ["service", "inspect", "svcx"])).stdout)[0].UpdateStatus.State).toBe("completed");

    const rm = await corral(server, ["service", "rm", "svcx"]);
    expect(rm.code).toBe(0);
    expect(await stackContainers("svcx")).toEqual([]);
  }, 180_000);
});
