// Ctrl-C and SIGTERM, for the verbs that run until interrupted.

/** Ctrl-C ends a follow (or an exec) by cancelling its session: the host stops sending. */
export function interrupted(): AbortSignal {
  const ctl = new AbortController();
  process.once("SIGINT", () => ctl.abort());
  return ctl.signal;
}

/**
 * Ctrl-C or SIGTERM: resolves, and the caller stops cleanly. Another one while it stops ends the process at
 * once, unless it comes within a second of the first: Ctrl-C under `npm start` reaches the server both from
 * the terminal and forwarded by npm, and that is one Ctrl-C.
 */
export function waitForSignal(): Promise<void> {
  return new Promise((resolve) => {
    let first: number | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      if (first !== undefined && Date.now() - first > 1000) process.exit(signal === "SIGINT" ? 130 : 143);
      first ??= Date.now();
      resolve();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}
