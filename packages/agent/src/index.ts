export { StepRunner, authorizeHostMessage, defaultSecretsDir, queueReporter, runAgentLoop, stackNetwork } from "./agent.js";
export type { AgentLoopOptions, AgentOptions } from "./agent.js";
export { DockerRuntime, dockerOptions, engineMessage } from "./runtime.js";
export type { ContainerInfo, ContainerRuntime, CreateSpec, MountRequest, VolumeRequest } from "./runtime.js";
export { startAgent } from "./process.js";
export type { AgentProcessOptions, RunningAgent } from "./process.js";
export { PortRouter } from "./router.js";
export { SessionRunner } from "./sessions.js";
