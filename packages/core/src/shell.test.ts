import { expect, it } from "vitest";
import { splitCommand } from "./shell.js";

it("splits shell words with quotes and escapes", () => {
  expect(splitCommand(`sh -c "echo \\"hi\\" > /tmp/x" 'a  b' c\\ d ""`)).toEqual(["sh", "-c", 'echo "hi" > /tmp/x', "a  b", "c d", ""]);
  expect(() => splitCommand(`echo "open`)).toThrow(/unterminated/);
});
