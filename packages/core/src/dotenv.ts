import { ComposeError } from "./compose.js";

/**
 * A `.env` / `env_file` file: `KEY=VALUE` lines, `#` comments, optional
 * `export `, single quotes (literal), double quotes (with \n, \", \\).
 */
export function parseDotenv(text: string, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const m = /^(?:export\s+)?([^=\s]+)\s*(?:=\s*(.*))?$/.exec(line);
    if (!m) throw new ComposeError(file, `line ${index + 1}`, `expected KEY=VALUE, got "${line}"`);
    const key = m[1]!;
    let value = m[2];
    if (value === undefined) return; // a bare KEY: nothing to set
    if (value.startsWith("'")) {
      const end = value.indexOf("'", 1);
      value = end > 0 ? value.slice(1, end) : value.slice(1);
    } else if (value.startsWith('"')) {
      let v = "";
      let i = 1;
      for (; i < value.length && value[i] !== '"'; i++) {
        if (value[i] === "\\" && i + 1 < value.length) {
          const n = value[++i]!;
          v += n === "n" ? "\n" : n === "t" ? "\t" : n;
        } else v += value[i];
      }
      value = v;
    } else {
      value = value.replace(/\s+#.*$/, "").trim();
    }
    out[key] = value;
  });
  return out;
}
