import { expect, it } from "vitest";
import { formatDuration, parseBytes, parseDuration } from "./units.js";

it("reads and writes durations as compose and Go do", () => {
  expect(parseDuration("1m30s")).toBe(90_000);
  expect(parseDuration("500ms")).toBe(500);
  expect(parseDuration("2h")).toBe(7_200_000);
  expect(parseDuration(10)).toBe(10_000);
  expect(parseDuration("ten")).toBeUndefined();
  expect(parseDuration("10x")).toBeUndefined();
  expect(formatDuration(60_000)).toBe("1m0s");
  expect(formatDuration(120_000)).toBe("2m0s");
  expect(formatDuration(10_000)).toBe("10s");
  expect(formatDuration(1_500)).toBe("1.5s");
  expect(formatDuration(3_723_000)).toBe("1h2m3s");
});

it("reads byte sizes in binary multiples", () => {
  expect(parseBytes("50M")).toBe(52_428_800);
  expect(parseBytes("20m")).toBe(20_971_520);
  expect(parseBytes("1gb")).toBe(1024 ** 3);
  expect(parseBytes(1024)).toBe(1024);
  expect(parseBytes("lots")).toBeUndefined();
});
