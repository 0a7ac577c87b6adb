const op = (summary: string, extra: Record<string, unknown> = {}) => ({ summary, responses: { default: { description: "JSON; errors as {error, message, path?}" } }, ...extra });
const stack = { name: "stack", in: "path", required: true, schema: { type: "string" } };

/** The API's description, served at /openapi.json. */
export const openapi = {
  openapi: "3.1.0",
  info: { title: "corral", version: "0.1.0", description: "Docker Compose stacks on a fleet of hosts. Bearer tokens; Idempotency-Key honoured on every POST and DELETE." },
  components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
  security: [{ bearer: [] }],
  paths: {
    "/healthz": { get: op("liveness", { security: [] }) },
    "/v1/stacks": { get: op("list stacks") },
    "/v1/stacks/{stack}": { get: op("a stack: services, containers, operation", { parameters: [stack] }), delete: op("remove a stack and its containers", { parameters: [stack] }) },
    "/v1/stacks/{stack}/up": {
      post: op("bring up or upgrade a stack from compose documents: {files: [{name, document}], rancher?, upgrade?, forceUpgrade?, confirmUpgrade?, rollback?, toRevision?, batchSize?, intervalMs?, startFirst?, autoConfirmMs?, dryRun?}", { parameters: [stack] }),
    },
    "/v1/stacks/{stack}/render": { post: op("what corral understood of compose documents, and every policy violation; writes nothing", { parameters: [stack] }) },
    "/v1/stacks/{stack}/export": { get: op("the current revision as docker-compose.yml and rancher-compose.yml", { parameters: [stack] }) },
    "/v1/stacks/{stack}/history": { get: op("revisions: number, time, who, source, changed services and keys", { parameters: [stack] }) },
    "/v1/secrets": { get: op("secrets: name, versions, owner, group, created (never values)") },
    "/v1/secrets/{name}": { post: op("create a secret or a new version: {value: base64}"), delete: op("remove a secret (refused while a running container uses it)") },
    "/v1/hosts/{id}/secrets/{name}": { get: op("a secret's value, for the host creating a container that mounts it (the host's own token)") },
    "/v1/stacks/{stack}/events": { get: op("the stack's events after ?after=VERSION; ?wait=SECONDS long-polls", { parameters: [stack] }) },
    "/v1/services": { get: op("every service: id type name image state scale endpoints detail") },
    "/v1/containers": { get: op("every container: id name image state host ip docker") },
    "/v1/hosts": { get: op("hosts and their heartbeats") },
    "/v1/hosts/{id}/register": { post: op("an agent registers its host and learns its queue") },
    "/v1/hosts/{id}/heartbeat": { post: op("an agent's heartbeat") },
  },
} as const;
