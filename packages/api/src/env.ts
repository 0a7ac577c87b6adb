import type { Principal } from "./auth.js";

/** What every route sees: who calls (a bearer token's principal, or a chat command's mapped user), and whether its answer holds a credential (see holdsCredential). */
export type Env = {
  Variables: {
    principal: Principal;
    credential?: boolean;
  };
};
