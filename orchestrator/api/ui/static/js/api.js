// The API client: every request carries the user's key as `Authorization: Bearer`, and every
// failure becomes an ApiError holding the API's own {code, message}.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** A route this server does not have (yet): the panel says "not available". */
  get missing() {
    return this.status === 404 && this.code === "not_found";
  }
}

export class Api {
  constructor(key) {
    this.key = key;
  }

  async get(path) {
    let response;
    try {
      response = await fetch(path, {
        headers: { Authorization: `Bearer ${this.key}`, Accept: "application/json" },
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
      throw new ApiError(response.status, code, message);
    }
    if (body === null) {
      throw new ApiError(response.status, "bad_response", `${path} did not answer JSON`);
    }
    return body;
  }
}
