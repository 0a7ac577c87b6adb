import { registryOf } from "./images.js";

const label = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
const serverPattern = new RegExp(`^(${label}(?:\\.${label})*)(?::(\\d{1,5}))?$`);

/** The longest registry server corral keeps credentials for (a DNS name and a port). */
export const MAX_REGISTRY_SERVER = 259;

/**
 * Why SERVER cannot be a registry's address, or undefined when it can: a
 * host with an optional port (no scheme, path, user or upper case), and one
 * an image reference can name, as Docker reads it (a dot, a port, or
 * localhost; a bare word is a Docker Hub user: `myhost/app` is docker.io's).
 */
export function registryServerProblem(server: string): string | undefined {
  const shown = JSON.stringify(server.slice(0, 80));
  if (server.length === 0) return "a registry server is required (host or host:port, e.g. registry.example.org:5000)";
  if (server.length > MAX_REGISTRY_SERVER) return `registry server ${shown}... is longer than ${MAX_REGISTRY_SERVER} characters`;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(server)) return `registry server ${shown}: give the host without a scheme (${server.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").split("/")[0]})`;
  if (server.includes("/")) return `registry server ${shown}: give the host[:port] only, without a path (images name it as SERVER/repo:tag)`;
  if (server !== server.toLowerCase()) return `registry server ${shown}: lower case only (an image reference names it in lower case)`;
  const m = serverPattern.exec(server);
  if (!m) return `registry server ${shown} is not host or host:port (letters, digits, '-' and '.', then an optional :PORT)`;
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return `registry server ${shown}: port ${port} is not 1-65535`;
  if (registryOf(`${server}/x`) !== server) {
    return `registry server ${shown}: an image ${server}/repo is Docker Hub's (${server} is a Docker Hub account); a registry's host has a dot or a port, or is localhost`;
  }
  return undefined;
}
