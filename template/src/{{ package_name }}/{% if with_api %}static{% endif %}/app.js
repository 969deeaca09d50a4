"use strict";

// The chat page: ask a question, show the cited answer, open a source's chunk.
// Plain DOM APIs and textContent only (no HTML from the server is ever injected).

const $ = (id) => document.getElementById(id);

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  } catch (_) {
    // not JSON
  }
  return `${response.status} ${response.statusText}`;
}

function sourceItem(source) {
  const item = document.createElement("li");
  item.value = source.n;
  const link = document.createElement("a");
  link.href = `/v1/sources/${encodeURIComponent(source.id)}`;
  link.textContent = source.heading ? `${source.path} > ${source.heading}` : source.path;
  link.addEventListener("click", (event) => {
    event.preventDefault();
    openChunk(source.id);
  });
  item.append(link);
  const badge = document.createElement("span");
  badge.className = source.cited ? "badge cited" : "badge";
  badge.textContent = source.citation === "model" ? "cited"
    : source.citation === "inferred" ? "cited (inferred)" : "not cited";
  item.append(" ", badge);
  const snippet = document.createElement("p");
  snippet.className = "snippet";
  snippet.textContent = source.snippet;
  item.append(snippet);
  return item;
}

function showAnswer(answer) {
  $("answer").textContent = answer.answer;
  const model = answer.model || "no model call";
  $("meta").textContent =
    `${model} · ${answer.usage.total_tokens} tokens · ${Math.round(answer.latency_ms)} ms · trace ${answer.trace_id}`;
  const list = $("sources");
  list.replaceChildren(...answer.sources.map(sourceItem));
  $("result").hidden = false;
}

async function openChunk(id) {
  const url = `/v1/sources/${encodeURIComponent(id)}`;
  const response = await fetch(url);
  if (!response.ok) {
    showError(await errorText(response));
    return;
  }
  const chunk = await response.json();
  $("chunk-title").textContent = chunk.heading ? `${chunk.path} > ${chunk.heading}` : chunk.path;
  $("chunk-text").textContent = chunk.text;
  $("chunk-raw").href = url;
  $("chunk").hidden = false;
  $("chunk").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  const button = $("ask-button");
  button.disabled = true;
  button.textContent = "Thinking…";
  showError("");
  try {
    const response = await fetch("/v1/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question }),
    });
    if (!response.ok) {
      showError(await errorText(response));
      return;
    }
    showAnswer(await response.json());
  } catch (error) {
    showError(`The server cannot be reached: ${error.message}`);
  } finally {
    button.disabled = false;
    button.textContent = "Ask";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("ask-form").addEventListener("submit", ask);
  $("chunk-close").addEventListener("click", () => { $("chunk").hidden = true; });
  $("question").focus();
});
