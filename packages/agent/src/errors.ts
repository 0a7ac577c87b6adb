/** A step asks for what this agent was not set up to do (secrets, without a secrets dir or a way to fetch them). */
export class AgentSetupError extends Error {
  override name = "AgentSetupError";
}
