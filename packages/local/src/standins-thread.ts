/**
 * The embedded server's stand-ins (dynalite on LevelDB, fauxqs), run in a
 * worker thread of their own by startStandInsThread: what AWS runs
 * elsewhere runs beside the API and the controller here, not on their event
 * loop, so that a burst of store work does not hold up the API's answers.
 * Started with ThreadData; posts ThreadReply once both listen (or why they
 * could not), and stops them when told to.
 */
import { parentPort, workerData } from "node:worker_threads";
import { startDynamo, startQueues, type Listen, type StandIn } from "./standins.js";

/** What the thread is started with: where each stand-in listens, and where the table keeps its files. */
export interface ThreadData {
  dynamoPath: string;
  dynamo: Listen;
  queues: Listen;
}

/** Where a stand-in listens, as the thread tells it: a port on loopback, or a socket. */
export type Listening = { port: number } | { socket: string };

export type ThreadReply = { ready: { dynamo: Listening; queues: Listening } } | { failed: string } | { stopped: true };

const listening = (s: StandIn): Listening => (s.socketPath ? { socket: s.socketPath } : { port: Number(new URL(s.endpoint).port) });

const port = parentPort;
if (port) {
  const data = workerData as ThreadData;
  const reply = (m: ThreadReply) => port.postMessage(m);
  const started: StandIn[] = [];
  try {
    started.push(await startDynamo(data.dynamoPath, data.dynamo));
    started.push(await startQueues(data.queues));
    reply({ ready: { dynamo: listening(started[0]!), queues: listening(started[1]!) } });
  } catch (e) {
    await Promise.all(started.map((s) => s.stop().catch(() => {})));
    reply({ failed: e instanceof Error ? e.message : String(e) });
    port.close();
  }
  port.once("message", () => {
    void Promise.all(started.map((s) => s.stop().catch(() => {}))).then(() => {
      reply({ stopped: true });
      port.close();
    });
  });
}
