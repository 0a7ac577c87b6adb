import { Option, type Command } from "commander";
import type { ServicePatch } from "@corral/core";
import { splitCommand } from "@corral/core/light";
import { CliError } from "../../client.js";
import { many } from "../flags.js";

// The flags a service patch is made of and their mapping to the patch: create adds, update adds and removes.

/** The options commander parsed from the patch flags. */
export type PatchOptions = Record<string, string | string[] | number | boolean | undefined>;

const count = (flag: string) => (v: string) => {
  if (!/^\d{1,5}$/.test(v)) throw new CliError(`${flag}: expected a whole number, got "${v}"`);
  return Number(v);
};

/** The flags a patch is made of, shared by create (adding) and update (adding and removing). */
export function patchFlags(cmd: Command, kind: "create" | "update"): Command {
  const add = kind === "create" ? "" : "-add";
  const publishHelp = "publish a port: PUBLISHED:TARGET, TARGET (a free port from the site's range) or published=,target=,protocol=,mode= (repeatable)";
  cmd
    .option(`--env${add} <K=V>`, "set an environment variable (repeatable)", many)
    .option(`--publish${add} <[P:]T[/proto]>`, publishHelp, many)
    .option(`--secret${add} <S>`, "mount a secret at /run/secrets: NAME or source=NAME,target=,uid=,gid=,mode= (repeatable)", many)
    .option(`--mount${add} <M>`, "mount: type=volume|bind|tmpfs,source=,target=[,readonly] (repeatable)", many)
    .option(`--constraint${add} <C>`, "placement constraint, e.g. node.labels.zone==front (repeatable)", many)
    .option(`--label${add} <K=V>`, "service label (repeatable)", many)
    .option(`--container-label${add} <K=V>`, "container label (repeatable)", many)
    .option("--cap-add <cap>", "add a capability (the site's policy says which; repeatable)", many)
    .option("--cap-drop <cap>", "drop a capability (repeatable; every service drops ALL by default)", many)
    .option("--replicas <n>", "number of containers", count("--replicas"))
    .option("--user <user>", "user[:group] the containers run as")
    .option("--health-cmd <cmd>", "health check command (run by the container's shell)")
    .option("--health-interval <d>", "time between checks (e.g. 5s)")
    .option("--health-timeout <d>", "longest a check may run")
    .option("--health-retries <n>", "failures in a row that make the container unhealthy", count("--health-retries"))
    .option("--health-start-period <d>", "time to start before failures count")
    .option("--no-healthcheck", "disable the image's health check")
    .option("--update-parallelism <n>", "containers updated at once (0: all)", count("--update-parallelism"))
    .option("--update-delay <d>", "pause between batches (e.g. 10s)")
    .addOption(new Option("--update-failure-action <a>", "what a failed update does").choices(["pause", "continue", "rollback"]))
    .addOption(new Option("--update-order <o>", "stop the old container first, or start the new one first").choices(["stop-first", "start-first"]))
    .option("--update-monitor <d>", "how long a new container must run to count as updated")
    .option("-d, --detach", "return at once instead of following the rollout to its end");
  if (kind === "update") {
    cmd
      .option("--image <image>", "the service's image")
      .option("--args <args>", "the command and its arguments, as one string split as a shell splits words")
      .option("--env-rm <K>", "remove an environment variable (repeatable)", many)
      .option("--publish-rm <[P:]T[/proto]>", "remove a published port (repeatable)", many)
      .option("--secret-rm <S>", "unmount a secret (repeatable)", many)
      .option("--mount-rm <target>", "remove the mount at this path (repeatable)", many)
      .option("--constraint-rm <C>", "remove a placement constraint (repeatable)", many)
      .option("--label-rm <K>", "remove a service label (repeatable)", many)
      .option("--container-label-rm <K>", "remove a container label (repeatable)", many)
      .option("--force", "roll the service out again even when nothing changed")
      .option("--dry-run", "print what the update would do; change nothing");
  } else {
    cmd.addOption(new Option("--mode <mode>", "replicated (a number of containers) or global (one per host)").choices(["replicated", "global"]));
  }
  return cmd;
}

/** The patch the flags given make; a flag not given is no key. */
export function toPatch(o: PatchOptions, kind: "create" | "update"): ServicePatch {
  const add = (name: string) => (kind === "create" ? name : `${name}Add`);
  const pick = <T>(k: string) => o[k] as T | undefined;
  const patch: Record<string, unknown> = {
    envAdd: pick(add("env")),
    publishAdd: pick(add("publish")),
    secretAdd: pick(add("secret")),
    mountAdd: pick(add("mount")),
    constraintAdd: pick(add("constraint")),
    labelAdd: pick(add("label")),
    containerLabelAdd: pick(add("containerLabel")),
    envRm: pick("envRm"),
    publishRm: pick("publishRm"),
    secretRm: pick("secretRm"),
    mountRm: pick("mountRm"),
    constraintRm: pick("constraintRm"),
    labelRm: pick("labelRm"),
    containerLabelRm: pick("containerLabelRm"),
    image: pick("image"),
    replicas: pick("replicas"),
    mode: pick("mode"),
    user: pick("user"),
    healthCmd: pick("healthCmd"),
    healthInterval: pick("healthInterval"),
    healthTimeout: pick("healthTimeout"),
    healthRetries: pick("healthRetries"),
    healthStartPeriod: pick("healthStartPeriod"),
    // commander's --no-healthcheck: `healthcheck: false`
    noHealthcheck: o.healthcheck === false ? true : undefined,
    updateParallelism: pick("updateParallelism"),
    updateDelay: pick("updateDelay"),
    updateFailureAction: pick("updateFailureAction"),
    updateOrder: pick("updateOrder"),
    updateMonitor: pick("updateMonitor"),
    args: typeof o.args === "string" ? splitCommand(o.args) : undefined,
    capAdd: pick("capAdd"),
    capDrop: pick("capDrop"),
  };
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as ServicePatch;
}

/** STACK/SERVICE, or NAME for NAME/NAME. */
export function serviceTarget(name: string): [string, string] {
  const [stack, svc, extra] = name.split("/");
  if (!stack || svc === "" || extra !== undefined) throw new CliError(`${name}: expected STACK/SERVICE (or NAME, for the stack 'service create --name NAME' made)`);
  return [stack, svc ?? stack];
}
