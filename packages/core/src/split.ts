import type { StackEvent, StackEventType } from "./events.js";

/** A decision's events do not fit in commits of the store's size: a part that cannot be cut is larger than one commit. */
export class CommitTooLargeError extends Error {
  override name = "CommitTooLargeError";
  constructor(
    readonly bytes: number,
    readonly maxBytes: number,
    readonly eventType: StackEventType,
  ) {
    super(`a ${eventType} event of ${bytes} bytes does not fit in a commit of at most ${maxBytes} bytes`);
  }
}

/**
 * Events a decision emits by the thousand, one per step. Between two of one
 * kind a decision may be cut into two commits, because the state in between
 * is one the decider completes by itself, without doing anything twice:
 * - StepPlanned: a plan's WavePlanned mark follows its steps, so a plan cut
 *   short leaves its wave unplanned; the next advance (the reconcile tick's
 *   Plan and Tick, or a report) plans it again and skips the steps already
 *   planned (deterministic ids).
 * - StepResent: the steps not re-sent yet are still late; the tick re-sends them.
 * - StepFailed: what still waits on a failed step is skipped by the next advance.
 */
const cuttable = new Set<StackEventType>(["StepPlanned", "StepResent", "StepFailed"]);

/** UTF-8 length of a string, as the store counts it. */
export function utf8Bytes(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4; // a surrogate pair: one code point of four bytes
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Split a decision's events into commits of at most `maxBytes` each (the
 * events as JSON, as the store writes them), in order, cutting only between
 * two cuttable events of one kind. One commit when they fit. Pure.
 */
export function splitEvents(events: StackEvent[], maxBytes: number): StackEvent[][] {
  const commits: StackEvent[][] = [];
  let current: StackEvent[] = [];
  let size = 1; // "[", then each event with the "," or "]" after it
  // the events since the last place a cut may fall, and their size
  let tail: StackEvent[] = [];
  let tailSize = 0;
  const flush = () => {
    if (current.length > 0) commits.push(current);
    current = [];
    size = 1;
  };
  const place = () => {
    if (tail.length === 0) return;
    if (1 + tailSize > maxBytes) {
      const biggest = tail.reduce((a, b) => (utf8Bytes(JSON.stringify(a)) >= utf8Bytes(JSON.stringify(b)) ? a : b));
      throw new CommitTooLargeError(1 + tailSize, maxBytes, biggest.type);
    }
    if (size + tailSize > maxBytes) flush();
    current.push(...tail);
    size += tailSize;
    tail = [];
    tailSize = 0;
  };
  let previous: StackEvent | undefined;
  for (const event of events) {
    // a cut may fall before this event only inside a run of one cuttable kind
    if (previous?.type === event.type && cuttable.has(event.type)) place();
    tail.push(event);
    tailSize += utf8Bytes(JSON.stringify(event)) + 1;
    previous = event;
  }
  place();
  flush();
  return commits;
}
