/**
 * The "Tunix Runs" sidebar: plain DOM in a Lumino widget, updated in place row by row
 * (so a row under the mouse is never replaced while it is being clicked).
 */
import { Clipboard, Notification } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IRunRow, isActive, TunixrtApi } from './api';
import { RunsModel } from './model';

export const LIMIT = 50;
const CLOCK_MS = 30000;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text = ''
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text) {
    node.textContent = text;
  }
  return node;
}

export function formatLoss(value: unknown): string {
  if (typeof value === 'number') {
    return Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3)
      ? value.toExponential(2)
      : String(Number(value.toPrecision(4)));
  }
  return value === null || value === undefined ? '' : String(value);
}

export function formatSteps(row: IRunRow): string {
  if (row.step === null || row.step === undefined) {
    return row.total_steps ? `0/${row.total_steps}` : '';
  }
  return row.total_steps ? `${row.step}/${row.total_steps}` : `${row.step}`;
}

export function formatAgo(t: number | null | undefined, now = Date.now() / 1000): string {
  if (!t) {
    return '';
  }
  const s = Math.max(0, now - t);
  if (s < 60) {
    return `${Math.floor(s)}s ago`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)}m ago`;
  }
  if (s < 86400) {
    return `${Math.floor(s / 3600)}h ago`;
  }
  return new Date(t * 1000).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

class RowView {
  readonly node = el('li', 'jp-TunixRuns-item');
  private readonly _name = el('span', 'jp-TunixRuns-name');
  private readonly _badge = el('span', 'jp-TunixRuns-badge');
  private readonly _bar = el('div', 'jp-TunixRuns-bar');
  private readonly _progress = el('div', 'jp-TunixRuns-progress');
  private readonly _steps = el('span', 'jp-TunixRuns-steps');
  private readonly _loss = el('span', 'jp-TunixRuns-loss');
  private readonly _started = el('span', 'jp-TunixRuns-started');
  private readonly _error = el('div', 'jp-TunixRuns-error');
  readonly cancel = el('button', 'jp-TunixRuns-cancel jp-mod-styled', 'Cancel');

  constructor(readonly id: string) {
    this.node.dataset.runId = id;
    this.node.tabIndex = 0;
    const top = el('div', 'jp-TunixRuns-line');
    top.append(this._name, this._badge);
    this._progress.append(this._bar);
    const meta = el('div', 'jp-TunixRuns-line jp-TunixRuns-meta');
    meta.append(this._steps, this._loss, this._started, this.cancel);
    this.node.append(top, this._progress, meta, this._error);
    this.cancel.type = 'button';
  }

  update(row: IRunRow, cancelling: boolean): void {
    const status = row.status ?? 'unknown';
    const active = isActive(row);
    this.node.dataset.status = status;
    this._name.textContent = row.name || row.run_id;
    this._badge.textContent = status;
    this._badge.dataset.status = status;
    const steps = formatSteps(row);
    this._steps.textContent = steps ? `step ${steps}` : '';
    const loss = formatLoss(row.final_loss);
    this._loss.textContent = loss ? `loss ${loss}` : '';
    this._started.textContent = formatAgo(row.created_at);
    this._started.title = row.created_at
      ? `created ${new Date(row.created_at * 1000).toLocaleString()}`
      : '';
    const fraction =
      row.total_steps && row.step !== null && row.step !== undefined
        ? Math.min(1, row.step / row.total_steps)
        : status === 'completed'
          ? 1
          : 0;
    this._bar.style.width = `${(fraction * 100).toFixed(1)}%`;
    this._progress.hidden = !active && !row.total_steps;
    const showError = !!row.error && ['failed', 'lost', 'timeout'].includes(status);
    this._error.textContent = showError ? String(row.error) : '';
    this._error.hidden = !showError;
    this.cancel.hidden = !active;
    this.cancel.disabled = cancelling;
    this.cancel.textContent = cancelling ? 'Cancelling…' : 'Cancel';
    this.cancel.title = `Stop run ${row.run_id} (SIGTERM, then SIGKILL after its grace period)`;
    const lines = [`${row.name ?? ''} (${row.run_id})`, `status: ${status}`];
    if (row.model) {
      lines.push(`model: ${row.model}${row.dataset ? `, data: ${row.dataset}` : ''}`);
    }
    if (row.error) {
      lines.push(`error: ${row.error}`);
    }
    lines.push(`Click to copy: %tunix_show ${row.run_id}`);
    this.node.title = lines.join('\n');
  }
}

export class RunsPanel extends Widget {
  readonly model: RunsModel;

  constructor(readonly api: TunixrtApi = new TunixrtApi()) {
    super();
    this.addClass('jp-TunixRuns');
    this.model = new RunsModel(api, LIMIT, () => this._render());

    const header = el('div', 'jp-TunixRuns-header');
    const title = el('h2', 'jp-TunixRuns-title', 'Tunix Runs');
    this._live.title = '';
    const refresh = el('button', 'jp-TunixRuns-refresh jp-mod-styled', '↻');
    refresh.type = 'button';
    refresh.title = 'Refresh the run list';
    refresh.addEventListener('click', () => void this.model.refresh());
    header.append(title, this._live, refresh);

    this._homeSelect.title = 'Which tunixrt home to show';
    this._homeSelect.hidden = true;
    this._homeSelect.addEventListener('change', () => {
      this.api.home = this._homeSelect.value;
      this.model.restart();
    });

    this._list.addEventListener('click', event => this._onClick(event));
    this._list.addEventListener('keydown', event => {
      if (event.key === 'Enter' && event.target instanceof HTMLElement) {
        const item = event.target.closest<HTMLElement>('.jp-TunixRuns-item');
        if (item?.dataset.runId) {
          this._copy(item.dataset.runId);
        }
      }
    });
    this.node.append(header, this._homeSelect, this._message, this._list, this._footer);
    this._render();
  }

  dispose(): void {
    this.model.stop();
    this._stopClock();
    super.dispose();
  }

  protected onAfterAttach(): void {
    if (this.isVisible) {
      this._activate();
    }
  }

  protected onAfterShow(): void {
    this._activate();
  }

  protected onAfterHide(): void {
    this.model.stop();
    this._stopClock();
  }

  protected onBeforeDetach(): void {
    this.model.stop();
    this._stopClock();
  }

  private _activate(): void {
    if (!this.model.running) {
      this.model.start();
      void this._loadHomes();
    }
    if (this._clock === null) {
      this._clock = window.setInterval(() => this._render(), CLOCK_MS);
    }
  }

  private _stopClock(): void {
    if (this._clock !== null) {
      clearInterval(this._clock);
      this._clock = null;
    }
  }

  private async _loadHomes(): Promise<void> {
    try {
      const homes = await this.api.homes();
      const select = this._homeSelect;
      select.textContent = '';
      for (const h of homes.homes) {
        const option = el('option', '', `${h.home}  (${h.runs} run${h.runs === 1 ? '' : 's'})`);
        option.value = h.default ? '' : h.home;
        select.append(option);
      }
      select.value = this.api.home;
      select.hidden = homes.homes.length < 2;
    } catch {
      this._homeSelect.hidden = true;
    }
  }

  private _onClick(event: MouseEvent): void {
    const target = event.target as HTMLElement;
    const item = target.closest<HTMLElement>('.jp-TunixRuns-item');
    const id = item?.dataset.runId;
    if (!id) {
      return;
    }
    if (target.closest('.jp-TunixRuns-cancel')) {
      event.stopPropagation();
      this.model.cancel(id).catch(err => {
        Notification.error(`Could not cancel ${id}: ${(err as Error).message ?? err}`, {
          autoClose: 8000
        });
      });
      return;
    }
    this._copy(id);
  }

  private _copy(id: string): void {
    const text = `%tunix_show ${id}`;
    Clipboard.copyToSystem(text);
    Notification.info(`Copied ${text}`, { autoClose: 2500 });
    const view = this._views.get(id);
    if (view) {
      view.node.classList.add('jp-mod-copied');
      window.setTimeout(() => view.node.classList.remove('jp-mod-copied'), 800);
    }
  }

  private _render(): void {
    const m = this.model;
    this._live.dataset.mode = m.mode;
    this._live.textContent = { live: 'live', polling: 'polling', connecting: '…', stopped: '' }[
      m.mode
    ];
    this._live.title = {
      live: 'Updating live from the server',
      polling: 'Live stream unavailable: refreshing every 2 s',
      connecting: 'Connecting…',
      stopped: ''
    }[m.mode];

    const rows = m.sorted();
    const seen = new Set<string>();
    let prev: HTMLElement | null = null;
    for (const row of rows) {
      seen.add(row.run_id);
      let view = this._views.get(row.run_id);
      if (!view) {
        view = new RowView(row.run_id);
        this._views.set(row.run_id, view);
      }
      view.update(row, m.cancelling.has(row.run_id));
      const expected: Element | null = prev ? prev.nextElementSibling : this._list.firstElementChild;
      if (expected !== view.node) {
        this._list.insertBefore(view.node, expected);
      }
      prev = view.node;
    }
    for (const [id, view] of this._views) {
      if (!seen.has(id)) {
        view.node.remove();
        this._views.delete(id);
      }
    }

    const home = m.homeLabel || this.api.home || 'the default home';
    if (m.error) {
      this._message.textContent = m.error;
      this._message.className = 'jp-TunixRuns-message jp-mod-error';
      this._message.hidden = false;
    } else if (!rows.length && m.mode !== 'connecting' && m.mode !== 'stopped') {
      this._message.textContent =
        `No runs yet in ${home}. In a notebook: %load_ext tunixrt, then ` +
        '%tunix_run --max-steps 40';
      this._message.className = 'jp-TunixRuns-message';
      this._message.hidden = false;
    } else {
      this._message.hidden = true;
    }
    const active = rows.filter(isActive).length;
    this._footer.textContent =
      `${rows.length < m.total ? `${rows.length} of ` : ''}${m.total} run${m.total === 1 ? '' : 's'}` +
      (active ? ` · ${active} active` : '') +
      (m.homeLabel ? ` · ${m.homeLabel}` : '');
    this._footer.title = m.homeLabel ? `tunixrt home: ${m.homeLabel}` : '';
  }

  private readonly _views = new Map<string, RowView>();
  private readonly _list = el('ul', 'jp-TunixRuns-list');
  private readonly _live = el('span', 'jp-TunixRuns-live');
  private readonly _message = el('div', 'jp-TunixRuns-message');
  private readonly _footer = el('div', 'jp-TunixRuns-footer');
  private readonly _homeSelect = el('select', 'jp-TunixRuns-home jp-mod-styled');
  private _clock: number | null = null;
}
