import { streamHandle } from "hono/aws-lambda";
import { app } from "./api.js";

/**
 * The API function for a function URL in invoke mode RESPONSE_STREAM: the
 * same app, whose event streams (`/v1/events?follow=1`) reach the client
 * line by line. Only loadable in the Lambda runtime (it needs the runtime's
 * `awslambda` global).
 */
export const handler = streamHandle(app);
