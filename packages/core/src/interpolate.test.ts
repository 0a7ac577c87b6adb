import { describe, expect, it } from "vitest";
import { ComposeError } from "./compose.js";
import { parseDotenv } from "./dotenv.js";
import { interpolate, interpolateString } from "./interpolate.js";

const env: Record<string, string> = { TAG: "1.2", EMPTY: "", HOST: "db" };
const run = (text: string) => interpolateString(text, (n) => env[n], "docker-compose.yml", "services.web.image");

describe("interpolation", () => {
  it.each([
    ["app:${TAG}", "app:1.2"],
    ["app:$TAG", "app:1.2"],
    ["app:${MISSING}", "app:"],
    ["${MISSING:-latest}", "latest"],
    ["${EMPTY:-latest}", "latest"],
    ["${EMPTY-latest}", ""],
    ["${MISSING-latest}", "latest"],
    ["${TAG:+set}", "set"],
    ["${MISSING:+set}", ""],
    ["${MISSING:-${HOST}:5432}", "db:5432"],
    ["cost $$5 and $${TAG}", "cost $5 and ${TAG}"],
    ["${TAG:?tag is required}", "1.2"],
    ["no variables", "no variables"],
  ])("%s → %s", (input, expected) => {
    expect(run(input)).toBe(expected);
  });

  it.each([
    ["${MISSING:?set TAG first}", "docker-compose.yml: services.web.image: required variable MISSING is missing a value: set TAG first"],
    ["${EMPTY:?}", "docker-compose.yml: services.web.image: required variable EMPTY is missing a value"],
    ["${MISSING?}", "docker-compose.yml: services.web.image: required variable MISSING is missing a value"],
    ["${TAG", 'docker-compose.yml: services.web.image: invalid interpolation format for "${TAG": unterminated ${'],
    ["${}", 'docker-compose.yml: services.web.image: invalid interpolation format for "${}": "${}" needs a variable name'],
    ["price: $5", 'docker-compose.yml: services.web.image: invalid interpolation format for "price: $5": a lone "$" (write "$$" for a literal "$")'],
  ])("%s is refused", (input, message) => {
    expect(() => run(input)).toThrow(ComposeError);
    expect(() => run(input)).toThrow(message);
  });

  it("interpolates every string value of a document and names the path of a failure", () => {
    const doc = { services: { web: { image: "app:${TAG}", ports: ["${PORT:-60000}:80"], environment: { DB: "$HOST" } } } };
    expect(interpolate(doc, (n) => env[n], "f.yml")).toEqual({ services: { web: { image: "app:1.2", ports: ["60000:80"], environment: { DB: "db" } } } });
    expect(() => interpolate({ services: { web: { ports: ["${P:?}"] } } }, () => undefined, "f.yml")).toThrow("f.yml: services.web.ports.0: required variable P is missing a value");
  });
});

describe(".env files", () => {
  it("reads KEY=VALUE lines, comments, export, and quotes", () => {
    const text = `# comment\nexport A=1\nB = two words # trailing comment\nC='single $quoted'\nD="line\\nbreak \\"q\\""\nE=\nBARE\n`;
    expect(parseDotenv(text, ".env")).toEqual({ A: "1", B: "two words", C: "single $quoted", D: 'line\nbreak "q"', E: "" });
  });
  it("names the line of a malformed entry", () => {
    expect(() => parseDotenv("A=1\n=nothing\n", ".env")).toThrow(".env: line 2: expected KEY=VALUE");
  });
});
