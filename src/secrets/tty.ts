/**
 * Questions asked on the terminal: passwords without echo, and short answers. Prompts go to stderr so
 * stdout stays clean for `view`, `get` and `decrypt`.
 */
import { UserError } from '../util/errors.js';

/** True when a person can answer: stdin is a terminal and so is stderr, where the question goes. */
export function canPrompt(): boolean {
  return process.stdin.isTTY === true && process.stderr.isTTY === true;
}

export class InterruptedError extends UserError {
  constructor() {
    super('interrupted (Ctrl-C): nothing was changed', 1);
  }
}

/**
 * Reads one line in raw mode, so we decide what is echoed (nothing for passwords) and Ctrl-C is ours to
 * handle: it rejects with InterruptedError instead of killing the process with a temporary file left.
 */
export function readLine(question: string, { echo }: { echo: boolean }): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) throw new UserError('cannot ask a question: stdin is not a terminal');
  // Raw mode before the question shows: what is typed from then on is never echoed by the terminal.
  stdin.setRawMode(true);
  process.stderr.write(question);
  return new Promise((resolvePromise, reject) => {
    let answer = '';
    const finish = (error?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (error) reject(error);
      else resolvePromise(answer);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(new InterruptedError());
        if (ch === '\u0004' && answer === '') return finish(new InterruptedError());
        if (ch === '\u007f' || ch === '\b') {
          if (answer.length > 0) {
            answer = [...answer].slice(0, -1).join('');
            if (echo) process.stderr.write('\b \b');
          }
        } else if (ch === '\u0015') {
          if (echo) process.stderr.write('\b \b'.repeat([...answer].length));
          answer = '';
        } else if (ch >= ' ') {
          answer += ch;
          if (echo) process.stderr.write(ch);
        }
      }
    };
    stdin.resume();
    stdin.on('data', onData);
  });
}

export function promptHidden(question: string): Promise<string> {
  return readLine(question, { echo: false });
}

/** Asks for a new password twice; they must match and not be empty. */
export async function promptNewPassword(what: string): Promise<string> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const first = await promptHidden(`New ${what}: `);
    if (first === '') {
      process.stderr.write('The password cannot be empty.\n');
      continue;
    }
    const second = await promptHidden(`Repeat the new ${what}: `);
    if (first === second) return first;
    process.stderr.write('The two passwords differ; again.\n');
  }
  throw new UserError(`no ${what} set: the passwords were empty or did not match 3 times`);
}

/** Asks until the answer's first letter is one of `choices` (lower case); returns that letter. */
export async function promptChoice(question: string, choices: string[]): Promise<string> {
  for (;;) {
    const answer = (await readLine(question, { echo: true })).trim().toLowerCase();
    const letter = answer.charAt(0);
    if (choices.includes(letter)) return letter;
  }
}
