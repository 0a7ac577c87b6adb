/**
 * Fault injection, for the fault suite (test/faults/): with
 * CORRAL_FAULT_KILL=POINT the agent SIGKILLs itself when a step reaches that
 * point, as a power cut would, and whoever started it starts it again
 * without the variable. POINT is `before:ACTION` (the step taken, nothing
 * done), `after:ACTION` (done on the engine, not reported), or
 * `health:SERVICE` (a container of SERVICE started, its health check not
 * yet passed). An operator never
 * sets it; a value that names no point does nothing.
 */
const wanted = (process.env.CORRAL_FAULT_KILL ?? "").slice(0, 40);

export function faultPoint(point: string): void {
  if (wanted !== "" && wanted === point) process.kill(process.pid, "SIGKILL");
}
