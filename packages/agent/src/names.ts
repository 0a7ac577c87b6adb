/** Names on the host that the agent's steps and its reconcile both go by. */

import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const stackNetwork = (stack: string) => `corral-${stack}`;

/** A container's secret folder under the secrets dir: named by the create step that made it (its io.corral.step label). */
export const secretFolder = (createStepId: string) => createStepId.replace(/[^A-Za-z0-9_.-]/g, "_");

/** In each secret folder, the host whose agent wrote it (agents of several hosts may share a machine and its secrets dir): a sweep takes only its own host's. */
export const SECRET_OWNER_FILE = ".host";

/** A tmpfs where one exists (/dev/shm), so that secret values never touch a disk. */
export const defaultSecretsDir = () => join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "corral-secrets");
