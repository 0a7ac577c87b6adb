import { inSubnet, OVERLAY_OVERHEAD, overlayPlan, type Logger, type OverlayPlan, type OverlayView } from "@corral/core/host";
import { DnsListener, type NameTable } from "./dns.js";
import { applyOverlay, localExec, type Exec } from "./overlay.js";

/** What the control plane tells a host of the stack networks: the overlay's view, and each stack's names. */
export interface NetworkAnswer {
  view: OverlayView;
  names: Record<string, Record<string, string[]>>;
}

export interface StackNetworksOptions {
  /** The control plane's answer now (GET /v1/hosts/ID/overlay). */
  fetch: () => Promise<NetworkAnswer>;
  exec?: Exec;
  /** How often to follow the control plane (default 2 s: a container gone drops out of the names within that and the names' TTL). */
  everyMs?: number;
  /** How often the kernel is read and mended for a plan that did not change (default 30 s). */
  reapplyMs?: number;
  /** The name servers' port (53; tests use another). */
  dnsPort?: number;
  log?: Logger;
}

/**
 * A host's part of the stack networks: every interval it asks the control
 * plane for the view, makes the kernel hold its plan (applyOverlay) and
 * keeps a name server on the gateway of each stack network here, answering
 * that stack's names. A failed round changes nothing: the next one tries
 * again (the kernel keeps what it had).
 */
export class StackNetworks {
  #timer: NodeJS.Timeout | undefined;
  #names = new Map<string, NameTable>();
  #listeners = new Map<string, { listener: DnsListener; gateway: string }>();
  #running: Promise<void> | undefined;
  #plan: OverlayPlan | undefined;
  /** The plan the kernel was last made to hold, and when. */
  #applied: { key: string; at: number } | undefined;
  #underlayMtu: number | undefined;
  #mtuLooked = false;
  #stopped = false;

  constructor(private readonly o: StackNetworksOptions) {}

  start(): void {
    const tick = () => {
      this.#timer = setTimeout(() => void this.sync().finally(() => !this.#stopped && tick()), this.o.everyMs ?? 2000);
      this.#timer.unref();
    };
    void this.sync().finally(tick);
  }

  /** One round now (after a network was made here, say); rounds never overlap. */
  sync(): Promise<void> {
    this.#running ??= this.#round().finally(() => (this.#running = undefined));
    return this.#running;
  }

  get plan(): OverlayPlan | undefined {
    return this.#plan;
  }

  /** The overlay's MTU (the underlay's less VXLAN's headers): what a stack network's containers get. */
  mtu(): number {
    return this.#plan?.device.mtu ?? (this.#underlayMtu ?? 1500) - OVERLAY_OVERHEAD;
  }

  /** The MTU of the interface holding this host's underlay address (undefined when none does: 1500 is assumed). */
  async #mtuOf(address: string): Promise<number | undefined> {
    try {
      const links = JSON.parse(await (this.o.exec ?? localExec)(["ip", "-j", "addr", "show"])) as Array<{ mtu?: number; addr_info?: Array<{ local?: string }> }>;
      return links.find((l) => l.addr_info?.some((a) => a.local === address))?.mtu;
    } catch {
      return undefined;
    }
  }

  async #round(): Promise<void> {
    let answer: NetworkAnswer;
    try {
      answer = await this.o.fetch();
    } catch (e) {
      this.o.log?.warn?.("stack networks: the control plane did not answer; keeping what the host has", { error: String(e) });
      return;
    }
    let plan: OverlayPlan;
    try {
      // looked up once (none found: 1500 is assumed), not at every round
      if (!this.#mtuLooked) {
        this.#underlayMtu = await this.#mtuOf(answer.view.me.underlay);
        this.#mtuLooked = true;
      }
      plan = overlayPlan({ ...answer.view, ...(this.#underlayMtu ? { mtu: this.#underlayMtu } : {}) });
      // the kernel is read (and mended) whenever the plan changes, and every reapplyMs for what else changed it; not
      // at every round: each reads the device, routes, neighbours and filters with a dozen ip and iptables runs
      const key = JSON.stringify(plan);
      const now = Date.now();
      if (key !== this.#applied?.key || now - this.#applied.at >= (this.o.reapplyMs ?? 30_000)) {
        const changes = await applyOverlay(plan, this.o.exec ?? localExec);
        this.#applied = { key, at: now };
        if (changes.device === "created" || changes.added.length > 0 || changes.removed.length > 0) {
          this.o.log?.info("stack networks", { device: changes.device, added: changes.added, removed: changes.removed });
        }
      }
    } catch (e) {
      this.o.log?.error("stack networks: the overlay could not be set up", { error: String(e) });
      return;
    }
    this.#plan = plan;
    for (const [stack, names] of Object.entries(answer.names)) this.#names.set(stack, new Map(Object.entries(names)));
    const wanted = new Map(plan.bridges.map((b) => [b.stack, b]));
    for (const [stack, l] of this.#listeners) {
      if (wanted.get(stack)?.gateway === l.gateway) continue;
      await l.listener.stop();
      this.#listeners.delete(stack);
      this.#names.delete(stack);
    }
    for (const b of plan.bridges) {
      if (this.#listeners.has(b.stack)) continue;
      const listener = new DnsListener({
        address: b.gateway,
        ...(this.o.dnsPort !== undefined ? { port: this.o.dnsPort } : {}),
        names: () => this.#names.get(b.stack) ?? new Map(),
        allowed: (source) => inSubnet(source, b.subnet),
        ...(this.o.log ? { log: this.o.log } : {}),
      });
      try {
        await listener.start();
        this.#listeners.set(b.stack, { listener, gateway: b.gateway });
      } catch (e) {
        // the stack's network is not made here yet (its gateway is not an address of this host): the next round
        await listener.stop().catch(() => {});
        if ((e as NodeJS.ErrnoException).code !== "EADDRNOTAVAIL") this.o.log?.warn?.("stack networks: no name server", { stack: b.stack, gateway: b.gateway, error: String(e) });
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running?.catch(() => {});
    for (const l of this.#listeners.values()) await l.listener.stop();
    this.#listeners.clear();
  }
}
