// Talking to the appban HTTP API: the token, JSON requests, errors and uploads with progress.

const TOKEN_KEY = "appban.token";
let remembered = ""; // the token, when the browser keeps no session storage

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return remembered;
  }
}

export function setToken(value) {
  if (value === getToken()) return;
  remembered = value;
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage may be disabled: the token is kept in memory for this page */
  }
  document.dispatchEvent(new CustomEvent("appban:token", { detail: { present: Boolean(value) } }));
}

/** An error the API answered with ({"error": {status, message, details}}) or a network failure. */
export class ApiError extends Error {
  constructor(status, message, details = []) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.details = details;
  }
}

function authHeaders(extra = {}) {
  const headers = { Accept: "application/json", ...extra };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

function errorFrom(status, body, fallback) {
  const err = body && typeof body === "object" ? body.error : null;
  if (err && typeof err.message === "string") {
    return new ApiError(err.status || status, err.message, err.details || []);
  }
  return new ApiError(status, fallback || `request failed with HTTP ${status}`);
}

async function parseBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** GET or POST JSON; resolves to the parsed body or rejects with an ApiError. */
export async function request(method, path, { body, params, signal } = {}) {
  let url = path;
  if (params) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
    }
    const text = query.toString();
    if (text) url += (url.includes("?") ? "&" : "?") + text;
  }
  const init = { method, headers: authHeaders(), signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (exc) {
    if (exc && exc.name === "AbortError") throw exc;
    throw new ApiError(0, "cannot reach the appban service — is it running?");
  }
  const parsed = await parseBody(response);
  if (!response.ok) throw errorFrom(response.status, parsed, response.statusText);
  return parsed;
}

export const get = (path, params, signal) => request("GET", path, { params, signal });
export const post = (path, body) => request("POST", path, { body });

/**
 * GET a file (a download) with the token: resolves to {blob, name, count}, `name` from Content-Disposition
 * and `count` from X-Appban-Findings where the server sends them.
 */
export async function download(path) {
  let response;
  try {
    response = await fetch(path, { headers: authHeaders({ Accept: "*/*" }) });
  } catch {
    throw new ApiError(0, "cannot reach the appban service — is it running?");
  }
  if (!response.ok) throw errorFrom(response.status, await parseBody(response), response.statusText);
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] || null;
  const header = response.headers.get("X-Appban-Findings");
  const count = header !== null && /^\d+$/.test(header) ? Number(header) : null;
  return { blob: await response.blob(), name, count };
}

/**
 * Upload one file as multipart field `file`, reporting progress.
 * Returns { promise, abort }; the promise resolves to the parsed JSON answer.
 */
export function upload(path, file, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open("POST", path);
    for (const [key, value] of Object.entries(authHeaders())) xhr.setRequestHeader(key, value);
    xhr.responseType = "text";
    xhr.upload.onprogress = (event) => {
      if (onProgress) onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    };
    xhr.upload.onload = () => onProgress && onProgress(file.size, file.size);
    xhr.onload = () => {
      let parsed = null;
      try {
        parsed = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        parsed = xhr.responseText;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(parsed);
      else reject(errorFrom(xhr.status, parsed, xhr.statusText));
    };
    xhr.onerror = () => reject(new ApiError(0, "the upload failed: the service could not be reached"));
    xhr.onabort = () => reject(new ApiError(0, "the upload was cancelled"));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

// A few answers never change while the page is open (the rulebook is fixed per server): keep them.
const cache = new Map();

export function cached(path, params) {
  const key = path + (params ? "?" + new URLSearchParams(params).toString() : "");
  if (!cache.has(key)) {
    const pending = get(path, params).catch((exc) => {
      cache.delete(key);
      throw exc;
    });
    cache.set(key, pending);
  }
  return cache.get(key);
}

export const apps = () => cached("/v1/apps");
export const rule = (id) => cached(`/v1/rules/${encodeURIComponent(id)}`);
