// AWS Signature Version 4 in the browser, with WebCrypto: what the SDKs
// do, for the JSON APIs and the stream status API. The server checks the
// headers a request signs (SignedHeaders), so this signs host, x-amz-date
// and x-amz-content-sha256.
"use strict";

const enc = new TextEncoder();

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function sha256Hex(data) {
  return hex(await crypto.subtle.digest("SHA-256", typeof data === "string" ? enc.encode(data) : data));
}

async function hmac(key, msg) {
  const k = await crypto.subtle.importKey("raw", typeof key === "string" ? enc.encode(key) : key,
    { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", k, enc.encode(msg));
}

// uriEncode is SigV4's encoding: every byte but unreserved characters.
function uriEncode(s, keepSlash) {
  return Array.from(enc.encode(s), (b) => {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === "/")) return c;
    return "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }).join("");
}

// amzDate formats a time as SigV4's basic ISO 8601: 20240102T030405Z.
export function amzDate(d) {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

// sign returns the headers to send with a request of method to url (a
// URL) with body (a string) under creds {accessKeyId, secretAccessKey,
// region}; now is the signing time.
export async function sign(method, url, body, creds, now = new Date()) {
  const date = amzDate(now);
  const day = date.slice(0, 8);
  const payload = await sha256Hex(body);
  const headers = { host: url.host, "x-amz-content-sha256": payload, "x-amz-date": date };
  const names = Object.keys(headers).sort();
  const query = [...url.searchParams].map(([k, v]) => [uriEncode(k), uriEncode(v)])
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => k + "=" + v).join("&");
  const canonical = [method, uriEncode(url.pathname, true), query,
    names.map((n) => n + ":" + headers[n] + "\n").join(""), names.join(";"), payload].join("\n");
  const scope = `${day}/${creds.region}/kinesisvideo/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", date, scope, await sha256Hex(canonical)].join("\n");
  let key = await hmac("AWS4" + creds.secretAccessKey, day);
  key = await hmac(key, creds.region);
  key = await hmac(key, "kinesisvideo");
  key = await hmac(key, "aws4_request");
  const signature = hex(await hmac(key, toSign));
  delete headers.host; // the browser sends it
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, ` +
    `SignedHeaders=${names.join(";")}, Signature=${signature}`;
  return headers;
}
