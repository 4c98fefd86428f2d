/**
 * Text that came from a host (a command's output, an error it printed) shown on the user's terminal.
 * A host's output may hold terminal control sequences: passed raw, `ESC]0;...` retitles the window,
 * `ESC[2J` clears the screen, `\r` overwrites the line that says what failed, and some terminals answer
 * queries by typing into the shell. They are shown escaped instead (`\x1b[2J`), readable and inert.
 */

/** Every C0 control but newline and tab, DEL, and the C1 controls (`\x9b` is a one-byte CSI). */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/** `text` with its control characters written as `\xNN` (newlines and tabs stay as they are). */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
