/**
 * The embedded server's stand-ins (dynalite on LevelDB, fauxqs), run in a
 * worker thread of their own by startStandInsThread: what AWS runs
 * elsewhere runs beside the API and the controller here, not on their event
 * loop, so that a burst of store work does not hold up the API's answers.
 * Started with ThreadData; posts ThreadReply once both listen (or why they
 * could not), and stops them, and ends, when told to.
 */
import { parentPort, workerData } from "node:worker_threads";
import { startDynamo, startQueues, type Listen, type Listening, type StandIn } from "./standins.js";

/** What the thread is started with: where each stand-in listens, and where the table keeps its files. */
export interface ThreadData {
  dynamoPath: string;
  dynamo: Listen;
  queues: Listen;
}

/** What the thread says once, when it starts: where both listen, or why they could not. */
export type ThreadReply = { ready: { dynamo: Listening; queues: Listening } } | { failed: string };

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
  // told to stop: both close, and so does the port; the thread then ends, which is what its owner waits for
  port.once("message", () => {
    void Promise.all(started.map((s) => s.stop().catch(() => {}))).then(() => port.close());
  });
}
