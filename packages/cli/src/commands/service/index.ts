import type { Command } from "commander";
import { verb, type Ctx } from "../context.js";
import { serviceCreateCommand } from "./create.js";
import { serviceInspectCommand } from "./inspect.js";
import { serviceLsCommand } from "./ls.js";
import { servicePsCommand } from "./ps.js";
import { serviceRmCommand } from "./rm.js";
import { serviceRollbackCommand } from "./rollback.js";
import { serviceScaleCommand } from "./scale.js";
import { serviceUpdateCommand } from "./update.js";

/**
 * `corral service ...`: Docker Swarm's service verbs on corral's stacks. A
 * service is named STACK/SERVICE, or NAME alone for the one-service stack
 * `service create --name NAME` makes (NAME/NAME).
 */
export function serviceCommand(ctx: Ctx): Command {
  const service = verb(ctx, "service").description("Docker Swarm's service verbs: create, update, rollback, inspect, ps, ls, scale, rm");
  for (const sub of [serviceCreateCommand, serviceUpdateCommand, serviceRollbackCommand, serviceInspectCommand, servicePsCommand, serviceLsCommand, serviceScaleCommand, serviceRmCommand]) {
    service.addCommand(sub(ctx));
  }
  return service;
}
