/**
 * How a script reaches a host. The command line of every process Verdandi starts on a host is short
 * and fixed (`sh -c` + BOOTSTRAP, through sudo with `become`): `ps` on the host never shows a script, a
 * file's content, SQL or an env value, and no argument length limit applies. Everything travels on the
 * channel's standard input, framed:
 *
 *   [sudo password line]      only with become and a password (sudo -S reads it, byte by byte)
 *   <N>\n                     the script's length in bytes
 *   <script: N bytes>
 *   .\n                       end-of-script line
 *   <payload>                 the step's own stdin (file content, SQL, env values), read by the script
 *
 * The bootstrap reads the length with `read` (which takes one byte at a time from a pipe), the script
 * with `head -c N` (GNU head never reads past N bytes of a pipe), then the end-of-script line. Only a
 * script followed by that line is run: a script cut short by a lost connection ends in end of input,
 * and a half script (`rm -rf /srv/app/` cut from `rm -rf /srv/app/tmp`) must never run. The script is
 * run by `eval` in the same shell, so its text never becomes a process argument.
 */
import { Readable } from 'node:stream';
import { words } from '../util/shell.js';

/** Exit status of the bootstrap when the script did not arrive whole (the connection broke). */
export const INCOMPLETE_SCRIPT_EXIT = 125;

export const BOOTSTRAP =
  'IFS= read -r vd_n && vd_s=$(head -c "$vd_n") && IFS= read -r vd_e && [ "$vd_e" = . ] || ' +
  `{ echo "verdandi: the script did not arrive whole" >&2; exit ${INCOMPLETE_SCRIPT_EXIT}; }; eval "$vd_s"`;

/** The fixed command line run on the host (through the login shell of the SSH user). */
export function remoteCommand(become: boolean, withPassword: boolean): string {
  const shell = words('sh', '-c', BOOTSTRAP);
  if (!become) return shell;
  // -H: HOME of root; -n: never prompt (fails fast instead of hanging) unless we have a password.
  return withPassword ? `sudo -S -p '' -H -- ${shell}` : `sudo -n -H -- ${shell}`;
}

/** The argv of the same command for a local `spawn` (no login shell in between). */
export function localArgv(become: boolean): [string, string[]] {
  const shell = ['sh', '-c', BOOTSTRAP];
  return become ? ['sudo', ['-n', '-H', '--', ...shell]] : [shell[0], shell.slice(1)];
}

export type Payload = string | Buffer | NodeJS.ReadableStream;

/** Everything written to the channel's stdin before the payload. */
export function frameHead(script: string, password?: string): Buffer {
  const body = Buffer.from(script, 'utf8');
  const head = `${password !== undefined ? `${password}\n` : ''}${body.length}\n`;
  return Buffer.concat([Buffer.from(head, 'utf8'), body, Buffer.from('.\n')]);
}

/** The whole standard input of one exec, as a stream (the payload may itself be a stream). */
export function frameInput(script: string, payload?: Payload, password?: string): Readable {
  const head = frameHead(script, password);
  async function* chunks(): AsyncGenerator<Buffer> {
    yield head;
    if (payload === undefined) return;
    if (typeof payload === 'string') yield Buffer.from(payload, 'utf8');
    else if (Buffer.isBuffer(payload)) yield payload;
    else for await (const chunk of payload as AsyncIterable<Buffer | string>) yield Buffer.from(chunk);
  }
  return Readable.from(chunks(), { objectMode: false });
}
