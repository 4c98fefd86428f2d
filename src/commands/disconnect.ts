/**
 * `verdandi disconnect`: closes every SSH connection the connection keeper of this user holds (see
 * `--persist`, src/connection/keeper.ts) and stops it, before its idle timeout would.
 */
import { stopKeeper } from '../connection/kept.js';

export async function disconnect(): Promise<number> {
  const closed = await stopKeeper();
  if (closed === undefined) process.stdout.write('no connection keeper runs: nothing to close\n');
  else {
    const what = closed === 1 ? '1 kept connection' : `${closed} kept connections`;
    process.stdout.write(`closed ${what}; the connection keeper stopped\n`);
  }
  return 0;
}
