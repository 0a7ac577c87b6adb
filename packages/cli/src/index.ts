export { buildProgram, main, stackNameFromDir } from "./main.js";
export { ApiClient, CliError, clientConfig } from "./client.js";
