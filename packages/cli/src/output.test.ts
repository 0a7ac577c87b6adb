import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { drawTable, plainTable } from "./output.js";

describe("tables", () => {
  it("plainTable draws what cli-table3 draws, for any table of printable ASCII", async () => {
    const cell = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 12 });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.array(fc.array(cell, { minLength: 6, maxLength: 6 }), { maxLength: 8 }), fc.array(cell, { minLength: 6, maxLength: 6 }), async (n, rows, head) => {
        const h = head.slice(0, n);
        const r = rows.map((x) => x.slice(0, n));
        expect(plainTable(h, r)).toBe(await drawTable(h, r));
      }),
      { numRuns: 300 },
    );
  });

  it("leaves cli-table3 what it must measure: wide characters, line breaks, escapes", async () => {
    for (const odd of ["日本", "e\u0301", "a\nb", "\u001b[31mred\u001b[0m", "tab\there"]) expect(plainTable(["NAME"], [[odd]])).toBeUndefined();
    expect(await drawTable(["NAME", "X"], [["日本", "1"]])).toBe("NAME  X\n日本  1");
  });
});
