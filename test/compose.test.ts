import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sitePolicySchema } from "@corral/core";
import { cleanupStack, corral, docker, execIn, httpGet, stackContainers, testServer } from "./support.js";

// Compose files as Spin users write them, through the CLI, on the real engine.
let server: Awaited<ReturnType<typeof testServer>>;
const root = mkdtempSync(join(tmpdir(), "corral-lesson-"));
const data = join(root, "data");
const site = join(root, "site");
const password = `pw-${Date.now().toString(36)}-never-shown`;
const passwordFile = join(root, "db-password.txt");

beforeAll(async () => {
  mkdirSync(data, { recursive: true });
  mkdirSync(site, { recursive: true });
  writeFileSync(join(site, "index.html"), "served from a bind mount\n");
  for (const dir of [root, data, site]) chmodSync(dir, 0o755); // the services run as uid 1000
  writeFileSync(passwordFile, password);
  writeFileSync(join(root, "key.txt"), "app key\n");
  server = await testServer({
    policy: sitePolicySchema.parse({
      bindRoots: [root],
      bindIds: { default: { uids: "1000-65535", gids: ["100", "1000-65535"] } }, // the "users" group a Spin lesson adds
      registries: ["docker.io"],
      nfsServers: ["127.0.0.1"],
    }),
  });
});
afterAll(async () => {
  await server?.stop();
  await cleanupStack("lesson");
  await cleanupStack("lesson2");
  await cleanupStack("lesson3");
  await docker.getVolume("files.lesson3").remove().catch(() => {});
  await docker.getVolume("db.lesson").remove().catch(() => {});
  await docker.getVolume("app.lesson").remove().catch(() => {});
});

/** A Spin lesson-3 style stack: web/app/db, bind mounts read-only, numeric user, group_add, caps, retain_ip, an external volume. */
const lesson = (extra = "") => `version: '2'
services:
  web:
    image: corral-hello:latest
    ports: ["60030:8080"]
    command: ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /srv & wait $$!"]
    user: "1000:1000"
    group_add: ["100"]
    volumes:
      - ${site}:/srv:ro
    cap_drop: [ALL]
    retain_ip: true
    depends_on: [app]
    secrets:
      - source: web.lesson.pw
        target: db-password
        uid: '1000'
        gid: '1000'
        mode: 0400
  app:
    image: corral-busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do date > /var/lib/app/last; sleep 1; done"]
    environment:
      GREETING: \${GREETING:-hello}
    volumes:
      - app.lesson:/var/lib/app
    cap_drop: [ALL]
    cap_add: [CHOWN, SETUID, SETGID]
    secrets: [app.lesson.key]
  db:
    image: corral-busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    user: "1000:1000"
    volumes:
      - db.lesson:/var/lib/db
      - ${data}:/data:ro
    cap_drop: [ALL]
${extra}volumes:
  app.lesson: {}
  db.lesson:
    external: true
secrets:
  web.lesson.pw:
    file: ${passwordFile}
  app.lesson.key:
    file: ./key.txt
`;

function write(name: string, text: string): string {
  const dir = mkdtempSync(join(root, "stack-"));
  const file = join(dir, name);
  writeFileSync(file, text);
  writeFileSync(join(dir, "key.txt"), "app key\n");
  return file;
}

const containerIds = async () => (await stackContainers("lesson")).map((c) => `${c.Names[0]} ${c.Id} ${c.State}`).sort();

describe("a Spin lesson-3 style stack", () => {
  let file: string;

  it("refuses an external volume that does not exist, saying how to create it", async () => {
    const res = await corral(server, ["up", "-d", "-f", write("docker-compose.yml", lesson()), "-s", "lesson"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("docker-compose.yml: volumes.db.lesson: volume db.lesson does not exist: create it with 'corral volume create db.lesson'");
    expect(await stackContainers("lesson")).toEqual([]);
    expect((await corral(server, ["secret", "ls"])).stdout).not.toContain("web.lesson.pw"); // a refused up creates no secret either
    expect((await corral(server, ["volume", "create", "db.lesson"])).code).toBe(0);
    const ls = JSON.parse((await corral(server, ["volume", "ls", "--all", "--format", "json"])).stdout) as Array<{ name: string; state: string }>;
    expect(ls).toContainEqual(expect.objectContaining({ name: "db.lesson", state: "inactive" }));
  });

  it("renders what corral understood, and writes nothing", async () => {
    file = write("docker-compose.yml", lesson());
    const res = await corral(server, ["up", "--render", "-f", file, "-s", "lesson"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toContain("# docker-compose.yml");
    expect(res.stdout).toContain(`source: ${site}`);
    expect(res.stdout).toContain("GREETING: hello");
    expect(res.stdout).toContain("retain_ip: true");
    expect(await stackContainers("lesson")).toEqual([]);
  });

  it("deploys: the bind mount is served read-only, as the numeric user, on the published port", async () => {
    const res = await corral(server, ["up", "-d", "-f", file, "-s", "lesson"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`Creating secret web.lesson.pw with contents from file ${passwordFile}`);
    // depends_on: app comes up before web
    expect(res.stdout.indexOf("[app]: Started")).toBeLessThan(res.stdout.indexOf("[web]: Creating"));
    expect(await httpGet("http://127.0.0.1:60030/")).toBe("served from a bind mount\n");
    const web = await docker.getContainer("lesson-web-1").inspect();
    expect(web.Config.User).toBe("1000:1000");
    expect(web.HostConfig.GroupAdd).toEqual(["100"]);
    // the site's defaults bound what the file leaves unset
    expect(web.HostConfig.PidsLimit).toBe(1024);
    expect(web.HostConfig.LogConfig).toEqual({ Type: "json-file", Config: { "max-size": "10m", "max-file": "3" } });
    expect(web.HostConfig.CapDrop).toEqual(["ALL"]);
    expect(web.Mounts.find((m) => m.Destination === "/srv")).toMatchObject({ Type: "bind", Source: site, RW: false });
    const db = await docker.getContainer("lesson-db-1").inspect();
    expect(db.Mounts.find((m) => m.Destination === "/var/lib/db")).toMatchObject({ Type: "volume", Name: "db.lesson" });
    const app = await docker.getContainer("lesson-app-1").inspect();
    expect(app.Config.Env).toContain("GREETING=hello");
    expect(app.HostConfig.CapAdd?.sort()).toEqual(["CHOWN", "SETGID", "SETUID"]);
    expect((await docker.getVolume("app.lesson").inspect()).Labels).toMatchObject({ "io.corral.stack": "lesson" });
  });

  it("mounts secrets at /run/secrets with the owner and mode asked for, and creates them from their files", async () => {
    expect(await execIn("lesson-web-1", ["stat", "-c", "%a %u %g", "/run/secrets/db-password"])).toContain("400 1000 1000");
    expect(await execIn("lesson-web-1", ["cat", "/run/secrets/db-password"])).toContain(password);
    expect(await execIn("lesson-app-1", ["stat", "-c", "%a %u %g", "/run/secrets/app.lesson.key"])).toContain("444 0 0");
    const ls = JSON.parse((await corral(server, ["secret", "ls", "--format", "json"])).stdout) as Array<{ name: string; versions: number }>;
    expect(ls.map((x) => [x.name, x.versions]).sort()).toEqual([["app.lesson.key", 1], ["web.lesson.pw", 1]]);
  });

  it.each([
    ["privileged", lesson().replace("    retain_ip: true\n", "    retain_ip: true\n    privileged: true\n"), "docker-compose.yml: services.web.privileged: is not allowed"],
    ["build", lesson().replace("  db:\n    image: corral-busybox:latest\n", "  db:\n    build: .\n"), "docker-compose.yml: services.db.build: is not allowed: images come from a registry"],
    ["cap_add SYS_ADMIN", lesson().replace("cap_add: [CHOWN, SETUID, SETGID]", "cap_add: [SYS_ADMIN]"), "docker-compose.yml: services.app.cap_add: SYS_ADMIN is not allowed (allowed: CHOWN, SETGID, SETUID, DAC_OVERRIDE, NET_BIND_SERVICE, FOWNER, KILL, SETPCAP)"],
    ["a bind mount outside the roots", lesson().replace(`${data}:/data:ro`, "/etc:/data:ro"), `docker-compose.yml: services.db.volumes.1: bind mount /etc is not under an allowed root (allowed: ${root})`],
    ["broken YAML", lesson().replace("  web:\n", "  web:\n   - nope\n"), "docker-compose.yml: line"],
    ["an unknown registry", lesson().replace("image: corral-busybox:latest\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep", "image: registry.example.org/busybox:1\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep"), "docker-compose.yml: services.db.image: registry registry.example.org is not allowed (allowed: docker.io)"],
  ])("refuses %s with a precise message and leaves the running stack untouched", async (_name, text, message) => {
    const before = await containerIds();
    const res = await corral(server, ["up", "-d", "-f", write("docker-compose.yml", text), "-s", "lesson"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(message);
    expect(await containerIds()).toEqual(before);
    expect(before.every((c) => c.endsWith("running"))).toBe(true);
  });

  it("reports every violation at once", async () => {
    const text = lesson().replace("    retain_ip: true\n", "    retain_ip: true\n    privileged: true\n").replace("cap_add: [CHOWN, SETUID, SETGID]", "cap_add: [SYS_ADMIN]");
    const res = await corral(server, ["up", "-d", "-f", write("docker-compose.yml", text), "-s", "lesson"]);
    expect(res.stderr.trim().split("\n")).toHaveLength(2);
  });

  it("exports the stack, and up with the exported files changes nothing", async () => {
    const out = mkdtempSync(join(root, "export-"));
    const res = await corral(server, ["export", "lesson"], out);
    expect(res.code).toBe(0);
    const compose = readFileSync(join(out, "lesson", "docker-compose.yml"), "utf8");
    expect(compose).toContain("db.lesson");
    expect(readFileSync(join(out, "lesson", "rancher-compose.yml"), "utf8")).toContain("retain_ip: true");
    const stdout = await corral(server, ["export", "lesson", "-f", "-"]);
    expect(stdout.stdout).toContain("# rancher-compose.yml");

    const before = await containerIds();
    const history = JSON.parse((await corral(server, ["stack", "ls", "--format", "json"])).stdout) as Array<{ name: string; revision: number }>;
    const again = await corral(server, ["up", "-d", "-f", join(out, "lesson", "docker-compose.yml"), "-s", "lesson"]);
    expect(again.stderr).toBe("");
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("Secret web.lesson.pw already exists");
    expect(again.stdout).not.toContain("Revision");
    expect(again.stdout).not.toContain("Creating");
    expect(await containerIds()).toEqual(before);
    const after = JSON.parse((await corral(server, ["stack", "ls", "--format", "json"])).stdout) as Array<{ name: string; revision: number }>;
    expect(after.find((s) => s.name === "lesson")?.revision).toBe(history.find((s) => s.name === "lesson")?.revision);
  });

  it("never shows a secret's value: not in ps, export, events, stack or secret listings", async () => {
    const outputs = await Promise.all([
      corral(server, ["ps", "--all", "--containers", "--format", "json"]),
      corral(server, ["ps", "--all", "--format", "json"]),
      corral(server, ["export", "lesson", "-f", "-"]),
      corral(server, ["events", "lesson"]),
      corral(server, ["secret", "ls", "--format", "json"]),
    ]);
    for (const o of outputs) expect(o.stdout + o.stderr).not.toContain(password);
    const raw = await fetch(`${server.url}/v1/stacks/lesson/events?after=0`, { headers: { authorization: `Bearer ${server.token}` } });
    expect(await raw.text()).not.toContain(password);
  });

  it("refuses to remove a secret a running container uses, saying which", async () => {
    const res = await corral(server, ["secret", "rm", "web.lesson.pw"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("secret web.lesson.pw is used by running containers: lesson-web-1");
  });

  it("a bind mount through a directory the user cannot traverse fails with that directory named", async () => {
    const closed = join(root, "closed");
    mkdirSync(join(closed, "inner"), { recursive: true });
    chmodSync(closed, 0o750);
    const file = write(
      "docker-compose.yml",
      `services:\n  reader:\n    image: corral-busybox:latest\n    command: ["sleep", "1000"]\n    user: "1000:1000"\n    volumes: ["${join(closed, "inner")}:/data:ro"]\n    cap_drop: [ALL]\n`,
    );
    const res = await corral(server, ["up", "-d", "-f", file, "-s", "lesson2"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(`directory ${closed} is not traversable by user 1000:1000 (mode 750`);
    expect(await stackContainers("lesson2")).toEqual([]);
    expect((await corral(server, ["rm", "lesson2"])).code).toBe(0);
  });

  it("shows the volume active while a container uses it, and refuses to remove it", async () => {
    const ls = JSON.parse((await corral(server, ["volume", "ls", "--format", "json"])).stdout) as Array<{ name: string; state: string; detail: string }>;
    expect(ls).toContainEqual(expect.objectContaining({ name: "db.lesson", state: "active", detail: "used by lesson-db-1" }));
    const rm = await corral(server, ["volume", "rm", "db.lesson"]);
    expect(rm.code).not.toBe(0);
    expect(rm.stderr).toContain("volume db.lesson is in use by lesson-db-1");
  });

  it("a force-upgrade replaces the containers; the files on their volumes survive", async () => {
    await execIn("lesson-app-1", ["sh", "-c", "echo rows > /var/lib/app/table"]);
    const before = (await docker.getContainer("lesson-app-1").inspect()).Id;
    const res = await corral(server, ["up", "-d", "--force-upgrade", "--confirm-upgrade", "-f", file, "-s", "lesson"]);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect((await docker.getContainer("lesson-app-1").inspect()).Id).not.toBe(before);
    expect(await execIn("lesson-app-1", ["cat", "/var/lib/app/table"])).toBe("rows\n");
  });

  it("an nfs volume is made on the host where its container lands, as Docker's local driver with NFS options", async () => {
    expect((await corral(server, ["volume", "create", "--driver", "nfs", "--opt", "addr=127.0.0.1", "--opt", "device=:/exports/site", "files.lesson3"])).code).toBe(0);
    const ls = JSON.parse((await corral(server, ["volume", "ls", "--all", "--format", "json"])).stdout) as Array<{ name: string; driver: string; state: string }>;
    expect(ls).toContainEqual(expect.objectContaining({ name: "files.lesson3", driver: "nfs", state: "inactive" }));
    const file = write("docker-compose.yml", `services:\n  files:\n    image: corral-busybox:latest\n    command: ["sleep", "1000"]\n    volumes: ["files.lesson3:/data"]\n    cap_drop: [ALL]\nvolumes:\n  files.lesson3:\n    external: true\n`);
    const res = await corral(server, ["up", "-d", "-f", file, "-s", "lesson3"]);
    // no NFS server answers on loopback: the mount fails, and says so; the volume is defined on the host as asked
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/files: .*(mount|nfs|connection refused)/i);
    expect((await docker.getVolume("files.lesson3").inspect()).Options).toEqual({ type: "nfs", o: "addr=127.0.0.1", device: ":/exports/site" });
    expect((await corral(server, ["rm", "lesson3"])).code).toBe(0);
    expect((await corral(server, ["volume", "rm", "files.lesson3"])).code).toBe(0);
  });

  it("removes the stack; the volume and its data stay until 'volume rm'", async () => {
    await execIn("lesson-db-1", ["sh", "-c", "echo kept > /var/lib/db/file"], "0");
    expect((await corral(server, ["rm", "lesson"])).code).toBe(0);
    expect(await stackContainers("lesson")).toEqual([]);
    expect((await docker.getVolume("db.lesson").inspect()).Name).toBe("db.lesson");
    const reader = await docker.createContainer({ Image: "corral-busybox:latest", Cmd: ["cat", "/v/file"], HostConfig: { Binds: ["db.lesson:/v"] } });
    await reader.start();
    await reader.wait();
    expect((await reader.logs({ stdout: true })).toString()).toContain("kept");
    await reader.remove();
    expect((await corral(server, ["volume", "rm", "db.lesson"])).code).toBe(0);
    const deadline = Date.now() + 10_000;
    let gone = false;
    while (!gone && Date.now() < deadline) {
      gone = await docker.getVolume("db.lesson").inspect().then(() => false, () => true);
      if (!gone) await new Promise((r) => setTimeout(r, 100));
    }
    expect(gone).toBe(true);
  });
});
