export { controlQueueName, deadLetterUrlOf, deleteFifoQueue, ensureFifoQueue, hostQueueName, sqsClient, standInOptions, UnixSocketAgent } from "./client.js";
export type { QueueOptions, SqsConfig } from "./client.js";
export { CONTROL, exportPublicKey, hostSender, importPublicKey, Opener, senderHost, signer } from "./envelope.js";
export type { Envelope, OpenerOptions, ReplayMemory, Signer, SignerOptions, Verdict } from "./envelope.js";
export { faultPoint } from "./faults.js";
export { QueueSender, toDedupId } from "./sender.js";
export type { OutgoingMessage, SenderOptions } from "./sender.js";
export { deleteMessages, extendVisibility, handleMessages, receiveLoop } from "./receiver.js";
export type { BatchOutcome, ReceiveLoopOptions, Received } from "./receiver.js";
