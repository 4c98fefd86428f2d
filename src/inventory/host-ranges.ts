/**
 * Ansible's host ranges: `web[01:03]` is web01, web02, web03; `db-[a:c]` is db-a, db-b, db-c;
 * `node[0:10:5]` steps by 5. Several ranges in one name multiply. Numbers keep the width of the start
 * when it has a leading zero.
 */
import { InventoryError, type Origin } from './types.js';

const RANGE = /\[([0-9]+|[a-zA-Z]):([0-9]+|[a-zA-Z])(?::([0-9]+))?\]/;

export function expandHostRange(name: string, origin: Origin): string[] {
  const match = RANGE.exec(name);
  if (!match) return [name];
  const [whole, first, last, stepText] = match;
  const before = name.slice(0, match.index);
  const after = name.slice(match.index + whole.length);
  const step = stepText === undefined ? 1 : Number(stepText);
  if (step < 1)
    throw new InventoryError(origin, `host range ${whole} has a step of 0: use a step of 1 or more`);
  const values: string[] = [];
  if (/^[0-9]+$/.test(first) && /^[0-9]+$/.test(last)) {
    const start = Number(first);
    const end = Number(last);
    if (start > end) {
      throw new InventoryError(origin, `host range ${whole} goes backwards: write the smaller bound first`);
    }
    const width = first.length > 1 && first.startsWith('0') ? first.length : 0;
    for (let n = start; n <= end; n += step) values.push(String(n).padStart(width, '0'));
  } else if (/^[a-zA-Z]$/.test(first) && /^[a-zA-Z]$/.test(last)) {
    const start = first.charCodeAt(0);
    const end = last.charCodeAt(0);
    if (start > end) {
      throw new InventoryError(origin, `host range ${whole} goes backwards: write the smaller bound first`);
    }
    for (let c = start; c <= end; c += step) values.push(String.fromCharCode(c));
  } else {
    throw new InventoryError(origin, `host range ${whole} mixes a number and a letter: use [1:3] or [a:c]`);
  }
  return values.flatMap((value) => expandHostRange(`${before}${value}${after}`, origin));
}
