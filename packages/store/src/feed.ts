import { EventEmitter } from "node:events";

/**
 * In-process wake-ups for readers waiting on a stack's log (long-polls).
 * Only a hint: a waiter always re-reads the store, and times out into a read,
 * so a change made by another process is still seen.
 */
/** The event every change is told under, with the stack's name: no stack's name can be it. */
const ANY_STACK = Symbol("any stack");

export class ChangeFeed {
  readonly #emitter = new EventEmitter().setMaxListeners(0);
  #closed = false;

  /** True once the server is stopping: waiters return at once and read no more. */
  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    this.#closed = true;
    this.#emitter.emit("*");
    for (const name of this.#emitter.eventNames()) this.#emitter.emit(name);
  }

  changed(stack: string): void {
    this.#emitter.emit(stack);
    this.#emitter.emit("*");
    this.#emitter.emit(ANY_STACK, stack);
  }

  /** Calls `fn` with the name of every stack that changes from now on, until the function it returns is called. */
  onChange(fn: (stack: string) => void): () => void {
    this.#emitter.on(ANY_STACK, fn);
    return () => this.#emitter.off(ANY_STACK, fn);
  }

  /** Resolves on the next change of `stack` ("*" for any), or after `ms`. */
  wait(stack: string, ms: number, signal?: AbortSignal): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#emitter.off(stack, done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#emitter.once(stack, done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}
