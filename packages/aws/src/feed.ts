import { ChangeFeed } from "@corral/store";

/**
 * The change feed of a process that sees few of the writes: a Lambda
 * instance serves one request at a time, and the append a long-poll waits
 * for is made by another. A wait is only ever a hint (waiters re-read the
 * store when it ends): here it ends after at most `pollMs`, so a long-poll
 * or an event stream reads the table that often, whoever wrote.
 */
export class PollingFeed extends ChangeFeed {
  constructor(readonly pollMs = 1000) {
    super();
  }

  override wait(stack: string, ms: number, signal?: AbortSignal): Promise<void> {
    return super.wait(stack, Math.max(0, Math.min(ms, this.pollMs)), signal);
  }
}
