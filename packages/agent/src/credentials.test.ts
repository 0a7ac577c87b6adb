import { mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CredentialStore } from "./credentials.js";

const store = () => new CredentialStore(join(mkdtempSync(join(tmpdir(), "corral-cred-")), "agent"));

describe("an agent's saved credentials", () => {
  it("are kept per control plane and host, owner-only, and found again by URL alone when one host is saved there", async () => {
    const s = store();
    await s.save({ url: "http://cp:8080", hostId: "h1", hostToken: "host.h1.a" });
    await s.save({ url: "http://cp:8080", hostId: "h1", hostToken: "host.h1.b" }); // a re-registration rotates it
    await s.save({ url: "http://other:8080", hostId: "h2", hostToken: "host.h2.a" });
    expect(await s.load("http://cp:8080")).toEqual({ url: "http://cp:8080", hostId: "h1", hostToken: "host.h1.b" });
    expect(await s.load("http://cp:8080", "h1")).toMatchObject({ hostToken: "host.h1.b" });
    expect(await s.load("http://cp:8080", "h2")).toBeUndefined();
    expect(await s.load("http://nowhere:8080")).toBeUndefined();
    expect(statSync(s.dir).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(s.dir)) expect(statSync(join(s.dir, f)).mode & 0o777).toBe(0o600);
    expect(readdirSync(s.dir).some((f) => f.endsWith(".tmp"))).toBe(false);
  });

  it("two hosts saved for one control plane: the URL alone does not choose; the host id does", async () => {
    const s = store();
    await s.save({ url: "http://cp:8080", hostId: "h1", hostToken: "host.h1.a" });
    await s.save({ url: "http://cp:8080", hostId: "h2", hostToken: "host.h2.a" });
    expect(await s.load("http://cp:8080")).toBeUndefined();
    expect(await s.load("http://cp:8080", "h2")).toMatchObject({ hostId: "h2" });
  });

  it("are forgotten when the host is removed", async () => {
    const s = store();
    await s.save({ url: "http://cp:8080", hostId: "h1", hostToken: "host.h1.a" });
    await s.forget("http://cp:8080", "h1");
    expect(await s.load("http://cp:8080", "h1")).toBeUndefined();
  });

  it("a file that is not one is refused with its path, not used", async () => {
    const s = store();
    await s.save({ url: "http://cp:8080", hostId: "h1", hostToken: "host.h1.a" });
    const file = join(s.dir, readdirSync(s.dir)[0]!);
    writeFileSync(file, "{not json");
    await expect(s.load("http://cp:8080", "h1")).rejects.toThrow(file);
    writeFileSync(file, JSON.stringify({ url: "http://cp:8080", hostId: "../etc", hostToken: "x" }));
    await expect(s.load("http://cp:8080", "h1")).rejects.toThrow(/not a corral agent credentials file/);
  });
});
