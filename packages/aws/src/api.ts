import { Hono } from "hono";
import { defaultIsContentTypeBinary, handle } from "hono/aws-lambda";
import { plane } from "./shared.js";

/**
 * The API function, behind a function URL (payload version 2.0): the app
 * `corral server` serves, built on the first request of an instance. The
 * response is sent when the handler ends (invoke mode BUFFERED): long-polls
 * end within their `wait` (at most 30 s), an event stream within
 * CORRAL_MAX_FOLLOW_MS; the function's timeout must exceed both. For event
 * streams that reach the client as they come, see api-stream.ts.
 */
export const app = new Hono().all("*", async (c) => (await plane()).app.fetch(c.req.raw, c.env));

// an event stream is text (hono's default takes every text/* but a few for binary, and sends it base64)
const isContentTypeBinary = (type: string) => !/^text\/event-stream\s*(;|$)/i.test(type) && defaultIsContentTypeBinary(type);

export const handler = handle(app, { isContentTypeBinary });
