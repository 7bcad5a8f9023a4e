// tunixrt RunWidget view. Plain ES module (no imports: chart.js is concatenated in front of
// this file by Python). Protocol: see tunixrt_jupyter/widgets/run_widget.py.
//
// One TrxRunStore per widget model in the page (made in anywidget's initialize(), i.e. when
// the model is created, before any view): it starts from the `snapshot` trait and takes every
// "append" message, merging by sequence number, so nothing is shown twice:
//   push     - the kernel's background thread ("append", reason "push")
//   poll     - the store asks every poll_ms while the run is live and pushes are not arriving
//              (Colab drops thread messages)
//   hello    - sent once per store: after a page reload the snapshot is stale
// A jump in a sequence number that the kernel did not announce (lskip) parks the message and
// asks for what is missing. Views (one per output area showing the widget) draw from the store,
// so a second view, or a view shown while the cell that displayed it is still running, is
// complete at once, with no round trip to a possibly busy kernel.

const TRX_TERMINAL = new Set(["completed", "failed", "cancelled", "timeout", "lost"]);
// colour by what a line says, not by its stream (absl logs INFO lines to stderr)
const TRX_ERR_RE = /^(E\d{4}|F\d{4}|ERROR|CRITICAL|FATAL|Traceback)|\b\w*(Error|Exception)\b[:(]/;
const TRX_WARN_RE = /^(W\d{4}|WARNING|Warning)|\bwarn(ing)?\b/i;
const TRX_STATE_KEYS = ["status", "progress", "header", "summary", "rev", "cancel_state"];
const TRX_LOSS_SERIES = { "train/loss": { color: "#1e88e5", label: "train loss" },
  "eval/loss": { color: "#e53935", label: "eval loss", markers: true } };

function trxEl(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function trxDuration(s) {
  if (s === null || s === undefined || !isFinite(s) || s < 0) return "–";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const pad = (v) => String(v).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

function trxPageConfig() {
  try {
    const node = document.getElementById("jupyter-config-data");
    return node ? JSON.parse(node.textContent || "{}") : {};
  } catch (e) {
    return {};
  }
}

/** The Jupyter server base URL, or null where there is none we can call (Colab, VS Code). */
function trxBaseUrl() {
  let base = (document.body && document.body.dataset && document.body.dataset.baseUrl) || null;
  if (!base) base = trxPageConfig().baseUrl || null;
  if (!base) return null;
  return base.endsWith("/") ? base : base + "/";
}

function trxCookie(name) {
  const m = document.cookie.match("\\b" + name + "=([^;]*)\\b");
  return m ? decodeURIComponent(m[1]) : null;
}


const TRX_STORES = new Map(); // view_key -> TrxRunStore (initialize and render get different proxies)

class TrxRunStore {
  constructor(model) {
    this.model = model;
    this.points = [];        // [name, step, value], index == seq
    this.logs = [];          // [stream, text] (stream "gap" = marker), the last `cap` kept
    this.nextP = 0;          // next point seq expected
    this.nextL = 0;          // next log seq expected
    this.parkedP = [];       // messages whose points start after a gap
    this.parkedL = [];
    this.views = new Set();
    this.lastPushAt = 0;
    this.pollOut = 0;
    this.terminalAt = 0;
    this.finalPolled = false;
    this.state = { status: model.get("status"), header: model.get("header") || {},
      progress: model.get("progress") || {}, summary: model.get("summary") || {},
      rev: model.get("rev") || 0 };
    this.clockOffset = 0;
    this._onMsg = (msg) => this._message(msg);
    this._onChange = () => this._fromModel();
    model.on("msg:custom", this._onMsg);
    for (const k of TRX_STATE_KEYS) model.on(`change:${k}`, this._onChange);
    const snap = model.get("snapshot");
    if (snap && typeof snap === "object" && snap.type === "append") this._append(snap);
    // after a page reload the snapshot is stale: ask for what came after it
    model.send({ type: "hello", p: this.nextP, l: this.nextL });
    this.timer = setInterval(() => this._tick(), Math.max(250, model.get("poll_ms") || 1000));
  }

  destroy() {
    clearInterval(this.timer);
    this.model.off("msg:custom", this._onMsg);
    for (const k of TRX_STATE_KEYS) this.model.off(`change:${k}`, this._onChange);
  }

  cap() { return Math.max(10, this.model.get("max_log_lines") || 1000); }

  attach(view) { this.views.add(view); }
  detach(view) { this.views.delete(view); }
  _emit(kind, data) { for (const v of this.views) v.onStore(kind, data); }

  get terminal() { return TRX_TERMINAL.has(this.state.status); }

  _fromModel() {
    const rev = this.model.get("rev") || 0;
    if (rev >= this.state.rev) {
      this._applyState({ status: this.model.get("status"), header: this.model.get("header"),
        progress: this.model.get("progress"), summary: this.model.get("summary"), rev });
    } else {
      this._emit("cancel", null);
    }
  }

  _applyState(st) {
    if (!st || (st.rev || 0) < this.state.rev) return;
    this.state = { ...this.state, ...st };
    if (st.progress && typeof st.progress.now === "number") {
      this.clockOffset = st.progress.now - Date.now() / 1000;
    }
    if (this.terminal && !this.terminalAt) this.terminalAt = Date.now();
    this._emit("state", this.state);
  }

  poll() {
    this.pollOut = Date.now();
    this.model.send({ type: "poll", p: this.nextP, l: this.nextL });
  }

  _tick() {
    if (!this.views.size) return;
    const now = Date.now();
    if (this.terminal) {
      // one last pull for trailing log lines, then nothing: finished runs are not polled
      if (!this.finalPolled && now - this.terminalAt > 3500) {
        this.finalPolled = true;
        this.poll();
      }
      return;
    }
    const period = Math.max(250, this.model.get("poll_ms") || 1000);
    if (now - this.lastPushAt < period * 1.5) return; // pushes are flowing: no need to pull
    if (this.pollOut && now - this.pollOut < 10000) return; // one outstanding poll at a time
    this.poll();
  }

  _message(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "append") this._append(msg);
    else if (msg.type === "cancel_ack") this._emit("cancel_ack", msg);
  }

  _append(msg) {
    if (msg.reason === "push") this.lastPushAt = Date.now();
    else if (msg.reason === "poll" || msg.reason === "hello") this.pollOut = 0;
    if (msg.state) this._applyState(msg.state);
    let gap = false;
    if ((msg.points || []).length) gap = this._takePoints(msg) || gap;
    if ((msg.logs || []).length || msg.lskip) gap = this._takeLogs(msg) || gap;
    if (gap && !(this.pollOut && Date.now() - this.pollOut < 10000)) this.poll();
  }

  _takePoints(msg) {
    const p0 = msg.p0 || 0;
    if (p0 > this.nextP) { this.parkedP.push(msg); return true; }
    const fresh = msg.points.slice(this.nextP - p0);
    if (fresh.length) {
      for (const p of fresh) this.points.push(p);
      this.nextP += fresh.length;
      this._emit("points", fresh);
    }
    // parked messages that now connect
    const parked = this.parkedP;
    this.parkedP = [];
    for (const m of parked) {
      if ((m.p0 || 0) + m.points.length > this.nextP) this._takePoints(m);
    }
    return this.parkedP.length > 0;
  }

  _takeLogs(msg) {
    const lines = msg.logs || [];
    let l0 = msg.l0 || 0;
    let start = this.nextL - l0;
    const add = [];
    if (start < 0) {
      if (!msg.lskip) { this.parkedL.push(msg); return true; }
      add.push(["gap", `… ${-start} line${start === -1 ? "" : "s"} not shown here (the full log is in stdout.log / stderr.log)`]);
      start = 0;
    }
    if (l0 + lines.length <= this.nextL && !add.length) return false;
    for (const l of lines.slice(start)) add.push(l);
    this.nextL = Math.max(this.nextL, l0 + lines.length);
    for (const l of add) this.logs.push(l);
    const cap = this.cap();
    if (this.logs.length > cap * 2) this.logs.splice(0, this.logs.length - cap);
    if (add.length) this._emit("logs", add);
    const parked = this.parkedL;
    this.parkedL = [];
    for (const m of parked) {
      if ((m.l0 || 0) + m.logs.length > this.nextL) this._takeLogs(m);
    }
    return this.parkedL.length > 0;
  }
}

function trxStore(model) {
  const key = model.get("view_key") || "";
  let store = TRX_STORES.get(key);
  if (!store) {
    store = new TrxRunStore(model);
    TRX_STORES.set(key, store);
  }
  return store;
}

class TrxRunView {
  constructor(model, el) {
    this.model = model;
    this.el = el;
    this.store = trxStore(model);
    this.follow = true;      // auto-scroll the log while the user is at the bottom
    this.unseen = 0;
    this.pendingLogs = [];
    this.logFrame = 0;
    this.last = {};
    this._build();
    // everything the page already has, then live updates from the store
    this.chart.appendPoints(this.store.points, (name) => name in TRX_LOSS_SERIES);
    for (const [name, , y] of this.store.points) this.last[name] = y;
    this._renderLast();
    this._queueLogs(this.store.logs);
    this.store.attach(this);
    this._render();
    this.timer = setInterval(() => this._renderProgress(), 1000); // elapsed / ETA tick
  }

  destroy() {
    clearInterval(this.timer);
    if (this.logFrame) cancelAnimationFrame(this.logFrame);
    this.store.detach(this);
    this.chart.destroy();
  }

  get state() { return this.store.state; }

  /** Store callbacks: "points" | "logs" | "state" | "cancel" | "cancel_ack". */
  onStore(kind, data) {
    if (kind === "points") {
      this.chart.appendPoints(data, (name) => name in TRX_LOSS_SERIES);
      for (const [name, , y] of data) this.last[name] = y;
      this._renderLast();
      this.root.dataset.nextPoint = String(this.store.nextP);
    } else if (kind === "logs") {
      this._queueLogs(data);
    } else if (kind === "state") {
      this._render();
    } else if (kind === "cancel") {
      this._renderCancel();
    } else if (kind === "cancel_ack") {
      this.cancelling = false;
      this.root.dataset.cancelVia = this.root.dataset.cancelVia || "comm";
      this.cancelMsg.textContent = data.ok ? "cancel requested, stopping…" : data.message;
      if (!data.ok) {
        this.cancelBtn.hidden = false;
        this.yesBtn.disabled = false;
      }
    }
  }

  // -- DOM ---------------------------------------------------------------------------------
  _build() {
    const root = trxEl("div", "trx-run");
    this.root = root;
    const head = trxEl("div", "trx-head");
    this.badge = trxEl("span", "trx-badge");
    this.nameEl = trxEl("span", "trx-name");
    this.idEl = trxEl("code", "trx-id");
    this.metaEl = trxEl("span", "trx-meta");
    head.append(this.badge, this.nameEl, this.idEl, this.metaEl);

    const prog = trxEl("div", "trx-progress");
    this.bar = trxEl("div", "trx-bar");
    this.fill = trxEl("div", "trx-bar-fill");
    this.bar.appendChild(this.fill);
    this.progText = trxEl("div", "trx-progress-text");
    prog.append(this.bar, this.progText);

    const body = trxEl("div", "trx-body");
    const chartBox = trxEl("div", "trx-panel trx-chart-box");
    const ctool = trxEl("div", "trx-toolbar");
    const logLabel = trxEl("label", "trx-log-scale");
    this.logToggle = document.createElement("input");
    this.logToggle.type = "checkbox";
    this.logToggle.className = "trx-log-toggle";
    logLabel.append(this.logToggle, document.createTextNode(" log scale"));
    this.lastEl = trxEl("span", "trx-last");
    ctool.append(trxEl("span", "trx-section-title", "Loss"), this.lastEl, logLabel);
    chartBox.appendChild(ctool);
    this.chart = new TrxLineChart(chartBox, { height: 210 });
    for (const [name, opts] of Object.entries(TRX_LOSS_SERIES)) this.chart.addSeries(name, opts);
    this.logToggle.addEventListener("change", () => this.chart.setLog(this.logToggle.checked));

    const logBox = trxEl("div", "trx-panel trx-logs-box");
    const ltool = trxEl("div", "trx-toolbar");
    this.logCount = trxEl("span", "trx-log-count");
    this.jump = trxEl("button", "trx-jump", "↓ latest");
    this.jump.type = "button";
    this.jump.hidden = true;
    this.jump.addEventListener("click", () => {
      this.follow = true;
      this.unseen = 0;
      this.jump.hidden = true;
      this.logs.scrollTop = this.logs.scrollHeight;
    });
    ltool.append(trxEl("span", "trx-section-title", "Log"), this.logCount, this.jump);
    this.logs = trxEl("div", "trx-logs");
    this.logs.tabIndex = 0;
    this.logs.addEventListener("scroll", () => {
      const atBottom = this.logs.scrollHeight - this.logs.scrollTop - this.logs.clientHeight < 6;
      this.follow = atBottom;
      if (atBottom) { this.unseen = 0; this.jump.hidden = true; }
    });
    logBox.append(ltool, this.logs);
    body.append(chartBox, logBox);

    this.summaryEl = trxEl("div", "trx-summary");
    this.summaryEl.hidden = true;

    const actions = trxEl("div", "trx-actions");
    this.cancelBtn = trxEl("button", "trx-btn trx-cancel", "Cancel run");
    this.cancelBtn.type = "button";
    this.confirm = trxEl("span", "trx-confirm");
    this.confirm.hidden = true;
    this.yesBtn = trxEl("button", "trx-btn trx-danger trx-confirm-yes", "Yes, cancel");
    this.yesBtn.type = "button";
    this.noBtn = trxEl("button", "trx-btn trx-confirm-no", "Keep running");
    this.noBtn.type = "button";
    this.confirm.append(trxEl("span", "trx-confirm-q", "Cancel this run?"), this.yesBtn, this.noBtn);
    this.cancelMsg = trxEl("span", "trx-cancel-msg");
    actions.append(this.cancelBtn, this.confirm, this.cancelMsg);
    this.cancelBtn.addEventListener("click", () => {
      this.cancelBtn.hidden = true;
      this.confirm.hidden = false;
      this.noBtn.focus();
    });
    this.noBtn.addEventListener("click", () => {
      this.confirm.hidden = true;
      this.cancelBtn.hidden = false;
    });
    this.yesBtn.addEventListener("click", () => this._cancel());

    root.append(head, prog, body, this.summaryEl, actions);
    this.el.appendChild(root);
  }

  // -- state -------------------------------------------------------------------------------
  _render() {
    const st = this.state, h = st.header || {}, status = st.status || "pending";
    this.root.dataset.status = status;
    this.badge.textContent = status;
    this.badge.dataset.status = status;
    this.nameEl.textContent = h.name || h.run_id || "run";
    this.idEl.textContent = h.short_id || "";
    this.idEl.title = h.run_id ? `${h.run_id}\n${h.run_dir || ""}` : "";
    this.metaEl.replaceChildren();
    for (const key of ["model", "dataset", "mode", "executor", "platform"]) {
      if (!h[key]) continue;
      const chip = trxEl("span", "trx-chip", h[key]);
      chip.title = key;
      this.metaEl.appendChild(chip);
    }
    this.chart.setXHint((st.progress || {}).total);
    this._renderProgress();
    this._renderSummary();
    this._renderCancel();
  }

  _renderProgress() {
    const p = this.state.progress || {}, status = this.state.status || "pending";
    const step = typeof p.step === "number" ? p.step : null;
    const total = typeof p.total === "number" && p.total > 0 ? p.total : null;
    let frac = total && step !== null ? Math.min(1, step / total) : 0;
    if (status === "completed" && total && step === null) frac = 1;
    this.fill.style.width = (frac * 100).toFixed(1) + "%";
    this.bar.classList.toggle("trx-indeterminate", status === "running" && !total);
    const parts = [];
    if (step !== null) parts.push(total ? `step ${step} / ${total}` : `step ${step}`);
    else parts.push(status === "pending" ? "waiting to start" : total ? `step 0 / ${total}` : "");
    if (typeof p.rate === "number" && p.rate > 0) parts.push(`${p.rate.toFixed(2)} steps/s`);
    if (typeof p.started_at === "number") {
      const end = typeof p.ended_at === "number" ? p.ended_at : Date.now() / 1000 + this.store.clockOffset;
      parts.push(`elapsed ${trxDuration(end - p.started_at)}`);
      if (!TRX_TERMINAL.has(status) && total && step !== null && p.rate > 0) {
        parts.push(`ETA ${trxDuration((total - step) / p.rate)}`);
      }
    }
    this.progText.textContent = parts.filter(Boolean).join(" · ");
  }

  _renderSummary() {
    const s = this.state.summary || {};
    const terminal = TRX_TERMINAL.has(this.state.status);
    this.summaryEl.hidden = !terminal || !Object.keys(s).length;
    if (this.summaryEl.hidden) return;
    const key = JSON.stringify(s);
    if (key === this._summaryKey) return;
    this._summaryKey = key;
    this.summaryEl.replaceChildren();
    const grid = trxEl("div", "trx-summary-grid");
    const add = (label, value, cls) => {
      if (value === null || value === undefined || value === "") return;
      grid.append(trxEl("span", "trx-k", label), trxEl(cls || "span", "trx-v", value));
    };
    add("final train loss", trxFmt(s.final_loss));
    if (s.best_train_loss !== null && s.best_train_loss !== undefined) add("best train loss", trxFmt(s.best_train_loss));
    if (s.best_eval_loss !== null && s.best_eval_loss !== undefined) {
      add("best eval loss", trxFmt(s.best_eval_loss));
      add("last eval loss", trxFmt(s.last_eval_loss));
    }
    add("duration", trxDuration(s.duration_s));
    const cks = s.checkpoints || [];
    if (cks.length) {
      const ck = cks[cks.length - 1];
      add(cks.length > 1 ? `checkpoint (last of ${cks.length})` : "checkpoint",
        `${ck.path} (step ${ck.step})`, "code");
    }
    for (const a of s.artifacts || []) add(`artifact ${a.name || ""}`.trim(), a.path, "code");
    add("folder", s.run_dir, "code");
    if (s.error && this.state.status !== "completed") {
      const err = trxEl("div", "trx-error", s.error);
      this.summaryEl.appendChild(err);
    }
    this.summaryEl.appendChild(grid);
  }

  _renderCancel() {
    const terminal = TRX_TERMINAL.has(this.state.status);
    const cs = this.model.get("cancel_state") || "";
    if (terminal) {
      this.cancelBtn.hidden = true;
      this.confirm.hidden = true;
      this.cancelMsg.textContent = this.state.status === "cancelled" ? "run cancelled" : "";
      return;
    }
    if (this.cancelling) return;
    if (cs === "requested" || cs === "requesting") {
      this.cancelBtn.hidden = true;
      this.confirm.hidden = true;
      this.cancelMsg.textContent = "cancel requested, stopping…";
    }
  }

  _renderLast() {
    const parts = [];
    for (const [name, opts] of Object.entries(TRX_LOSS_SERIES)) {
      if (name in this.last) parts.push(`${opts.label} ${trxFmt(this.last[name])}`);
    }
    this.lastEl.textContent = parts.join(" · ");
  }

  // -- log tail (ring buffer in the DOM) ----------------------------------------------------
  _queueLogs(lines) {
    const cap = Math.max(10, this.model.get("max_log_lines") || 1000);
    for (const l of lines) this.pendingLogs.push(l);
    if (this.pendingLogs.length > cap * 2) this.pendingLogs = this.pendingLogs.slice(-cap);
    if (!this.logFrame) this.logFrame = requestAnimationFrame(() => this._flushLogs());
  }

  _flushLogs() {
    this.logFrame = 0;
    const cap = Math.max(10, this.model.get("max_log_lines") || 1000);
    let lines = this.pendingLogs;
    this.pendingLogs = [];
    if (!lines.length) return;
    const box = this.logs;
    const stick = this.follow;
    if (lines.length >= cap) {
      lines = lines.slice(-cap);
      box.replaceChildren();
    }
    const frag = document.createDocumentFragment();
    for (const [stream, text] of lines) {
      let cls = "trx-line";
      if (stream === "gap") cls += " trx-gap";
      else {
        if (stream === "e") cls += " trx-stderr"; // a thin bar: absl/JAX log INFO to stderr too
        if (TRX_ERR_RE.test(text)) cls += " trx-err";
        else if (TRX_WARN_RE.test(text)) cls += " trx-warn";
      }
      frag.appendChild(trxEl("div", cls, text));
    }
    box.appendChild(frag);
    let extra = box.childElementCount - cap;
    while (extra-- > 0) box.firstChild.remove();
    this.root.dataset.logLines = String(box.childElementCount);
    const total = this.store.nextL;
    this.logCount.textContent = total > box.childElementCount
      ? `last ${box.childElementCount} of ${total} lines` : `${total} line${total === 1 ? "" : "s"}`;
    if (stick) {
      box.scrollTop = box.scrollHeight;
    } else {
      this.unseen += lines.length;
      this.jump.hidden = false;
      this.jump.textContent = `↓ ${this.unseen} new`;
    }
  }

  // -- cancel ------------------------------------------------------------------------------
  async _cancel() {
    this.cancelling = true;
    this.yesBtn.disabled = true;
    this.confirm.hidden = true;
    this.cancelMsg.textContent = "cancelling…";
    const header = this.state.header || {};
    const runId = header.run_id || this.model.get("run_id");
    let viaRest = false;
    if (this.model.get("rest_cancel") !== false) {
      viaRest = await this._restCancel(runId, header.home);
    }
    if (viaRest) {
      this.cancelling = false;
      this.root.dataset.cancelVia = "rest";
      this.cancelMsg.textContent = "cancel requested, stopping…";
      this.store.poll();
      return;
    }
    this.root.dataset.cancelVia = "comm";
    this.model.send({ type: "cancel" });
  }

  /** POST {base}tunixrt/api/runs/{id}/cancel?home=...; works while the kernel is busy. */
  async _restCancel(runId, home) {
    const base = trxBaseUrl();
    if (!base || !runId || typeof fetch !== "function") return false;
    const headers = { "Content-Type": "application/json" };
    const xsrf = trxCookie("_xsrf");
    if (xsrf) headers["X-XSRFToken"] = xsrf;
    const token = trxPageConfig().token;
    if (token) headers["Authorization"] = `token ${token}`;
    try {
      const ctl = typeof AbortController !== "undefined" ? new AbortController() : null;
      const timer = ctl ? setTimeout(() => ctl.abort(), 15000) : null; // server answers in ~1.5 s
      const q = home ? `?home=${encodeURIComponent(home)}` : "";
      const r = await fetch(`${base}tunixrt/api/runs/${encodeURIComponent(runId)}/cancel${q}`, {
        method: "POST", headers, credentials: "same-origin", body: "{}",
        signal: ctl ? ctl.signal : undefined });
      if (timer) clearTimeout(timer);
      return r.ok;
    } catch (e) {
      return false; // no server extension, offline, CORS: use the comm instead
    }
  }
}

function initialize({ model }) {
  // the model was just created (comm_open): start collecting before any view exists
  const store = trxStore(model);
  return () => {
    store.destroy();
    if (TRX_STORES.get(model.get("view_key") || "") === store) TRX_STORES.delete(model.get("view_key") || "");
  };
}

function render({ model, el }) {
  const view = new TrxRunView(model, el);
  return () => view.destroy();
}

export default { initialize, render };
