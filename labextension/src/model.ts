/**
 * The sidebar's data: the newest runs of one home, kept current from the server's event
 * stream, or by polling `GET runs` every 2 s while the stream is unavailable.
 */
import { IRunRow, IStreamMessage, TERMINAL_STATUSES, TunixrtApi } from './api';

export type Mode = 'stopped' | 'connecting' | 'live' | 'polling';

export const POLL_MS = 2000;
export const STREAM_RETRY_MS = 15000;

export class RunsModel {
  readonly rows = new Map<string, IRunRow>();
  total = 0;
  homeLabel = '';
  mode: Mode = 'stopped';
  error = '';
  /** Runs whose Cancel was pressed and which have not reached a final status yet. */
  readonly cancelling = new Set<string>();

  constructor(
    readonly api: TunixrtApi,
    readonly limit: number,
    private readonly _changed: () => void
  ) {}

  get running(): boolean {
    return this._running;
  }

  /** Newest first (run ids sort by creation time). */
  sorted(): IRunRow[] {
    return [...this.rows.values()].sort((a, b) => {
      const ta = a.created_at ?? 0;
      const tb = b.created_at ?? 0;
      return tb - ta || (a.run_id < b.run_id ? 1 : a.run_id > b.run_id ? -1 : 0);
    });
  }

  start(): void {
    if (this._running) {
      return;
    }
    this._running = true;
    this._setMode('connecting');
    void this._connect();
  }

  stop(): void {
    this._running = false;
    this._abort?.abort();
    this._abort = null;
    this._stopPolling();
    if (this._retry !== null) {
      clearTimeout(this._retry);
      this._retry = null;
    }
    this._setMode('stopped');
  }

  /** Start over, e.g. for another home. */
  restart(): void {
    this.stop();
    this.rows.clear();
    this.total = 0;
    this.cancelling.clear();
    this._changed();
    this.start();
  }

  /** One `GET runs` (the fallback's poll, and the refresh button). */
  async refresh(): Promise<void> {
    try {
      const out = await this.api.listRuns(this.limit);
      this.rows.clear();
      for (const row of out.rows) {
        this.rows.set(row.run_id, row);
      }
      this.total = out.total;
      this.homeLabel = out.home;
      this.error = '';
      this._settleCancels();
    } catch (err) {
      this.error = `Could not list runs: ${(err as Error).message ?? err}`;
    }
    this._changed();
  }

  async cancel(runId: string): Promise<void> {
    this.cancelling.add(runId);
    this._changed();
    try {
      const reply = await this.api.cancel(runId);
      const row = this.rows.get(runId);
      if (row && reply.status) {
        this.rows.set(runId, { ...row, status: reply.status });
      }
      this._settleCancels();
    } catch (err) {
      this.cancelling.delete(runId);
      throw err;
    } finally {
      this._changed();
    }
  }

  private async _connect(): Promise<void> {
    const controller = new AbortController();
    this._abort = controller;
    try {
      await this.api.stream(this.limit, m => this._onMessage(m), controller.signal);
    } catch (err) {
      if (controller.signal.aborted) {
        return;
      }
      this.error = '';
      console.debug('tunixrt: event stream unavailable, polling instead', err);
    }
    if (!this._running || controller.signal.aborted) {
      return;
    }
    // The stream ended or failed (server restarting, a proxy without streaming):
    // poll, and try the stream again later.
    this._startPolling();
    this._retry = window.setTimeout(() => {
      this._retry = null;
      if (this._running) {
        void this._connect();
      }
    }, STREAM_RETRY_MS);
  }

  private _onMessage(message: IStreamMessage): void {
    if (message.type === 'snapshot') {
      this.rows.clear();
      this._stopPolling();
      this._setMode('live', false);
      this.error = '';
    }
    for (const row of message.rows) {
      this.rows.set(row.run_id, row);
    }
    for (const id of message.removed ?? []) {
      this.rows.delete(id);
    }
    if (this.rows.size > this.limit) {
      for (const row of this.sorted().slice(this.limit)) {
        this.rows.delete(row.run_id);
      }
    }
    this.total = message.total;
    if (message.home !== undefined) {
      this.homeLabel = message.home;
    }
    this._settleCancels();
    this._changed();
  }

  private _settleCancels(): void {
    for (const id of [...this.cancelling]) {
      const row = this.rows.get(id);
      if (!row || TERMINAL_STATUSES.has(row.status ?? '')) {
        this.cancelling.delete(id);
      }
    }
  }

  private _startPolling(): void {
    this._setMode('polling');
    if (this._poll !== null) {
      return;
    }
    void this.refresh();
    this._poll = window.setInterval(() => void this.refresh(), POLL_MS);
  }

  private _stopPolling(): void {
    if (this._poll !== null) {
      clearInterval(this._poll);
      this._poll = null;
    }
  }

  private _setMode(mode: Mode, notify = true): void {
    if (this.mode !== mode) {
      this.mode = mode;
      if (notify) {
        this._changed();
      }
    }
  }

  private _running = false;
  private _abort: AbortController | null = null;
  private _poll: number | null = null;
  private _retry: number | null = null;
}
