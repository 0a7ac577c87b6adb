import { createRequire } from "node:module";

/**
 * dynalite, with its storage errors answered instead of thrown.
 *
 * dynalite 4 throws any error of its LevelDB store that is not a DynamoDB
 * error (`if (err) throw err` in its request handler's callback): an
 * ENOSPC on a full disk, an I/O error, ends the whole process, the API and
 * the controller with it. Each of its action modules is wrapped here, before
 * dynalite loads them, so that such an error becomes the answer DynamoDB
 * gives for a fault of its own (500 InternalServerError, with the store's
 * message): the request fails, nothing is written (a LevelDB write is
 * atomic), and the server lives on to say so.
 */
const require = createRequire(import.meta.url);
const index = require.resolve("dynalite");
const fromDynalite = createRequire(index);

type Callback = (err: unknown, data?: unknown) => void;
type Action = (store: unknown, data: unknown, cb: Callback) => void;

const actions = [
  ...["batchGetItem", "batchWriteItem", "createTable", "deleteItem", "deleteTable", "describeTable", "describeTimeToLive", "getItem", "listTables"],
  ...["listTagsOfResource", "putItem", "query", "scan", "tagResource", "untagResource", "updateItem", "updateTable"],
];

if (!require.cache[index]) {
  for (const name of actions) {
    const path = fromDynalite.resolve(`./actions/${name}`);
    const action = fromDynalite(path) as Action;
    const cached = fromDynalite.cache[path];
    if (!cached) continue;
    cached.exports = function answered(store: unknown, data: unknown, cb: Callback) {
      action(store, data, (err, result) => {
        if (err && typeof err === "object" && !("statusCode" in err)) {
          const message = err instanceof Error ? err.message : String(err);
          return cb({ statusCode: 500, body: { __type: "com.amazonaws.dynamodb.v20120810#InternalServerError", message: `the store failed: ${message}` } });
        }
        cb(err, result);
      });
    };
  }
}

export const dynalite = require("dynalite") as typeof import("dynalite").default;
