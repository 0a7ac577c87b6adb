import { decide, type Command } from "./decide/index.js";
import { VersionConflictError } from "./errors.js";
import type { StackEvent } from "./events.js";
import { Draft, type StackState } from "./state.js";

/**
 * The event log of stacks, as a command handler needs it: the state of a
 * stack (folded, with its version) and a conditional append. The DynamoDB
 * EventStore implements it; a test, a few lines over an array.
 */
export interface EventLog {
  load(stack: string): Promise<StackState>;
  /** Append `events` as version `expectedVersion + 1`; throws VersionConflictError when another append took it. */
  append(stack: string, expectedVersion: number, events: StackEvent[], cause: string): Promise<{ version: number }>;
}

/** What a decision made of commands: its events, and the state they lead to. */
export interface Decision {
  events: StackEvent[];
  after: StackState;
}

/** The decider over several commands: each decided on the state the ones before it left. */
export function decideAll(commands: Command[], state: StackState): Decision {
  const draft = new Draft(state);
  const events: StackEvent[] = [];
  for (const command of commands) {
    const produced = decide(command, draft.state);
    draft.applyAll(produced);
    events.push(...produced);
  }
  return { events, after: draft.state };
}

export interface HandleOptions {
  /** How many times the stack is loaded and decided before a conflicting append is given up (default 6); then the last VersionConflictError is thrown. */
  maxAttempts?: number;
  /** Who the commit says wrote it (default: the commands' types). */
  cause?: string;
  /** How the commands are decided (default decideAll); an error it throws is thrown as it is, never retried. */
  decide?: (commands: Command[], state: StackState) => Decision;
}

export interface Handled {
  /** The state the decision was made on. */
  state: StackState;
  /** The state after its events. */
  after: StackState;
  events: StackEvent[];
  /** The stack's version after the append (the state's own when nothing was decided: nothing is appended). */
  version: number;
}

const DEFAULT_MAX_ATTEMPTS = 6;

/**
 * Load, decide, append: the one way a command changes a stack. `make` gives
 * the command (or commands) for the state as loaded; when another writer
 * appended meanwhile, the stack is loaded and decided again, up to
 * `maxAttempts` times. What follows a successful append (waking the
 * controller, sending steps) is the caller's.
 */
export async function handleCommand(log: EventLog, stack: string, make: (state: StackState) => Command | Command[], options: HandleOptions = {}): Promise<Handled> {
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const decision = options.decide ?? decideAll;
  for (let attempt = 1; ; attempt++) {
    const state = await log.load(stack);
    const commands = [make(state)].flat();
    const { events, after } = decision(commands, state);
    if (events.length === 0) return { state, after: state, events, version: state.version };
    try {
      const { version } = await log.append(stack, state.version, events, options.cause ?? commands.map((c) => c.type).join(", "));
      return { state, after, events, version };
    } catch (e) {
      if (!(e instanceof VersionConflictError) || attempt >= maxAttempts) throw e;
    }
  }
}
