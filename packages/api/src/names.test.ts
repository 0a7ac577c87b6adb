import { describe, expect, it } from "vitest";
import type { Principal } from "./auth.js";
import { belongsToStack, mayName, mayUse, secretStack, volumeStack } from "./names.js";

const user = (name: string, groups = [name]): Principal => ({ name, admin: false, groups, scope: name });
const admin: Principal = { name: "admin", admin: true, groups: [], scope: "admin" };
const alice = user("alice", ["science"]);
const carol = user("carol", ["science"]);
const bob = user("bob");
const owned = { owner: "alice", group: "science" };

describe("names belong to the stack they name", () => {
  it("reads the stack out of SERVICE.STACK.FILE and SERVICE.STACK", () => {
    expect(secretStack("web.labs.pw")).toBe("labs");
    expect(secretStack("web.labs.tls.key")).toBe("labs");
    expect(volumeStack("db.labs")).toBe("labs");
    const bads = ["", "pw", "web.labs", "web..pw", "web.Labs.pw", "web.labs.", ".labs.pw", "web.labs.p/w", `web.labs.${"x".repeat(130)}`];
    for (const bad of bads) expect(() => secretStack(bad)).toThrow(/SERVICE\.STACK\.FILE/);
  });

  it("a stack nobody owns: anyone may name it; a record is its maker's", () => {
    expect(mayName(bob, {})).toBe(true);
    expect(mayUse(bob, { owner: "bob", group: "bob" }, {})).toBe(true);
    expect(mayUse(alice, { owner: "bob", group: "bob" }, {})).toBe(false);
  });

  it("an owned stack (removed ones keep their owner): only its owner and group name it, use its records", () => {
    expect(mayName(bob, owned)).toBe(false);
    expect(mayName(carol, owned)).toBe(true);
    expect(mayUse(carol, { owner: "alice", group: "science" }, owned)).toBe(true);
    expect(mayUse(alice, { owner: "carol", group: "science" }, owned)).toBe(true);
    expect(mayUse(bob, { owner: "alice", group: "science" }, owned)).toBe(false);
  });

  it("a record made by an outsider before the stack was owned is stale: its maker loses it, nobody but the admin uses it", () => {
    const planted = { owner: "bob", group: "bob" };
    expect(belongsToStack(planted, owned)).toBe(false);
    expect(mayUse(bob, planted, owned)).toBe(false);
    expect(mayUse(alice, planted, owned)).toBe(false);
    expect(mayUse(admin, planted, owned)).toBe(true);
    expect(belongsToStack({ owner: "alice", group: "alice" }, owned)).toBe(true);
  });
});
