import { describe, expect, it } from "vitest";
import { StackNetworks, type NetworkAnswer } from "./networks.js";

// The kernel's side of the overlay is read with ip and iptables (a fake here, that records each run): only when
// the plan changes, and every reapplyMs, not at every round of following the control plane.
const answer = (peers: NetworkAnswer["view"]["peers"] = []): NetworkAnswer => ({ view: { me: { id: "h1", underlay: "198.18.0.2", vtep: "10.127.0.1" }, peers, stacks: [] }, names: {} });
const fakeKernel = () => {
  const runs: string[][] = [];
  return { runs, exec: async (cmd: string[]) => (runs.push(cmd), cmd.includes("-j") ? "[]" : "") };
};

describe("stack networks, following the control plane", () => {
  it("reads and mends the kernel when the plan changes, not at each round of the same plan", async () => {
    const kernel = fakeKernel();
    let now = answer();
    const networks = new StackNetworks({ fetch: async () => now, exec: kernel.exec, dnsPort: 0 });
    await networks.sync();
    expect(networks.plan).toBeDefined();
    const first = kernel.runs.length;
    expect(first).toBeGreaterThan(0);
    await networks.sync();
    expect(kernel.runs.length).toBe(first);
    now = answer([{ id: "h2", underlay: "198.18.0.3", vtep: "10.127.0.2" }]);
    await networks.sync();
    expect(kernel.runs.length).toBeGreaterThan(first);
    await networks.stop();
  });

  it("reads it again for the same plan once reapplyMs passed (what else changed it is mended)", async () => {
    const kernel = fakeKernel();
    const networks = new StackNetworks({ fetch: async () => answer(), exec: kernel.exec, dnsPort: 0, reapplyMs: 0 });
    await networks.sync();
    const first = kernel.runs.length;
    await networks.sync();
    expect(kernel.runs.length).toBeGreaterThan(first);
    await networks.stop();
  });
});
