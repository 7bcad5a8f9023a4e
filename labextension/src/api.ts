/**
 * The tunixrt server extension's REST + event-stream API (`{baseUrl}tunixrt/api/`).
 *
 * Every request goes through `ServerConnection.makeRequest`, which adds the token and the
 * XSRF header, so POST (cancel) works with JupyterLab's own authentication.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** One run as the list endpoints return it (the catalog's columns). */
export interface IRunRow {
  run_id: string;
  name: string | null;
  status: string | null;
  model?: string | null;
  dataset?: string | null;
  step: number | null;
  total_steps: number | null;
  final_loss: number | string | null;
  best_eval_loss?: number | string | null;
  created_at: number | null;
  started_at?: number | null;
  ended_at?: number | null;
  error?: string | null;
  [key: string]: unknown;
}

export interface IRunList {
  rows: IRunRow[];
  total: number;
  home: string;
  source: string;
}

export interface IStreamMessage {
  type: 'snapshot' | 'update';
  rows: IRunRow[];
  removed?: string[];
  total: number;
  home?: string;
}

export interface ICancelReply {
  run_id: string;
  status: string | null;
  cancelling: boolean;
}

export interface IHomes {
  default: string;
  homes: { home: string; dir: string; default: boolean; runs: number }[];
}

export const TERMINAL_STATUSES = new Set([
  'completed',
  'failed',
  'cancelled',
  'timeout',
  'lost'
]);

export function isActive(row: IRunRow): boolean {
  return !TERMINAL_STATUSES.has(row.status ?? '');
}

type Params = Record<string, string | number>;

export class TunixrtApi {
  readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings();
  /** The home to show: '' is the server's default, else a path relative to its root. */
  home = '';

  url(path: string, params: Params = {}): string {
    const query: Params = { ...params };
    if (this.home) {
      query.home = this.home;
    }
    return (
      URLExt.join(this.settings.baseUrl, 'tunixrt', 'api', path) +
      URLExt.objectToQueryString(query)
    );
  }

  async request<T>(path: string, init: RequestInit = {}, params: Params = {}): Promise<T> {
    const response = await ServerConnection.makeRequest(
      this.url(path, params),
      init,
      this.settings
    );
    const text = await response.text();
    let data: any = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const message = (data && data.message) || `${response.status} ${response.statusText}`;
      throw new ServerConnection.ResponseError(response, message);
    }
    return data as T;
  }

  listRuns(limit: number): Promise<IRunList> {
    return this.request<IRunList>('runs', {}, { limit, sort: '-created_at' });
  }

  cancel(runId: string): Promise<ICancelReply> {
    return this.request<ICancelReply>(`runs/${encodeURIComponent(runId)}/cancel`, {
      method: 'POST'
    });
  }

  homes(): Promise<IHomes> {
    return this.request<IHomes>('homes');
  }

  /**
   * Read the `events` Server-Sent Events stream until it ends (resolves) or fails
   * (rejects). `fetch` rather than `EventSource`, so the request carries JupyterLab's
   * auth headers like every other call.
   */
  async stream(
    limit: number,
    onMessage: (message: IStreamMessage) => void,
    signal: AbortSignal
  ): Promise<void> {
    const response = await ServerConnection.makeRequest(
      this.url('events', { limit }),
      { signal, headers: { Accept: 'text/event-stream' } },
      this.settings
    );
    if (!response.ok || !response.body) {
      throw new ServerConnection.ResponseError(response);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        return;
      }
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter(line => line.startsWith('data:'))
          .map(line => line.slice(5).replace(/^ /, ''))
          .join('\n');
        if (data) {
          onMessage(JSON.parse(data) as IStreamMessage);
        }
      }
    }
  }
}
