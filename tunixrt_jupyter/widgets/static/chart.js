// tunixrt: shared canvas line chart. Concatenated (by Python) in front of run_widget.js and
// runs_widget.js so each widget is one self-contained ES module: no CDN, no bundler.
//
// Drawing is incremental: new points are drawn as new segments on top of what is already on
// the canvas; only an axis change (a point outside the current bounds, a resize, log toggle)
// redraws everything, and that happens inside one animation frame, so there is no flicker.
// Large series are decimated to min/max per pixel column on full redraws.

const TRX_PALETTE = [
  "#1e88e5", "#e53935", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#d81b60",
  "#3949ab", "#c0ca33",
];

function trxFmt(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  if (a >= 100) return v.toFixed(1);
  return v.toFixed(4);
}

function trxTickFmt(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(0);
  return String(+v.toPrecision(4));
}

function trxNiceStep(range, count) {
  const raw = range / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

function trxTicks(lo, hi, count) {
  if (!(hi > lo)) return [lo];
  const step = trxNiceStep(hi - lo, count);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return out;
}

function trxLogTicks(lo, hi) {
  // lo/hi are log10 values
  const out = [];
  const span = hi - lo;
  const mults = span < 1.2 ? [1, 2, 3, 5, 7] : span < 3 ? [1, 2, 5] : [1];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    for (const m of mults) {
      const v = Math.log10(m) + e;
      if (v >= lo - 1e-9 && v <= hi + 1e-9) out.push(v);
    }
  }
  return out;
}

class TrxLineChart {
  constructor(parent, opts = {}) {
    this.opts = { height: 220, xLabel: "step", emptyText: "waiting for metrics…", ...opts };
    this.root = document.createElement("div");
    this.root.className = "trx-chart";
    this.plot = document.createElement("div");
    this.plot.className = "trx-chart-plot";
    this.plot.style.height = this.opts.height + "px";
    this.canvas = document.createElement("canvas");
    this.overlay = document.createElement("canvas");
    this.overlay.className = "trx-chart-overlay";
    this.tip = document.createElement("div");
    this.tip.className = "trx-chart-tip";
    this.tip.hidden = true;
    this.emptyEl = document.createElement("div");
    this.emptyEl.className = "trx-chart-empty";
    this.emptyEl.textContent = this.opts.emptyText;
    this.legend = document.createElement("div");
    this.legend.className = "trx-chart-legend";
    this.plot.append(this.canvas, this.overlay, this.tip, this.emptyEl);
    this.root.append(this.plot, this.legend);
    parent.appendChild(this.root);

    this.series = new Map(); // name -> {xs, ys, color, label, visible, dash, drawn, markers}
    this.logScale = false;
    this.xHint = null;
    this.bounds = null; // {x0, x1, y0, y1} (y in log10 when logScale)
    this.total = 0;
    this.needFull = true;
    this.frame = 0;
    this.size = { w: 0, h: 0, dpr: 1 };
    this.root.dataset.points = "0";

    this._onMove = (e) => this._hover(e);
    this._onLeave = () => this._unhover();
    this.overlay.addEventListener("mousemove", this._onMove);
    this.overlay.addEventListener("mouseleave", this._onLeave);
    if (typeof ResizeObserver !== "undefined") {
      this.resizer = new ResizeObserver(() => { this.needFull = true; this.schedule(); });
      this.resizer.observe(this.plot);
    }
  }

  destroy() {
    if (this.frame) cancelAnimationFrame(this.frame);
    if (this.resizer) this.resizer.disconnect();
    this.overlay.removeEventListener("mousemove", this._onMove);
    this.overlay.removeEventListener("mouseleave", this._onLeave);
    this.root.remove();
  }

  addSeries(name, opts = {}) {
    if (this.series.has(name)) return this.series.get(name);
    const s = {
      name, xs: [], ys: [], drawn: 0, visible: opts.visible !== false,
      color: opts.color || TRX_PALETTE[this.series.size % TRX_PALETTE.length],
      label: opts.label || name, dash: opts.dash || null, markers: !!opts.markers,
    };
    this.series.set(name, s);
    this._legend();
    return s;
  }

  clear() {
    this.series.clear();
    this.total = 0;
    this.bounds = null;
    this.needFull = true;
    this.root.dataset.points = "0";
    this._legend();
    this.schedule();
  }

  /** points: [[seriesName, x, y], ...]; unknown series are added hidden unless autoShow. */
  appendPoints(points, autoShow) {
    for (const p of points) {
      const [name, x, y] = p;
      if (typeof x !== "number" || typeof y !== "number" || !isFinite(y)) continue;
      let s = this.series.get(name);
      if (!s) s = this.addSeries(name, { visible: autoShow ? autoShow(name) : true });
      s.xs.push(x);
      s.ys.push(y);
      this.total++;
    }
    this.root.dataset.points = String(this.total);
    this._legend();
    this.schedule();
  }

  setSeries(name, xs, ys, opts) {
    const s = this.addSeries(name, opts);
    this.total += xs.length - s.xs.length;
    s.xs = xs.slice();
    s.ys = ys.slice();
    s.drawn = 0;
    this.needFull = true;
    this.root.dataset.points = String(this.total);
    this._legend();
    this.schedule();
  }

  setXHint(x) {
    const v = typeof x === "number" && x > 0 ? x : null;
    if (v !== this.xHint) {
      this.xHint = v;
      this.bounds = null;
      this.needFull = true;
      this.schedule();
    }
  }

  setLog(on) {
    this.logScale = !!on;
    this.bounds = null;
    this.needFull = true;
    this.schedule();
  }

  setVisible(name, on) {
    const s = this.series.get(name);
    if (!s) return;
    s.visible = on;
    this.bounds = null;
    this.needFull = true;
    this._legend();
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this._draw(); });
  }

  // -- internals ---------------------------------------------------------------------------
  _legend() {
    const withData = [...this.series.values()].filter((s) => s.xs.length > 0);
    this.emptyEl.hidden = withData.some((s) => s.visible);
    const key = withData.map((s) => `${s.name}:${s.visible}`).join("|");
    if (key === this._legendKey) return;
    this._legendKey = key;
    this.legend.replaceChildren();
    for (const s of withData) {
      const item = document.createElement("button");
      item.type = "button";
      item.className = "trx-chart-legend-item" + (s.visible ? "" : " trx-off");
      item.title = s.visible ? "hide this series" : "show this series";
      const sw = document.createElement("span");
      sw.className = "trx-chart-swatch";
      sw.style.background = s.color;
      if (s.dash) sw.style.opacity = "0.6";
      item.append(sw, document.createTextNode(s.label));
      item.addEventListener("click", () => this.setVisible(s.name, !s.visible));
      this.legend.appendChild(item);
    }
  }

  _ty(y) { return this.logScale ? (y > 0 ? Math.log10(y) : null) : y; }

  _dataBounds() {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const s of this.series.values()) {
      if (!s.visible) continue;
      for (let i = 0; i < s.xs.length; i++) {
        const y = this._ty(s.ys[i]);
        if (y === null) continue;
        const x = s.xs[i];
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
    return isFinite(x0) ? { x0, x1, y0, y1 } : null;
  }

  _fits(b, x, y) {
    return x >= b.x0 && x <= b.x1 && y >= b.y0 && y <= b.y1;
  }

  _newBounds(d) {
    let { x0, x1, y0, y1 } = d;
    if (this.xHint && this.xHint > x1) x1 = this.xHint;
    else if (x1 > x0) x1 = x1 + (x1 - x0) * 0.15;
    if (x1 <= x0) x1 = x0 + 1;
    x0 = Math.min(x0, 0) === 0 && x0 >= 0 ? 0 : x0;
    let span = y1 - y0;
    if (!(span > 0)) span = Math.abs(y1) * 0.1 || 1;
    y0 -= span * 0.15;
    y1 += span * 0.08;
    return { x0, x1, y0, y1 };
  }

  _resize() {
    const w = Math.max(0, Math.floor(this.plot.clientWidth));
    const h = Math.max(0, Math.floor(this.plot.clientHeight));
    const dpr = window.devicePixelRatio || 1;
    if (w === this.size.w && h === this.size.h && dpr === this.size.dpr) return false;
    this.size = { w, h, dpr };
    for (const c of [this.canvas, this.overlay]) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
      c.style.width = w + "px";
      c.style.height = h + "px";
    }
    return true;
  }

  _area() {
    return { l: 52, r: this.size.w - 12, t: 8, b: this.size.h - 24 };
  }

  _px(x) {
    const a = this._area(), b = this.bounds;
    return a.l + ((x - b.x0) / (b.x1 - b.x0)) * (a.r - a.l);
  }

  _py(ty) {
    const a = this._area(), b = this.bounds;
    return a.b - ((ty - b.y0) / (b.y1 - b.y0)) * (a.b - a.t);
  }

  _draw() {
    if (this._resize()) this.needFull = true;
    if (this.size.w < 20 || this.size.h < 20) return; // hidden (collapsed output, tab)
    const d = this._dataBounds();
    if (!d) {
      const ctx = this.canvas.getContext("2d");
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
      this.bounds = null;
      return;
    }
    if (!this.bounds || !this._fits(this.bounds, d.x0, d.y0) || !this._fits(this.bounds, d.x1, d.y1)) {
      this.bounds = this._newBounds(d);
      this.needFull = true;
    }
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(this.size.dpr, 0, 0, this.size.dpr, 0, 0);
    if (this.needFull) {
      this.needFull = false;
      ctx.clearRect(0, 0, this.size.w, this.size.h);
      this._axes(ctx);
      for (const s of this.series.values()) {
        s.drawn = 0;
        if (s.visible) this._drawSeries(ctx, s, 0, true);
        s.drawn = s.xs.length;
      }
    } else {
      for (const s of this.series.values()) {
        if (s.visible && s.drawn < s.xs.length) this._drawSeries(ctx, s, Math.max(0, s.drawn - 1), false);
        s.drawn = s.xs.length;
      }
    }
  }

  _axes(ctx) {
    const a = this._area(), b = this.bounds;
    const style = getComputedStyle(this.root);
    const fg = style.color || "#333";
    ctx.save();
    ctx.font = "11px " + (style.fontFamily || "sans-serif");
    ctx.fillStyle = fg;
    ctx.strokeStyle = fg;
    ctx.globalAlpha = 0.12;
    ctx.lineWidth = 1;
    const yt = this.logScale ? trxLogTicks(b.y0, b.y1) : trxTicks(b.y0, b.y1, 5);
    const xt = trxTicks(b.x0, b.x1, Math.max(2, Math.floor((a.r - a.l) / 90)));
    ctx.beginPath();
    for (const t of yt) { const y = Math.round(this._py(t)) + 0.5; ctx.moveTo(a.l, y); ctx.lineTo(a.r, y); }
    for (const t of xt) { const x = Math.round(this._px(t)) + 0.5; ctx.moveTo(x, a.t); ctx.lineTo(x, a.b); }
    ctx.stroke();
    ctx.globalAlpha = 0.45;
    ctx.strokeRect(a.l + 0.5, a.t + 0.5, a.r - a.l, a.b - a.t);
    ctx.globalAlpha = 0.8;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const t of yt) {
      const label = this.logScale ? trxTickFmt(Math.pow(10, t)) : trxTickFmt(t);
      ctx.fillText(label, a.l - 4, this._py(t));
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const t of xt) ctx.fillText(trxTickFmt(t), this._px(t), a.b + 4);
    ctx.restore();
  }

  _drawSeries(ctx, s, from, full) {
    const a = this._area();
    ctx.save();
    ctx.beginPath();
    ctx.rect(a.l, a.t, a.r - a.l, a.b - a.t);
    ctx.clip();
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.lineWidth = 1.6;
    ctx.lineJoin = "round";
    if (s.dash) ctx.setLineDash(s.dash);
    const n = s.xs.length;
    ctx.beginPath();
    let pen = false;
    const decimate = full && n - from > (a.r - a.l) * 3;
    if (decimate) {
      // min/max per pixel column keeps spikes visible at any length
      let col = null, lo = 0, hi = 0, first = 0, last = 0;
      const flush = () => {
        if (col === null) return;
        if (!pen) { ctx.moveTo(col, first); pen = true; } else ctx.lineTo(col, first);
        ctx.lineTo(col, lo); ctx.lineTo(col, hi); ctx.lineTo(col, last);
      };
      for (let i = from; i < n; i++) {
        const ty = this._ty(s.ys[i]);
        if (ty === null) continue;
        const px = Math.round(this._px(s.xs[i])), py = this._py(ty);
        if (px !== col) { flush(); col = px; lo = hi = first = last = py; } else {
          if (py < lo) lo = py;
          if (py > hi) hi = py;
          last = py;
        }
      }
      flush();
    } else {
      for (let i = from; i < n; i++) {
        const ty = this._ty(s.ys[i]);
        if (ty === null) { pen = false; continue; }
        const px = this._px(s.xs[i]), py = this._py(ty);
        if (!pen) { ctx.moveTo(px, py); pen = true; } else ctx.lineTo(px, py);
      }
    }
    ctx.stroke();
    if (s.markers && !decimate && n - from < 400) {
      ctx.setLineDash([]);
      for (let i = from; i < n; i++) {
        const ty = this._ty(s.ys[i]);
        if (ty === null) continue;
        ctx.beginPath();
        ctx.arc(this._px(s.xs[i]), this._py(ty), 2.4, 0, Math.PI * 2);
        ctx.fill();
      }
    }
    ctx.restore();
  }

  _nearest(s, x) {
    const xs = s.xs;
    let lo = 0, hi = xs.length - 1;
    if (hi < 0) return -1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] < x) lo = mid + 1; else hi = mid;
    }
    if (lo > 0 && Math.abs(xs[lo - 1] - x) <= Math.abs(xs[lo] - x)) lo -= 1;
    return lo;
  }

  _hover(e) {
    if (!this.bounds) return;
    const rect = this.overlay.getBoundingClientRect();
    const mx = e.clientX - rect.left, my = e.clientY - rect.top;
    const a = this._area(), b = this.bounds;
    if (mx < a.l || mx > a.r) { this._unhover(); return; }
    const x = b.x0 + ((mx - a.l) / (a.r - a.l)) * (b.x1 - b.x0);
    const hits = [];
    let best = null;
    for (const s of this.series.values()) {
      if (!s.visible || !s.xs.length) continue;
      const i = this._nearest(s, x);
      if (i < 0) continue;
      const ty = this._ty(s.ys[i]);
      if (ty === null) continue;
      const px = this._px(s.xs[i]);
      if (Math.abs(px - mx) > 40) continue;
      hits.push({ s, i, px, py: this._py(ty) });
      if (!best || Math.abs(px - mx) < Math.abs(best.px - mx)) best = { px };
    }
    const ctx = this.overlay.getContext("2d");
    ctx.setTransform(this.size.dpr, 0, 0, this.size.dpr, 0, 0);
    ctx.clearRect(0, 0, this.size.w, this.size.h);
    if (!hits.length) { this.tip.hidden = true; return; }
    ctx.save();
    ctx.strokeStyle = getComputedStyle(this.root).color || "#333";
    ctx.globalAlpha = 0.35;
    ctx.beginPath();
    ctx.moveTo(Math.round(best.px) + 0.5, a.t);
    ctx.lineTo(Math.round(best.px) + 0.5, a.b);
    ctx.stroke();
    ctx.globalAlpha = 1;
    for (const h of hits) {
      ctx.fillStyle = h.s.color;
      ctx.beginPath();
      ctx.arc(h.px, h.py, 3.5, 0, Math.PI * 2);
      ctx.fill();
    }
    ctx.restore();
    this.tip.replaceChildren();
    const steps = [...new Set(hits.map((h) => h.s.xs[h.i]))];
    const head = document.createElement("div");
    head.className = "trx-chart-tip-head";
    head.textContent = `${this.opts.xLabel} ${steps.join(", ")}`;
    this.tip.appendChild(head);
    for (const h of hits) {
      const row = document.createElement("div");
      const sw = document.createElement("span");
      sw.className = "trx-chart-swatch";
      sw.style.background = h.s.color;
      row.append(sw, document.createTextNode(`${h.s.label}: ${trxFmt(h.s.ys[h.i])}`));
      if (steps.length > 1) row.append(document.createTextNode(` @${h.s.xs[h.i]}`));
      this.tip.appendChild(row);
    }
    this.tip.hidden = false;
    const tw = this.tip.offsetWidth, th = this.tip.offsetHeight;
    let left = mx + 12, top = my - th - 8;
    if (left + tw > this.size.w) left = mx - tw - 12;
    if (top < 0) top = my + 12;
    this.tip.style.left = Math.max(0, left) + "px";
    this.tip.style.top = Math.max(0, top) + "px";
  }

  _unhover() {
    this.tip.hidden = true;
    const ctx = this.overlay.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
  }
}
