// The API client: every request carries the user's key as `Authorization: Bearer`, and every
// failure becomes an ApiError holding the API's own {code, message}.

export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body; // the whole answer: e.g. the `problems` of a 422 journey_invalid
  }

  /** A route this server does not have (yet), or not for this method: the panel says
   * "not available". */
  get missing() {
    return (this.status === 404 && this.code === "not_found") || (this.status === 405 && this.code === "method_not_allowed");
  }
}

export class Api {
  constructor(key) {
    this.key = key;
  }

  get(path) {
    return this.request("GET", path);
  }

  /** A POST with a JSON body. */
  post(path, body) {
    return this.request("POST", path, body);
  }

  async request(method, path, payload = undefined) {
    const headers = { Authorization: `Bearer ${this.key}`, Accept: "application/json" };
    if (payload !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: payload === undefined ? undefined : JSON.stringify(payload),
        cache: "no-store",
      });
    } catch (error) {
      throw new ApiError(0, "unreachable", `the API did not answer (${error.message}); retrying`);
    }
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!response.ok) {
      const code = body?.code ?? `http_${response.status}`;
      const message = body?.message ?? (text.slice(0, 200) || response.statusText);
      throw new ApiError(response.status, code, message, body);
    }
    if (body === null) {
      throw new ApiError(response.status, "bad_response", `${path} did not answer JSON`);
    }
    return body;
  }
}
