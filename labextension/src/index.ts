/**
 * tunixrt-jupyter: the "Tunix Runs" sidebar for JupyterLab 4 (and Notebook 7).
 *
 * Needs the `tunixrt_jupyter.server` jupyter_server extension (enabled when the Python
 * package is installed), which serves `{baseUrl}tunixrt/api/`.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';

import { TunixrtApi } from './api';
import { RunsPanel } from './panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" style="fill:none" stroke="#616161" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" d="M3.5 3v17.5H21"/>
  <path class="jp-icon-brand0" style="fill:none" stroke="#1976d2" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round" d="M6.5 5c1.2 5.5 2.7 8.4 5 9.8 2.3 1.4 5 1.6 8.5 1.7"/>
  <circle class="jp-icon-brand0" fill="#1976d2" cx="19.5" cy="6.5" r="2.2"/>
</svg>`;

export const tunixIcon = new LabIcon({ name: 'tunixrt:runs', svgstr: ICON_SVG });

const PANEL_ID = 'tunixrt-runs';
const COMMAND = 'tunixrt:show-runs';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'tunixrt-jupyter:runs-sidebar',
  description: 'Tunix Runs: the live list of tunixrt training runs, with Cancel.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ) => {
    const panel = new RunsPanel(new TunixrtApi());
    panel.id = PANEL_ID;
    panel.title.icon = tunixIcon;
    panel.title.caption = 'Tunix Runs';
    app.shell.add(panel, 'left', { rank: 650 });
    if (restorer) {
      restorer.add(panel, PANEL_ID);
    }
    app.commands.addCommand(COMMAND, {
      label: 'Show Tunix Runs',
      caption: 'Open the Tunix Runs sidebar',
      icon: tunixIcon,
      execute: () => app.shell.activateById(PANEL_ID)
    });
    if (palette) {
      palette.addItem({ command: COMMAND, category: 'Tunix' });
    }
  }
};

export default plugin;
