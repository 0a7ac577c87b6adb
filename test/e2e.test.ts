import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupStack, composeFile, corral, docker, httpGet, stackContainers, testServer } from "./support.js";

let server: Awaited<ReturnType<typeof testServer>>;

beforeAll(async () => {
  for (const image of ["corral-hello:latest", "corral-busybox:latest"]) {
    await docker.getImage(image).inspect().catch(() => {
      throw new Error(`test image ${image} is missing: run 'npm run images'`);
    });
  }
  server = await testServer();
});
afterAll(async () => {
  await server?.stop();
  for (const s of ["e2e-two", "e2e-bad", "e2e-pull", "e2e-dana"]) await cleanupStack(s);
});

const twoServices = `
version: '2'
services:
  web:
    image: corral-hello:latest
    ports:
      - "60011:80"
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE]
  worker:
    image: corral-busybox:latest
    command: sh -c "trap 'exit 0' TERM; while true; do wget -q -O /tmp/page http://web/ && cp /tmp/page /tmp/ok; sleep 1; done"
    environment:
      ROLE: worker
    cap_drop: [ALL]
`;

describe("a two-service stack through the CLI", () => {
  it("comes up, answers on its port, shows in ps, and goes away with rm", async () => {
    const file = composeFile(twoServices);
    const up = await corral(server, ["up", "-d", "-f", file, "-s", "e2e-two"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    for (const line of ["[web]: Creating", "[web]: Created", "[web]: Starting", "[web]: Started", "[worker]: Started"]) {
      expect(up.stdout).toContain(line);
    }

    expect(await httpGet("http://127.0.0.1:60011/")).toBe("hello from corral\n");

    const services = JSON.parse((await corral(server, ["ps", "--format", "json"])).stdout) as Array<Record<string, string>>;
    const mine = services.filter((s) => s.name?.startsWith("e2e-two/"));
    expect(mine.map((s) => [s.name, s.state, s.scale])).toEqual([
      ["e2e-two/web", "active", "1/1"],
      ["e2e-two/worker", "active", "1/1"],
    ]);
    expect(Object.keys(mine[0]!).sort()).toEqual(["detail", "endpoints", "id", "image", "name", "scale", "state", "type"]);
    expect(mine[0]!.endpoints).toContain("60011->80/tcp");

    const containers = JSON.parse((await corral(server, ["ps", "--all", "--containers", "--format", "json"])).stdout) as Array<Record<string, string>>;
    const ours = containers.filter((c) => c.name?.startsWith("e2e-two-"));
    expect(ours.map((c) => [c.name, c.state])).toEqual([
      ["e2e-two-web-1", "running"],
      ["e2e-two-worker-1", "running"],
    ]);
    expect(Object.keys(ours[0]!).sort()).toEqual(["detail", "docker", "host", "id", "image", "ip", "name", "state"]);

    // what Docker itself runs: the named containers, running, labelled
    const engine = await stackContainers("e2e-two");
    expect(engine.map((c) => [c.Names[0], c.State]).sort()).toEqual([
      ["/e2e-two-web-1", "running"],
      ["/e2e-two-worker-1", "running"],
    ]);
    const web = engine.find((c) => c.Names[0] === "/e2e-two-web-1")!;
    expect(web.Labels).toMatchObject({ "io.corral.stack": "e2e-two", "io.corral.service": "web", "io.corral.slot": "1", "io.corral.revision": "1" });
    expect(web.Id).toBe(ours[0]!.docker);

    // the worker reaches the web service by its name on the stack's network
    const worker = docker.getContainer("e2e-two-worker-1");
    let reached = "";
    for (let i = 0; i < 50 && !reached; i++) {
      const exec = await worker.exec({ Cmd: ["cat", "/tmp/ok"], AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({});
      reached = await new Promise<string>((resolve) => {
        let out = "";
        stream.on("data", (d: Buffer) => (out += d.toString()));
        stream.on("end", () => resolve(out.includes("hello from corral") ? out : ""));
      });
      if (!reached) await new Promise((r) => setTimeout(r, 200));
    }
    expect(reached).toContain("hello from corral");

    const rm = await corral(server, ["rm", "--type", "stack", "e2e-two"]);
    expect(rm.code).toBe(0);
    expect(await stackContainers("e2e-two")).toEqual([]);
    const after = JSON.parse((await corral(server, ["ps", "--all", "--format", "json"])).stdout) as Array<{ name: string }>;
    expect(after.filter((s) => s.name.startsWith("e2e-two/"))).toEqual([]);
  });

  it("up again with the same file changes nothing", async () => {
    const file = composeFile(twoServices.replace("60011", "60012"));
    expect((await corral(server, ["up", "-d", "-f", file, "-s", "e2e-two"])).code).toBe(0);
    const before = (await stackContainers("e2e-two")).map((c) => c.Id).sort();
    const again = await corral(server, ["up", "-d", "-f", file, "-s", "e2e-two"]);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain("Creating");
    expect((await stackContainers("e2e-two")).map((c) => c.Id).sort()).toEqual(before);
    expect((await corral(server, ["rm", "e2e-two"])).code).toBe(0);
  });
});

describe("failures a user must see", () => {
  it("a bad compose file is refused with file, service and key, and nothing is created", async () => {
    const file = composeFile("services:\n  web:\n    image: corral-hello:latest\n    devices: ['/dev/sda']\n");
    const res = await corral(server, ["up", "-d", "-f", file, "-s", "e2e-bad"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("docker-compose.yml: services.web.devices: not supported");
    expect(await stackContainers("e2e-bad")).toEqual([]);
    const stacks = JSON.parse((await corral(server, ["stack", "ls", "--format", "json"])).stdout) as Array<{ name: string }>;
    expect(stacks.map((s) => s.name)).not.toContain("e2e-bad");
  });

  it("an image that cannot be pulled fails the up, and ps shows the error with Docker's message", async () => {
    const file = composeFile("services:\n  app:\n    image: 127.0.0.1:5999/nope/missing:1\n    cap_drop: [ALL]\n");
    const res = await corral(server, ["up", "-d", "-f", file, "-s", "e2e-pull"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/error: app: .*127\.0\.0\.1:5999/);
    const services = JSON.parse((await corral(server, ["ps", "--all", "--format", "json"])).stdout) as Array<Record<string, string>>;
    const app = services.find((s) => s.name === "e2e-pull/app");
    expect(app?.state).toBe("error");
    expect(app?.detail).toMatch(/127\.0\.0\.1:5999/);
    expect(await stackContainers("e2e-pull")).toEqual([]);
    expect((await corral(server, ["rm", "e2e-pull"])).code).toBe(0);
  });
});

describe("users and groups through the CLI", () => {
  it("a user sees their own stacks; another group's answer as missing", async () => {
    const tokenOf = async (name: string, group: string) => {
      const res = await corral(server, ["user", "create", name, "--group", group]);
      expect(res.code).toBe(0);
      return res.stdout.trim();
    };
    const dana = { url: server.url, token: await tokenOf("dana", "astro") };
    const eli = { url: server.url, token: await tokenOf("eli", "bio") };
    const file = composeFile("services:\n  app:\n    image: corral-busybox:latest\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n    cap_drop: [ALL]\n");
    expect((await corral(dana, ["up", "-d", "-f", file, "-s", "e2e-dana"])).code).toBe(0);
    const mine = JSON.parse((await corral(dana, ["ps", "--format", "json"])).stdout) as Array<{ name: string }>;
    expect(mine.map((r) => r.name)).toContain("e2e-dana/app");
    const theirs = JSON.parse((await corral(eli, ["ps", "--all", "--format", "json"])).stdout) as Array<{ name: string }>;
    expect(theirs.map((r) => r.name)).not.toContain("e2e-dana/app");
    const rm = await corral(eli, ["rm", "e2e-dana"]);
    expect(rm.code).not.toBe(0);
    expect(rm.stderr).toContain("stack e2e-dana not found");
    expect((await corral(eli, ["user", "ls"])).code).not.toBe(0);
    expect((await corral(dana, ["rm", "e2e-dana"])).code).toBe(0);
  });
});
