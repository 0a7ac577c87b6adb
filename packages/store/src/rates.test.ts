import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDynamo, type StandIn } from "@corral/local";
import { dynamoClient, ensureTable, MemoryRates, RateStore } from "./index.js";

let dynamo: StandIn;
let db: ReturnType<typeof dynamoClient>;
beforeAll(async () => {
  dynamo = await startDynamo();
  db = dynamoClient({ endpoint: dynamo.endpoint, table: "corral-rates" });
  await ensureTable(db, "corral-rates");
});
afterAll(() => dynamo.stop());

// the table's counts (every Lambda instance counting together) and the embedded server's in memory count alike
describe.each([
  ["in the table", (clock: () => number) => new RateStore(db, "corral-rates", clock)],
  ["in memory", (clock: () => number) => new MemoryRates(clock)],
])("request counts %s", (_where, make) => {
  it("take `limit` in a window, refuse the next with the time to the next window, count each scope and window apart", async () => {
    let now = 60_000 * 1000 + 15_000;
    const rates = make(() => now);
    const scope = `s${Math.random()}`;
    for (let i = 0; i < 3; i++) expect(await rates.take(scope, 3, 60_000)).toEqual({ ok: true });
    expect(await rates.take(scope, 3, 60_000)).toEqual({ ok: false, retryAfterMs: 45_000 });
    expect(await rates.take(`${scope}-other`, 3, 60_000)).toEqual({ ok: true });
    now += 45_000;
    expect(await rates.take(scope, 3, 60_000)).toEqual({ ok: true });
  });
});
