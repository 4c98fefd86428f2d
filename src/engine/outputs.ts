/** The consumers every command that walks hosts shows its run with: the terminal, and --json. */
import { RunEvents } from './events.js';
import { JsonOutput } from './json-output.js';
import { type TerminalOptions, TerminalOutput } from './report.js';

/** A run's event stream, shown on the terminal (lines or a spinner) and, with `json`, as one document. */
export async function runOutputs(o: TerminalOptions): Promise<RunEvents> {
  const terminal = await TerminalOutput.create(o);
  const events = new RunEvents().on(terminal.handle, () => terminal.stop());
  if (o.json) events.on(new JsonOutput(o.out).handle);
  return events;
}
