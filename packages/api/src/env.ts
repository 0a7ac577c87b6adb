import type { Principal } from "./auth.js";

/** What every route sees: who calls (a bearer token's principal, or a chat command's mapped user), and whether its answer holds a credential (see holdsCredential). */
export type Env = {
  Variables: {
    principal: Principal;
    credential?: boolean;
    /** The ids of the operations this request starts, one after another (see newOpId): named after its Idempotency-Key when it has one. */
    opIds?: () => string;
  };
};
