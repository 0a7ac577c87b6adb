/**
 * Fault injection, for the fault suite (test/faults/): with
 * CORRAL_FAULT_KILL=POINT a process SIGKILLs itself when it reaches that
 * point, as a power cut would, and whoever started it starts it again
 * without the variable. An operator never sets it; a value that names no
 * point does nothing. The points:
 *
 * - an agent's: `before:ACTION` (a step taken, nothing done), `after:ACTION`
 *   (done on the engine, not reported), `health:SERVICE` (a container of
 *   SERVICE started, its health check not yet passed);
 * - the API's: `after:accept` (a command's events written, the controller
 *   not yet woken, the caller not yet answered);
 * - the controller's: `after:commit` (a decision's events written, its steps
 *   not yet sent to the hosts' queues).
 */
const wanted = (process.env.CORRAL_FAULT_KILL ?? "").slice(0, 40);

export function faultPoint(point: string): void {
  if (wanted !== "" && wanted === point) process.kill(process.pid, "SIGKILL");
}
