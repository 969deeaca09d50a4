// The chat page: each question streams its answer (Server-Sent Events over POST /v1/ask) with
// the conversation so far (so a follow-up is understood), then shows the sources (open one to
// read the cited chunk) and asks for feedback. Every bit of text from the server is set with
// textContent: documents and answers are never HTML.
"use strict";

const form = document.getElementById("ask-form");
const input = document.getElementById("question");
const conversation = document.getElementById("conversation");
const errorBox = document.getElementById("error");
const dialog = document.getElementById("chunk");
const stopButton = document.getElementById("stop-button");
const MAX_HISTORY = 20; // turns sent (the server keeps fewer: RAG_HISTORY_TURNS and _TOKENS)
const TURN_CHARS = 8000;
let streaming = null; // { controller, turn } while an answer is arriving
let history = []; // the answered turns so far: { role: "user" | "assistant", content }
let conversationId = null; // the server's id for this conversation, when it keeps them

function headers(extra = {}) {
  const key = sessionStorage.getItem("apiKey");
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

function sendFeedback(turn, body, beacon = false) {
  if (!turn.traceId) return Promise.resolve();
  const payload = {
    trace_id: turn.traceId,
    question: turn.question,
    answer: turn.answer ? turn.answer.answer : turn.node.querySelector(".text").textContent,
    sources: turn.answer ? turn.answer.sources.filter((s) => s.cited).map((s) => s.path) : [],
    history: turn.history,
    ...body,
  };
  if (beacon) {
    // pagehide: fetch may be cut off, keepalive lets the request finish.
    return fetch("/v1/feedback", {
      method: "POST", keepalive: true,
      headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(payload),
    }).catch(() => {});
  }
  return fetch("/v1/feedback", {
    method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(payload),
  }).then((r) => { if (!r.ok) throw new Error(`feedback: HTTP ${r.status}`); });
}

async function openSource(turn, source) {
  const response = await fetch(`/v1/sources/${encodeURIComponent(source.id)}`, { headers: headers() });
  if (!response.ok) { showError(`Cannot open the source (HTTP ${response.status}).`); return; }
  const chunk = await response.json();
  document.getElementById("chunk-title").textContent =
    `[${source.n}] ${chunk.source}${chunk.heading ? " > " + chunk.heading : ""}`;
  document.getElementById("chunk-text").textContent = chunk.text;
  dialog.showModal();
  sendFeedback(turn, { signals: ["opened_source"] }).catch(() => {});
}

function render(turn, answer, final = true) {
  const node = turn.node;
  if (answer.rewritten_question) {
    const rewritten = node.querySelector(".rewritten");
    rewritten.textContent = `searched for: ${answer.rewritten_question}`;
    rewritten.hidden = false;
  }
  if (final) node.querySelector(".text").textContent = answer.answer;
  const list = node.querySelector(".sources");
  list.replaceChildren();
  for (const source of answer.sources) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `[${source.n}] ${source.path}${source.heading ? " > " + source.heading : ""}`;
    if (source.cited) {
      button.classList.add("cited");
      button.title = source.citation === "inferred" ? "cited (inferred from the answer's words)" : "cited";
    }
    button.addEventListener("click", () => openSource(turn, source));
    item.append(button);
    list.append(item);
  }
  if (!final) return;
  const how = answer.retrieval.mode + (answer.retrieval.reason ? ` (${answer.retrieval.reason})` : "");
  node.querySelector(".meta").textContent =
    `${answer.model || "no model call"} · ${answer.usage.completion_tokens} tokens · ` +
    `${Math.round(answer.latency_ms)} ms · ${how}`;
  node.querySelector(".feedback").hidden = false;
}

function wireFeedback(turn) {
  const node = turn.node;
  const thanks = () => { node.querySelector(".thanks").hidden = false; };
  node.querySelector(".up").addEventListener("click", () => sendFeedback(turn, { rating: "up" }).then(thanks, showError));
  node.querySelector(".down").addEventListener("click", () => {
    node.querySelector(".correction").hidden = false;
    sendFeedback(turn, { rating: "down" }).catch(showError);
  });
  node.querySelector(".correction").addEventListener("submit", (event) => {
    event.preventDefault();
    const correction = event.target.querySelector("textarea").value.trim();
    if (correction) sendFeedback(turn, { rating: "down", correction }).then(thanks, showError);
  });
  node.querySelector(".copy").addEventListener("click", async () => {
    await navigator.clipboard?.writeText(turn.answer.answer).catch(() => {});
    sendFeedback(turn, { signals: ["copied"] }).catch(() => {});
  });
  node.querySelector(".text").addEventListener("copy", () => sendFeedback(turn, { signals: ["copied"] }).catch(() => {}));
  node.querySelector(".retry").addEventListener("click", () => {
    sendFeedback(turn, { signals: ["retried"] }).catch(() => {});
    ask(turn.question);
  });
}

function showError(message) {
  errorBox.textContent = String(message && message.message ? message.message : message);
  errorBox.hidden = false;
}

function stop(signal = "abandoned") { // the answer arriving is not wanted any more
  if (!streaming) return;
  streaming.controller.abort();
  sendFeedback(streaming.turn, { signals: [signal] }).catch(() => {});
  streaming.turn.node.querySelector(".meta").textContent = "stopped";
  done(streaming.turn);
}

function done(turn) { // the turn gets no more tokens: the page is ready for the next question
  turn.node.querySelector(".thinking").hidden = true;
  if (streaming && streaming.turn === turn) { streaming = null; stopButton.hidden = true; }
}

function newConversation() {
  stop();
  history = [];
  conversationId = null;
  conversation.replaceChildren();
  errorBox.hidden = true;
  input.focus();
}

async function ask(question) {
  stop(); // a new question while one streams: the old one was abandoned
  errorBox.hidden = true;
  const node = document.getElementById("turn").content.firstElementChild.cloneNode(true);
  node.querySelector(".question").textContent = question;
  conversation.append(node);
  const sent = history.slice(-MAX_HISTORY).map((t) => ({ role: t.role, content: t.content.slice(0, TURN_CHARS) }));
  const turn = { node, question, traceId: null, answer: null, history: sent };
  const text = node.querySelector(".text");
  const controller = new AbortController();
  streaming = { controller, turn };
  stopButton.hidden = false;
  const body = { question, history: sent };
  if (conversationId) body.conversation_id = conversationId;
  try {
    const response = await fetch("/v1/ask", {
      method: "POST", signal: controller.signal,
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify(body),
    });
    if (response.status === 401) { // asked once a session: the key is kept in sessionStorage
      sessionStorage.removeItem("apiKey"); // a key that was revoked is asked for again
      const key = prompt("This server needs an API key (its owner makes one with `keys create`):");
      if (key) { sessionStorage.setItem("apiKey", key.trim()); node.remove(); done(turn); return ask(question); }
    }
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(typeof body.detail === "string" ? body.detail : `HTTP ${response.status}`);
    }
    conversationId = response.headers.get("X-Conversation-Id") || conversationId;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = JSON.parse(block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n") || "null");
        if (event === "sources") { turn.traceId = data.trace_id; render(turn, data, false); }
        else if (event === "token") { node.querySelector(".thinking").hidden = true; text.textContent += data; }
        else if (event === "answer") {
          turn.answer = data;
          render(turn, data);
          wireFeedback(turn);
          history.push({ role: "user", content: question }, { role: "assistant", content: data.answer });
        }
        else if (event === "error") throw new Error(data.detail);
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") { showError(error); node.querySelector(".meta").textContent = "failed"; }
  } finally {
    done(turn);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = input.value.trim();
  if (!question) return;
  input.value = "";
  ask(question);
});
stopButton.addEventListener("click", () => { stop(); input.focus(); });
document.getElementById("new-conversation").addEventListener("click", newConversation);
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
});
window.addEventListener("pagehide", () => {
  if (streaming) sendFeedback(streaming.turn, { signals: ["abandoned"] }, true);
});
