// tunixrt RunsWidget view: history table with server-side sort/filter/paging, selection ->
// overlaid loss curves + config differences, row click -> the run's live view below.
// Plain ES module; chart.js is concatenated in front of it. Protocol: runs_widget.py.

const TRX_RUNS_ACTIVE = new Set(["pending", "running"]);
const TRX_RUNS_STATUSES = ["pending", "running", "completed", "failed", "cancelled", "timeout", "lost"];
// [label, sort field, cell renderer]
const TRX_RUNS_COLUMNS = [
  ["name", "name"], ["status", "status"], ["model", "model"], ["dataset", "dataset"],
  ["mode", "mode"], ["steps", "step"], ["final loss", "final_loss"],
  ["best eval loss", "best_eval_loss"], ["duration", "duration_s"], ["started", "started_at"],
];

function trxR(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function trxRunsDuration(row) {
  let d = typeof row.duration_s === "number" ? row.duration_s : null;
  if (d === null && typeof row.started_at === "number") {
    const end = typeof row.ended_at === "number" ? row.ended_at
      : (TRX_RUNS_ACTIVE.has(row.status) ? Date.now() / 1000 : null);
    if (end !== null) d = end - row.started_at;
  }
  if (d === null || !isFinite(d) || d < 0) return "–";
  d = Math.round(d);
  const h = Math.floor(d / 3600), m = Math.floor((d % 3600) / 60), s = d % 60;
  const pad = (v) => String(v).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

function trxRunsTime(ts) {
  if (typeof ts !== "number") return "–";
  const d = new Date(ts * 1000);
  const pad = (v) => String(v).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function trxShort(id) {
  const s = String(id || "");
  return (s.match(/-/g) || []).length >= 2 ? s.slice(s.lastIndexOf("-") + 1) : s.slice(0, 8);
}

class TrxRunsView {
  constructor(model, el) {
    this.model = model;
    this.el = el;
    this.selected = new Map(); // run_id -> label (kept across pages)
    this.compareReq = 0;
    this.queryOut = 0;
    this._build();
    this._onChange = () => this._render();
    this._onMsg = (m) => this._message(m);
    for (const k of ["rows", "total", "query", "error", "query_rev", "opened", "can_show"]) {
      model.on(`change:${k}`, this._onChange);
    }
    model.on("msg:custom", this._onMsg);
    this._render();
    this.timer = setInterval(() => this._tick(), 1000);
  }

  destroy() {
    clearInterval(this.timer);
    clearTimeout(this.filterTimer);
    for (const k of ["rows", "total", "query", "error", "query_rev", "opened", "can_show"]) {
      this.model.off(`change:${k}`, this._onChange);
    }
    this.model.off("msg:custom", this._onMsg);
    if (this.chart) this.chart.destroy();
  }

  _q() { return this.model.get("query") || {}; }

  _send(changes) {
    const q = this._q();
    const msg = { type: "query", sort: q.sort, limit: q.limit, offset: q.offset,
      filters: { ...(q.filters || {}) }, ...changes };
    this.queryOut = Date.now();
    this.root.classList.add("trx-loading");
    this.model.send(msg);
  }

  // -- DOM ---------------------------------------------------------------------------------
  _build() {
    const root = trxR("div", "trx-runs");
    this.root = root;
    const bar = trxR("div", "trx-runs-bar");
    this.statusSel = document.createElement("select");
    this.statusSel.className = "trx-f-status";
    this.statusSel.append(new Option("all statuses", ""));
    for (const s of TRX_RUNS_STATUSES) this.statusSel.append(new Option(s, s));
    this.modelIn = document.createElement("input");
    this.modelIn.className = "trx-f-model";
    this.modelIn.placeholder = "model";
    this.nameIn = document.createElement("input");
    this.nameIn.className = "trx-f-name";
    this.nameIn.placeholder = "name contains…";
    const refresh = trxR("button", "trx-btn trx-refresh", "↻");
    refresh.type = "button";
    refresh.title = "refresh";
    refresh.addEventListener("click", () => this._send({}));
    this.countEl = trxR("span", "trx-runs-count");
    bar.append(this.statusSel, this.modelIn, this.nameIn, refresh, this.countEl);
    const onFilter = () => {
      clearTimeout(this.filterTimer);
      this.filterTimer = setTimeout(() => this._send({ offset: 0, filters: this._filters() }), 300);
    };
    this.statusSel.addEventListener("change", onFilter);
    this.modelIn.addEventListener("input", onFilter);
    this.nameIn.addEventListener("input", onFilter);

    this.errorEl = trxR("div", "trx-runs-error");
    this.errorEl.hidden = true;

    const wrap = trxR("div", "trx-runs-tablewrap");
    this.table = trxR("table", "trx-runs-table");
    this.thead = trxR("thead");
    this.tbody = trxR("tbody");
    this.table.append(this.thead, this.tbody);
    wrap.appendChild(this.table);

    const pager = trxR("div", "trx-runs-pager");
    this.prev = trxR("button", "trx-btn trx-prev", "‹ prev");
    this.prev.type = "button";
    this.next = trxR("button", "trx-btn trx-next", "next ›");
    this.next.type = "button";
    this.pageEl = trxR("span", "trx-runs-page");
    this.prev.addEventListener("click", () => {
      const q = this._q();
      this._send({ offset: Math.max(0, (q.offset || 0) - (q.limit || 20)) });
    });
    this.next.addEventListener("click", () => {
      const q = this._q();
      this._send({ offset: (q.offset || 0) + (q.limit || 20) });
    });
    this.openNote = trxR("span", "trx-runs-open-note");
    pager.append(this.prev, this.pageEl, this.next, this.openNote);

    this.comparePanel = trxR("div", "trx-compare");
    this.comparePanel.hidden = true;
    const chead = trxR("div", "trx-toolbar");
    this.compareTitle = trxR("span", "trx-section-title");
    const logLabel = trxR("label", "trx-log-scale");
    this.logToggle = document.createElement("input");
    this.logToggle.type = "checkbox";
    logLabel.append(this.logToggle, document.createTextNode(" log scale"));
    const clear = trxR("button", "trx-btn trx-clear", "clear selection");
    clear.type = "button";
    clear.addEventListener("click", () => { this.selected.clear(); this._renderRows(); this._compare(); });
    chead.append(this.compareTitle, logLabel, clear);
    this.compareBody = trxR("div", "trx-compare-body");
    this.chartBox = trxR("div", "trx-compare-chart");
    this.diffBox = trxR("div", "trx-compare-diff");
    this.compareBody.append(this.chartBox, this.diffBox);
    this.comparePanel.append(chead, this.compareBody);
    this.logToggle.addEventListener("change", () => this.chart && this.chart.setLog(this.logToggle.checked));

    root.append(bar, this.errorEl, wrap, pager, this.comparePanel);
    this.el.appendChild(root);
  }

  _filters() {
    const f = {};
    if (this.statusSel.value) f.status = [this.statusSel.value];
    if (this.modelIn.value.trim()) f.model = this.modelIn.value.trim();
    if (this.nameIn.value.trim()) f.name = this.nameIn.value.trim();
    return f;
  }

  // -- render ------------------------------------------------------------------------------
  _render() {
    this.queryOut = 0;
    this.root.classList.remove("trx-loading");
    const q = this._q(), f = q.filters || {};
    // reflect kernel-side filters in the inputs unless the user is typing in them
    const st = Array.isArray(f.status) ? f.status[0] || "" : f.status || "";
    if (document.activeElement !== this.statusSel) this.statusSel.value = st;
    if (document.activeElement !== this.modelIn) this.modelIn.value = Array.isArray(f.model) ? f.model.join(",") : f.model || "";
    if (document.activeElement !== this.nameIn) this.nameIn.value = Array.isArray(f.name) ? f.name.join(",") : f.name || "";
    const err = this.model.get("error");
    this.errorEl.hidden = !err;
    this.errorEl.textContent = err || "";
    this._renderHead();
    this._renderRows();
    const total = this.model.get("total") || 0;
    const rows = this.model.get("rows") || [];
    const off = q.offset || 0, lim = q.limit || 20;
    this.countEl.textContent = `${total} run${total === 1 ? "" : "s"}`;
    this.pageEl.textContent = total ? `${off + 1}–${off + rows.length} of ${total}` : "no runs";
    this.prev.disabled = off <= 0;
    this.next.disabled = off + rows.length >= total;
    this.root.dataset.rows = String(rows.length);
    this.root.dataset.total = String(total);
    this.root.dataset.sort = q.sort || "";
  }

  _renderHead() {
    const sort = this._q().sort || "-created_at";
    const desc = sort.startsWith("-"), field = sort.replace(/^[-+]/, "");
    const tr = trxR("tr");
    tr.appendChild(trxR("th", "trx-sel-col"));
    for (const [label, key] of TRX_RUNS_COLUMNS) {
      const th = trxR("th", "trx-sortable", label);
      th.dataset.sort = key;
      if (key === field) {
        th.classList.add("trx-sorted");
        th.appendChild(trxR("span", "trx-arrow", desc ? " ▼" : " ▲"));
      }
      th.title = `sort by ${label}`;
      th.addEventListener("click", () => {
        let next;
        if (key === field) next = desc ? key : `-${key}`;
        else next = ["name", "model", "dataset", "mode", "status"].includes(key) ? key : `-${key}`;
        this._send({ sort: next, offset: 0 });
      });
      tr.appendChild(th);
    }
    this.thead.replaceChildren(tr);
  }

  _renderRows() {
    const rows = this.model.get("rows") || [];
    const opened = this.model.get("opened");
    const frag = document.createDocumentFragment();
    for (const row of rows) {
      const tr = trxR("tr", "trx-run-row");
      tr.dataset.runId = row.run_id;
      if (row.run_id === opened) tr.classList.add("trx-opened");
      if (this.selected.has(row.run_id)) tr.classList.add("trx-selected");
      const selTd = trxR("td", "trx-sel-col");
      const cb = document.createElement("input");
      cb.type = "checkbox";
      cb.className = "trx-select";
      cb.checked = this.selected.has(row.run_id);
      cb.title = "select to compare";
      cb.addEventListener("click", (e) => e.stopPropagation());
      cb.addEventListener("change", () => {
        if (cb.checked) this.selected.set(row.run_id, row.name || row.run_id);
        else this.selected.delete(row.run_id);
        tr.classList.toggle("trx-selected", cb.checked);
        this._compare();
      });
      selTd.appendChild(cb);
      tr.appendChild(selTd);
      for (const [, key] of TRX_RUNS_COLUMNS) {
        const td = trxR("td");
        if (key === "name") {
          td.append(trxR("span", "trx-runs-name", row.name || ""), trxR("code", "trx-id", " " + trxShort(row.run_id)));
        } else if (key === "status") {
          const b = trxR("span", "trx-badge", row.status || "pending");
          b.dataset.status = row.status || "pending";
          td.appendChild(b);
        } else if (key === "step") {
          const s = row.step === null || row.step === undefined ? "–" : row.step;
          td.textContent = row.total_steps ? `${s} / ${row.total_steps}` : String(s);
          td.className = "trx-num";
        } else if (key === "final_loss" || key === "best_eval_loss") {
          td.textContent = trxFmt(row[key]);
          td.className = "trx-num";
        } else if (key === "duration_s") {
          td.textContent = trxRunsDuration(row);
          td.className = "trx-num";
        } else if (key === "started_at") {
          td.textContent = trxRunsTime(typeof row.started_at === "number" ? row.started_at : row.created_at);
        } else {
          td.textContent = row[key] === null || row[key] === undefined ? "–" : String(row[key]);
        }
        tr.appendChild(td);
      }
      tr.title = row.error ? `${row.run_id}\n${row.error}` : `${row.run_id} — click to open`;
      tr.addEventListener("click", () => {
        this.model.send({ type: "open", run_id: row.run_id });
        this.openNote.textContent = `opening ${trxShort(row.run_id)}…`;
      });
      frag.appendChild(tr);
    }
    if (!rows.length) {
      const tr = trxR("tr");
      const td = trxR("td", "trx-empty", "No runs match. Start one with %tunix_run.");
      td.colSpan = TRX_RUNS_COLUMNS.length + 1;
      tr.appendChild(td);
      frag.appendChild(tr);
    }
    this.tbody.replaceChildren(frag);
  }

  // -- compare -----------------------------------------------------------------------------
  _compare() {
    this.compareReq++;
    if (!this.selected.size) {
      this.comparePanel.hidden = true;
      this.root.dataset.compared = "0";
      return;
    }
    this.model.send({ type: "compare", run_ids: [...this.selected.keys()], request: this.compareReq });
  }

  _message(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "compare" && msg.request === this.compareReq) this._renderCompare(msg);
    if (msg.type === "opened") {
      this.openNote.textContent = msg.shown ? `showing ${trxShort(msg.run_id)} below`
        : `to watch it: ${msg.hint}`;
      this.openNote.dataset.runId = msg.run_id;
    }
  }

  _renderCompare(msg) {
    const runs = msg.runs || [];
    this.comparePanel.hidden = !runs.length;
    this.compareTitle.textContent = `Compare ${runs.length} run${runs.length === 1 ? "" : "s"}: loss`;
    // one chart, refilled: clear() + setSeries() redraw in a single frame (no flicker)
    if (!this.chart) this.chart = new TrxLineChart(this.chartBox, { height: 220, emptyText: "no loss points yet" });
    this.chart.clear();
    let n = 0;
    runs.forEach((r, i) => {
      const color = TRX_PALETTE[i % TRX_PALETTE.length];
      const train = (r.series || {})["train/loss"] || [];
      const ev = (r.series || {})["eval/loss"] || [];
      if (train.length) this.chart.setSeries(`${r.run_id}:train`, train.map((p) => p[0]), train.map((p) => p[1]), { color, label: `${r.label} train` });
      if (ev.length) this.chart.setSeries(`${r.run_id}:eval`, ev.map((p) => p[0]), ev.map((p) => p[1]), { color, label: `${r.label} eval`, dash: [5, 4], markers: true });
      n += train.length + ev.length;
    });
    this.root.dataset.compared = String(runs.length);
    this.root.dataset.comparePoints = String(n);
    // config differences, side by side
    this.diffBox.replaceChildren();
    const diff = msg.diff || [];
    if (runs.length < 2) {
      this.diffBox.appendChild(trxR("div", "trx-muted", "select two or more runs to see how their configs differ"));
      return;
    }
    if (!diff.length) {
      this.diffBox.appendChild(trxR("div", "trx-muted", "configs are identical"));
      return;
    }
    const t = trxR("table", "trx-diff-table");
    const hr = trxR("tr");
    hr.appendChild(trxR("th", null, "config key"));
    runs.forEach((r, i) => {
      const th = trxR("th");
      const sw = trxR("span", "trx-chart-swatch");
      sw.style.background = TRX_PALETTE[i % TRX_PALETTE.length];
      th.append(sw, document.createTextNode(r.short_id));
      th.title = r.label;
      hr.appendChild(th);
    });
    t.appendChild(hr);
    for (const d of diff) {
      const tr = trxR("tr");
      tr.appendChild(trxR("td", "trx-diff-key", d.key));
      for (const r of runs) {
        const v = (d.values || {})[r.run_id];
        tr.appendChild(trxR("td", "trx-diff-val", v === null || v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v)));
      }
      t.appendChild(tr);
    }
    this.diffBox.appendChild(t);
    this.root.dataset.diffKeys = String(diff.length);
  }

  // -- auto refresh ------------------------------------------------------------------------
  _tick() {
    const now = Date.now();
    if (this.queryOut && now - this.queryOut < 15000) return;
    const rows = this.model.get("rows") || [];
    if (!rows.some((r) => TRX_RUNS_ACTIVE.has(r.status))) return;
    if (document.hidden) return;
    this.lastAuto = this.lastAuto || 0;
    if (now - this.lastAuto < Math.max(1000, this.model.get("refresh_ms") || 3000)) return;
    this.lastAuto = now;
    this._send({});
    // keep the overlay current when a selected run is still training
    if ([...this.selected.keys()].some((id) => rows.find((r) => r.run_id === id && TRX_RUNS_ACTIVE.has(r.status)))) {
      this._compare();
    }
  }
}

function render({ model, el }) {
  const view = new TrxRunsView(model, el);
  return () => view.destroy();
}

export default { render };
