// Pictures: uploaded with POST /v1/media (multipart, purpose "attachment"), shown from
// GET /v1/media/{id}/content. <img> cannot send the bearer token, so the bytes are fetched
// with it and shown through an object URL, one per file per page load.

import { ApiError, api } from "../api.js";

const urls = new Map();
const RETRY_MS = 2000;
const TRIES = 15;

/** Upload one picture; answers the FileOut. */
export function uploadPicture(file) {
  const form = new FormData();
  form.append("file", file, file.name || "picture");
  form.append("purpose", "attachment");
  return api.post("/v1/media", form);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function fetchObjectUrl(fileId) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const response = await api.get(`/v1/media/${encodeURIComponent(fileId)}/content`);
      return URL.createObjectURL(await response.blob());
    } catch (error) {
      // 409: its scan has not passed yet (others than its sender wait for it).
      if (!(error instanceof ApiError) || error.status !== 409 || attempt >= TRIES) throw error;
      await sleep(RETRY_MS);
    }
  }
}

/** An object URL of a file's bytes (cached); rejects with the API's error. */
export function objectUrl(fileId) {
  if (!urls.has(fileId)) {
    const asked = fetchObjectUrl(fileId).catch((error) => {
      urls.delete(fileId);
      throw error;
    });
    urls.set(fileId, asked);
  }
  return urls.get(fileId);
}
