// The KVS APIs as the console calls them: JSON POSTs (restJson1) to the
// server that served the page, and to a stream's data endpoint for the
// archived-media APIs, signed with SigV4 when the user gave a key. The
// key lives only in this tab's sessionStorage.
"use strict";

import { sign } from "./sigv4.js";

const credsKey = "openkvs.credentials";

export function credentials() {
  const v = sessionStorage.getItem(credsKey);
  return v ? JSON.parse(v) : null;
}

export function setCredentials(c) {
  if (c) sessionStorage.setItem(credsKey, JSON.stringify(c));
  else sessionStorage.removeItem(credsKey);
}

// APIError is an error answer of the server: its __type and message.
export class APIError extends Error {
  constructor(status, type, message) {
    super(message || type || `HTTP ${status}`);
    this.status = status;
    this.type = type || "";
  }
  // needsLogin tells whether signing with (other) credentials may help.
  get needsLogin() {
    return this.status === 403 && /MissingAuthenticationToken|UnrecognizedClient|InvalidSignature|IncompleteSignature|SignatureDoesNotMatch/.test(this.type);
  }
}

// send makes one API call. Calls over a per-stream rate (such as GetClip's
// one a second) are answered ClientLimitExceededException: those are
// retried, a little later each time, as the SDKs retry throttling.
async function send(method, url, body, accept, tries = 5) {
  const headers = {};
  if (method === "POST") headers["content-type"] = "application/json";
  const c = credentials();
  if (c) Object.assign(headers, await sign(method, url, body, c));
  const resp = await fetch(url, { method, headers, body: method === "POST" ? body : undefined, cache: "no-store" });
  if (!resp.ok) {
    let type = resp.headers.get("x-amzn-ErrorType") || "", message = "";
    try {
      const j = await resp.json();
      type = j.__type || type;
      message = j.Message || j.message || "";
    } catch { /* not JSON */ }
    type = type.split(":")[0];
    if (type === "ClientLimitExceededException" && tries > 1) {
      await new Promise((ok) => setTimeout(ok, 300 * (6 - tries)));
      return send(method, url, body, accept, tries - 1);
    }
    throw new APIError(resp.status, type, message);
  }
  return accept === "blob" ? resp.blob() : resp.json();
}

// call POSTs input to the API at path (e.g. "/listStreams") of base (the
// page's origin by default) and returns the decoded answer.
export function call(path, input, base = location.origin) {
  return send("POST", new URL(path, base), JSON.stringify(input || {}));
}

// callBlob is call for an API that answers media (GetClip).
export function callBlob(path, input, base = location.origin) {
  return send("POST", new URL(path, base), JSON.stringify(input || {}), "blob");
}

// status GETs openkvs's stream status API: every active stream, or one.
export function status(name) {
  return send("GET", new URL("/openkvs/v1/streams" + (name ? "/" + encodeURIComponent(name) : ""), location.origin), "");
}

const endpoints = new Map();

// dataEndpoint returns the stream's endpoint for an API (GetDataEndpoint),
// kept for the page's life as the SDKs keep it.
export async function dataEndpoint(stream, apiName) {
  const k = stream + "\n" + apiName;
  if (!endpoints.has(k)) {
    const out = await call("/getDataEndpoint", { StreamName: stream, APIName: apiName });
    endpoints.set(k, out.DataEndpoint);
  }
  return endpoints.get(k);
}

// listAll follows NextToken through every page of an API, up to maxPages;
// it returns the items and whether more were left.
export async function listAll(path, input, key, base, maxPages = 100) {
  const items = [];
  let token;
  for (let i = 0; i < maxPages; i++) {
    const out = await call(path, token ? { ...input, NextToken: token } : input, base);
    items.push(...(out[key] || []));
    token = out.NextToken;
    if (!token) return { items, more: false };
  }
  return { items, more: true };
}
