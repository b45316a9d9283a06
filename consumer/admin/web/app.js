/* drover status page: polls /api/migrations and /api/repair/audit every
 * 2 s and renders the tables.  Values are inserted as text, never as
 * HTML. */
"use strict";

const REFRESH_MS = 2000;
const $ = (id) => document.getElementById(id);

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function progressCell(tr, m) {
  const td = document.createElement("td");
  const total = Number(m.steps_total) || 0;
  const done = Number(m.steps_done) || 0;
  const pct = total > 0 ? Math.min(100, Math.round((100 * done) / total)) : 0;
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuenow", String(pct));
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  const fill = document.createElement("div");
  fill.className = "fill";
  fill.style.width = pct + "%";
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = done + "/" + total + " steps (" + pct + "%)";
  bar.appendChild(fill);
  bar.appendChild(label);
  td.appendChild(bar);
  tr.appendChild(td);
}

function errorText(e) {
  if (!e) return "";
  if (typeof e === "string") return e;
  return [e.class, e.message || e.error].filter(Boolean).join(": ");
}

function row(m) {
  const tr = document.createElement("tr");
  tr.dataset.taskId = m.task_id;
  tr.className = "row status-row-" + m.status;
  cell(tr, String(m.task_id || "").slice(0, 8), "mono").title = m.task_id;
  cell(tr, m.dataset);
  /* a rollback task (kind "rollback") shows its kind with its plan */
  cell(tr, m.entity_ref, "mono plan kind-" + (m.kind || "migrate")).title =
    (m.kind === "rollback" ? "rollback task: " : "") + (m.entity_ref || "");
  cell(tr, m.status, "status status-" + m.status);
  progressCell(tr, m);
  cell(tr, Number(m.rows_done || 0).toLocaleString("en-US"));
  cell(tr, m.attempts);
  cell(tr, m.worker);
  cell(tr, m.started_at ? String(m.started_at).replace("T", " ").slice(0, 19) : "");
  /* a throttled task says why it waits (which check, value and limit) */
  cell(tr, m.status === "throttled" ? "throttled: " + (m.throttle_reason || "")
    : errorText(m.last_error), "err");
  return tr;
}

function render(list) {
  const body = $("rows");
  body.replaceChildren(...list.map(row));
  $("empty").hidden = list.length > 0;
  const counts = {};
  list.forEach((m) => { counts[m.status] = (counts[m.status] || 0) + 1; });
  $("summary").textContent = list.length + " migrations" +
    Object.keys(counts).sort().map((s) => " \u00b7 " + counts[s] + " " + s).join("");
}

function version(state) {
  return state && state.version !== null && state.version !== undefined
    ? String(state.version) : "-";
}

function repairRow(r) {
  const tr = document.createElement("tr");
  const before = r.before || {}, after = r.after || {};
  const cleared = (before.rows || []).length - (after.rows || []).length;
  cell(tr, r.id);
  cell(tr, r.at ? String(r.at).replace("T", " ").slice(0, 19) : "");
  cell(tr, r.dataset);
  cell(tr, r.who, "mono");
  cell(tr, version(before) + " \u2192 " + version(after));
  cell(tr, cleared);
  cell(tr, r.reason);
  return tr;
}

async function refreshRepairs() {
  const q = new URLSearchParams({ limit: "10" });
  if ($("f-dataset").value) q.set("dataset", $("f-dataset").value);
  try {
    const res = await fetch("api/repair/audit?" + q, { cache: "no-store" });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || res.statusText);
    const list = body.repairs || [];
    $("repair-rows").replaceChildren(...list.map(repairRow));
    $("repairs-empty").textContent = "no repairs";
    $("repairs-empty").hidden = list.length > 0;
  } catch (e) {
    $("repairs-empty").hidden = false;
    $("repairs-empty").textContent = "cannot load repairs: " + e.message;
  }
}

async function refresh() {
  refreshRepairs();
  const q = new URLSearchParams();
  if ($("f-dataset").value) q.set("dataset", $("f-dataset").value);
  if ($("f-status").value) q.set("status", $("f-status").value);
  const state = $("state");
  try {
    const res = await fetch("api/migrations" + (q.toString() ? "?" + q : ""),
                            { cache: "no-store" });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || res.statusText);
    render(body.migrations || []);
    state.textContent = "updated " + new Date().toLocaleTimeString("en-GB");
    state.className = "state";
  } catch (e) {
    state.textContent = "cannot load migrations: " + e.message;
    state.className = "state error";
  }
}

/* filters can come from the page's own query: /?dataset=customer */
const initial = new URLSearchParams(location.search);
$("f-dataset").value = initial.get("dataset") || "";
$("f-status").value = initial.get("status") || "";

$("filters").addEventListener("change", refresh);
$("filters").addEventListener("submit", (ev) => { ev.preventDefault(); refresh(); });
refresh();
setInterval(refresh, REFRESH_MS);
