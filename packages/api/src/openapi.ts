import { zodToJsonSchema } from "zod-to-json-schema";
import { ZodObject, type ZodTypeAny } from "zod";
import { described } from "./query.js";

const op = (summary: string, extra: Record<string, unknown> = {}) => ({ summary, responses: { default: { description: "JSON; errors as {error, message, path?}" } }, ...extra });

/**
 * What the routes do, in words: the summaries of GET /openapi.json. The
 * document itself is made from the mounted app (openapiFor): its routes,
 * their path parameters, and the zod schemas their query and body
 * validators check with, so it cannot drift from what the API takes.
 */
export const openapi = {
  openapi: "3.1.0",
  info: { title: "corral", version: "0.1.0", description:
      "Docker Compose stacks on a fleet of hosts. Bearer tokens; Idempotency-Key honoured on every POST and DELETE " +
      "(an answer that held a token is not kept: a repeat answers 409 not_replayable). " +
      "Bounds: every query parameter is checked and an unknown one refused (400 naming it); bodies are limited by route " +
      "(413 too_large: 1 MiB for up/render and secrets, 8 MiB for an agent's chunks, 512 KiB for exec input, 64 KiB else); ?wait= is at most 30 seconds; " +
      "a token holds at most 8 follows at once (long-polls with ?wait, ?follow=1 streams; 429 too_many_requests with Retry-After), " +
      "and makes at most 300 changes (POST, PUT, DELETE) a minute (429 with Retry-After). " +
      "Secrets are named SERVICE.STACK.FILE and volumes SERVICE.STACK: a name is the stack's owner's.",
  },
  components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
  security: [{ bearer: [] }],
  paths: {
    "/healthz": { get: op("liveness", { security: [] }) },
    "/openapi.json": { get: op("this document, made from the routes and the schemas they validate with", { security: [] }) },
    "/v1/stacks": { get: op("list stacks: name state services revision owner"), post: op("create an empty stack: {name}") },
    "/v1/stacks/{stack}": { get: op("a stack: services, containers, operation"), delete: op("remove a stack and its containers") },
    "/v1/stacks/{stack}/up": {
      post: op(
        "bring up or upgrade a stack from compose documents: {files: [{name, document}], rancher?, upgrade?, forceUpgrade?, confirmUpgrade?, rollback?, toRevision?, " +
          "batchSize?, intervalMs?, startFirst?, autoConfirmMs?, dryRun?}"
      ),
    },
    "/v1/stacks/{stack}/render": { post: op("what corral understood of compose documents, and every policy violation; writes nothing") },
    "/v1/stacks/{stack}/export": { get: op("the current revision as docker-compose.yml and rancher-compose.yml") },
    "/v1/stacks/{stack}/history": {
      get: op(
        "{stack, lives: [{life, current, removed, rows: [{revision, current, time, by, source, changed, rollback}]}]}: what changed what runs (revisions committed, rollbacks) in the current " +
          "life of the stack; all=1: every earlier life too (a stack removed and made again starts at revision 1)"
      ),
    },
    "/v1/secrets": { get: op("secrets: name, versions, owner, group, created (never values)") },
    "/v1/secrets/{name}": { post: op("create a secret or a new version: {value: base64}"), delete: op("remove a secret (refused while a running container uses it)") },
    "/v1/registries": {
      get: op("registry logins the caller may see (theirs, their groups'): server username owner group created updated, never a password"),
      post: op("add or replace the caller's login: {server: host[:port], username, password}"),
    },
    "/v1/registries/{server}": { delete: op("remove the caller's login for a registry (?owner=USER: a group member's; the admin: anyone's)") },
    "/v1/hosts/{id}/registry-auth": {
      get: op("?stack=&step=&server=: the stack owner's login for a registry, for the host pulling that step's image (the host's own token); {reported: true} once it reported that pull"),
    },
    "/v1/hosts/{id}/secrets/{name}": { get: op("a secret's value, for the host creating a container that mounts it (the host's own token)") },
    "/v1/stacks/{stack}/events": { get: op("the stack's events after ?after=VERSION; ?wait=SECONDS long-polls") },
    "/v1/services": { get: op("every service: id type name image state scale endpoints detail"), post: op("service create: {name, stack?, patch: {image, ...Docker's flags}, dryRun?}") },
    "/v1/containers": { get: op("every container: id name image state host ip docker") },
    "/v1/stacks/{stack}/scale": { post: op("set services' number of containers: {scales: {SERVICE: N}}; not a new revision") },
    "/v1/stacks/{stack}/stop": { post: op("stop containers: {services?}") },
    "/v1/stacks/{stack}/start": { post: op("start stopped containers: {services?}") },
    "/v1/stacks/{stack}/restart": { post: op("restart containers in batches: {services?, batchSize?, intervalMs?}") },
    "/v1/stacks/{stack}/services/{service}": {
      delete: op("remove a service from a stack (a new revision)"),
    },
    "/v1/containers/{name}": { delete: op("remove one container; its slot is made anew unless scaled down") },
    "/v1/inspect": { get: op("?target=STACK|STACK/SERVICE|CONTAINER: one object with state, health, revision, image, scale, containers, fqdn, publicEndpoints, config") },
    "/v1/events": { get: op("server-sent events: the event log of ?stack= (or of every stack the caller may see), ?since=epoch-ms|ISO, ?follow=1 stays open") },
    "/v1/sessions": { post: op("open a logs or exec session: {type: logs, target, follow?, tail?, since?, timestamps?} | {type: exec, target, cmd, slot?}; answers {id, containers}") },
    "/v1/sessions/{id}": {
      get: op("a session's output after ?cursor= (long-polls with ?wait=SECONDS): {chunks: [{container, stream, data: base64}], cursor, done, exitCode?}"),
      delete: op("cancel a session (Ctrl-C)"),
    },
    "/v1/sessions/{id}/input": { post: op("exec -i: input for the command's stdin, in order: {seq, data: base64, eof?}") },
    "/v1/hosts/{id}/sessions/{sid}/input": { get: op("an agent long-polls an interactive exec's input after ?after=SEQ (its host token)") },
    "/v1/hosts/{id}/sessions/{sid}/chunks": {
      post: op("an agent posts a session's output under its host token: {chunks: [{seq, container, stream, data}], end?: {exitCode?, error?}}; answers {cancelled}"),
    },
    "/v1/volumes": { get: op("volumes: id name state driver detail"), post: op("create a volume: {name, driver: local|nfs, opts}") },
    "/v1/volumes/{name}": { delete: op("remove a volume (refused while in use)") },
    "/v1/users": { get: op("users (admin)"), post: op("create a user: {name, groups}; answers the token once (admin)") },
    "/v1/users/{name}": { delete: op("remove a user; their token stops working (admin)") },
    "/v1/users/{name}/token": { post: op("a new token for a user, answered once; the old one stops working (admin)") },
    "/v1/hosts": { get: op("hosts: {id, name, state (active|draining|inactive|disconnected)}, and for the admin address, labels, containers, lastSeen, engine") },
    "/v1/hosts/{id}": { delete: op("remove a host (the admin's): refused while a stack has a container on it; ?force=1 for a draining or inactive host; its token, key and queue stop working") },
    "/v1/hosts/{id}/join": {
      post: op(
        "a one-time join token for host {id}, good for an hour (the admin's): {labels?} -> {id, token, expiresAt, rejoin}; for a registered host a token to join it again (labels refused: use " +
          "/labels)",
      ),
    },
    "/v1/hosts/{id}/labels": { post: op("set and remove a host's labels (the admin's): {set: {KEY: VALUE}, remove: [KEY]}; io.corral.* keys are refused") },
    "/v1/hosts/{id}/drain": { post: op("drain a host (the admin's): no new container lands on it") },
    "/v1/hosts/{id}/deactivate": { post: op("deactivate a host (the admin's): no new container lands on it") },
    "/v1/hosts/{id}/activate": { post: op("return a draining or inactive host to active (the admin's)") },
    "/v1/hosts/{id}/register": {
      post: op(
        "an agent registers its host: {engine, address? (an IP), publicKey (Ed25519 SPKI DER, base64)} with the admin's token, a join token for {id}, or the host's current token; answers its " +
          "queue, its new host token, the control plane's public key and heartbeatMs",
      ),
    },
    "/v1/hosts/{id}/heartbeat": { post: op("an agent's heartbeat") },
    "/v1/stacks/{stack}/services/{service}/update": {
      post: op(
        "service update: {patch: {image?, envAdd?, envRm?, publishAdd?, publishRm?, secretAdd?, secretRm?, mountAdd?, mountRm?, constraintAdd?, constraintRm?, labelAdd?, labelRm?, " +
          "containerLabelAdd?, containerLabelRm?, capAdd?, capDrop?, replicas?, user?, healthCmd?, healthInterval?, healthTimeout?, healthRetries?, healthStartPeriod?, noHealthcheck?, " +
          "updateParallelism?, updateDelay?, updateFailureAction?, updateOrder?, updateMonitor?, updateMaxFailureRatio?}, force?, hold?, dryRun?}: a new revision holding exactly that change"
      ),
    },
    "/v1/stacks/{stack}/services/{service}/rollback": { post: op("service rollback: a pending upgrade's old containers again, else the previous spec as a new revision") },
    "/v1/stacks/{stack}/services/{service}/spec": { get: op("service inspect: {ID, Name, Revision, Spec, PreviousSpec?, Endpoint, UpdateStatus}") },
    "/v1/stacks/{stack}/services/{service}/tasks": { get: op("service ps: {now, tasks: [{id, name, slot, revision, image, host, desired, current, since, error, ports}]}") },
    "/v1/hooks": {
      get: op("webhooks the caller may see (never their secrets)"),
      post: op("a webhook: {stack, services?, kind: registry|dockerhub|github|generic, tag?, confirmAfter?, allow?}; answers its url and secret once"),
    },
    "/v1/hooks/{id}": { delete: op("remove a webhook") },
    "/v1/hooks/{id}/deliveries": { get: op("a webhook's deliveries, newest first: {id, at, from, verdict, detail, revision?}") },
    "/hooks/{id}": { post: op("a signed delivery (X-Hub-Signature-256: sha256=HMAC-SHA256 of the body under the hook's secret): GitHub's events, or {service, image}", { security: [] }) },
    "/hooks/{id}/{secret}": { post: op("a delivery from a sender that cannot sign (a registry's notification envelope, Docker Hub's): the secret in the URL", { security: [] }) },
    "/v1/chat/config": { put: op("the Slack app's signing secret and the hosts follow-ups may go to (the admin's): {signingSecret, responseHosts?}") },
    "/v1/chat/users": { get: op("chat users and the corral users they act as (the admin's)") },
    "/v1/chat/users/{chatUser}": { put: op("a chat user acts as {user} (the admin's; never the admin)"), delete: op("a chat user acts as nobody") },
    "/chat/slack": { post: op("a Slack slash command, signed with the app's signing secret (X-Slack-Signature, X-Slack-Request-Timestamp)", { security: [] }) },
    "/v1/hosts/{id}/wanted": {
      get: op(
        "what the control plane wants on the host, for its agent's reconcile (the host's own token, or the admin's): {host, complete, stacks: [{stack, containers: [{name, dockerId?, running?}]}]}",
      ),
    },
  },
} as const;

type Operation = Record<string, unknown>;
const written = openapi.paths as unknown as Record<string, Record<string, Operation>>;

/** A zod schema as JSON Schema: what a caller sends (the input side of transforms), inline. */
function jsonSchema(schema: ZodTypeAny): Record<string, unknown> {
  const { $schema: _, ...rest } = zodToJsonSchema(schema, { $refStrategy: "none", effectStrategy: "input", pipeStrategy: "input" }) as Record<string, unknown>;
  return rest;
}

/** A route as hono lists it (`app.routes`): one entry per handler, middleware first. */
export interface ListedRoute {
  method: string;
  path: string;
  handler: unknown;
}

/**
 * The OpenAPI 3.1 document of a mounted app: every route it answers, with
 * its path parameters, the query parameters and body its validators take
 * (from their zod schemas), and the summary written above. A route without
 * a summary is listed all the same, with an empty one (a test holds the two
 * together).
 */
export function openapiFor(routes: readonly ListedRoute[]) {
  const paths: Record<string, Record<string, Operation>> = {};
  for (const r of routes) {
    if (r.method === "ALL") continue; // middleware mounted with use()
    const path = r.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
    const method = r.method.toLowerCase();
    const entry = (paths[path] ??= {});
    const words: Operation = written[path]?.[method] ?? op("");
    const pathParameters = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
    const operation = (entry[method] ??= { ...words, ...(pathParameters.length ? { parameters: pathParameters } : {}) });
    const checks = described.get(r.handler as object);
    if (checks?.in === "json") operation.requestBody = { content: { "application/json": { schema: jsonSchema(checks.schema) } } };
    if (checks?.in === "query" && checks.schema instanceof ZodObject) {
      const shape = checks.schema.shape as Record<string, ZodTypeAny>;
      const query = Object.entries(shape).map(([name, s]) => ({ name, in: "query", required: !s.isOptional(), schema: jsonSchema(s) }));
      operation.parameters = [...pathParameters, ...query];
    }
  }
  return { ...openapi, paths };
}
