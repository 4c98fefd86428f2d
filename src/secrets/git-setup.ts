/**
 * `verdandi secrets git-setup`: makes git friendly to encrypted secrets in this clone.
 *
 * - `git diff` shows decrypted diffs of `secrets/*.yml.asc`: a textconv diff driver
 *   (`.gitattributes`: `secrets/*.yml.asc diff=verdandi-secrets`; local git config runs
 *   `verdandi secrets textconv FILE`). The decrypted text is never cached: git's `cachetextconv` would
 *   store it in `refs/notes/textconv`, in clear.
 * - a pre-commit hook refuses decrypted secrets (`secrets/*.yml`), password files (`*.vault-password`)
 *   and a `secrets/*.yml.asc` that is not an armored OpenPGP message.
 * - `.gitignore` gets the lines that keep those files out.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { UserError } from '../util/errors.js';
import { words } from '../util/shell.js';

export const DIFF_DRIVER = 'verdandi-secrets';
export const ATTRIBUTES_LINE = `secrets/*.yml.asc diff=${DIFF_DRIVER}`;
export const IGNORED_LINES = [
  '*.vault-password',
  'secrets/*.yml',
  'secrets/*.decrypted*',
  'secrets/.tmp*',
  'secrets/*.lock*',
];
const HOOK_MARKER = '# verdandi-secrets pre-commit hook';

export const PRE_COMMIT_HOOK = `#!/bin/sh
${HOOK_MARKER} (installed by \`verdandi secrets git-setup\`).
# Refuses to commit decrypted secrets, vault password files, or a secrets/*.yml.asc that is not encrypted.
git -c core.quotePath=false diff --cached --name-only --diff-filter=ACMR | {
  status=0
  while IFS= read -r path; do
    case "$path" in
      *.vault-password)
        echo "verdandi: refusing to commit the vault password file $path" >&2
        status=1 ;;
      secrets/*.yml | */secrets/*.yml | secrets/*.decrypted* | */secrets/*.decrypted*)
        echo "verdandi: refusing to commit the decrypted secrets file $path" >&2
        status=1 ;;
      secrets/*.yml.asc | */secrets/*.yml.asc)
        first=$(git show ":$path" | head -n 1 | tr -d '\\r')
        if [ "$first" != "-----BEGIN PGP MESSAGE-----" ]; then
          echo "verdandi: refusing to commit $path: it is not an encrypted (armored OpenPGP) file" >&2
          status=1
        fi ;;
    esac
  done
  if [ "$status" -ne 0 ]; then
    echo "  -> unstage it with: git rm --cached FILE (secrets are committed only as secrets/<env>.yml.asc," >&2
    echo "     written by verdandi secrets edit/encrypt)" >&2
  fi
  exit "$status"
}
`;

function git(cwd: string, args: string[]): { stdout: string; status: number | null } {
  const result = spawnSync('git', args, { cwd, encoding: 'utf8' });
  if (result.error) throw new UserError('git is not installed', 1, 'install git, then run this again');
  return { stdout: result.stdout.trim(), status: result.status };
}

/** Appends the lines of `wanted` that `file` lacks; returns the lines added. */
function ensureLines(file: string, wanted: string[]): string[] {
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const have = new Set(current.split('\n').map((l) => l.trim()));
  const missing = wanted.filter((l) => !have.has(l));
  if (missing.length > 0) {
    const prefix = current === '' || current.endsWith('\n') ? current : `${current}\n`;
    writeFileSync(file, `${prefix}${missing.join('\n')}\n`);
  }
  return missing;
}

/** The command that runs this same Verdandi (same node, same loader flags, same entry script). */
function thisVerdandi(): string[] {
  return [process.execPath, ...process.execArgv, realpathSync(process.argv[1])];
}

export interface GitSetupResult {
  messages: string[];
}

export function gitSetup({
  projectDir,
  textconvCommand,
}: {
  projectDir: string;
  textconvCommand?: string;
}): GitSetupResult {
  const root = resolve(projectDir);
  const top = git(root, ['rev-parse', '--show-toplevel']);
  if (top.status !== 0) {
    throw new UserError(`${root} is not in a git repository`, 1, 'run git init first, or pass --project-dir');
  }
  const messages: string[] = [];

  // git runs textconv from the top of the work tree, with a path relative to it or a temporary file.
  const projectFromTop = relative(realpathSync(top.stdout), realpathSync(root));
  const command =
    textconvCommand ??
    words(
      ...thisVerdandi(),
      'secrets',
      'textconv',
      ...(projectFromTop ? ['--project-dir', projectFromTop] : []),
    );
  git(root, ['config', '--local', `diff.${DIFF_DRIVER}.textconv`, command]);
  git(root, ['config', '--local', `diff.${DIFF_DRIVER}.cachetextconv`, 'false']);
  messages.push(`git config: diff.${DIFF_DRIVER}.textconv = ${command}`);

  if (ensureLines(join(root, '.gitattributes'), [ATTRIBUTES_LINE]).length > 0) {
    messages.push(`.gitattributes: added ${ATTRIBUTES_LINE}`);
  }
  const ignored = ensureLines(join(root, '.gitignore'), IGNORED_LINES);
  if (ignored.length > 0) messages.push(`.gitignore: added ${ignored.join(' ')}`);

  const hooksPath = git(root, ['rev-parse', '--git-path', 'hooks']).stdout;
  const hooksDir = isAbsolute(hooksPath) ? hooksPath : resolve(root, hooksPath);
  mkdirSync(hooksDir, { recursive: true });
  const hook = join(hooksDir, 'pre-commit');
  if (!existsSync(hook) || readFileSync(hook, 'utf8').includes(HOOK_MARKER)) {
    writeFileSync(hook, PRE_COMMIT_HOOK);
    chmodSync(hook, 0o755);
    messages.push(`pre-commit hook: ${hook}`);
  } else {
    const ours = join(hooksDir, 'pre-commit-verdandi-secrets');
    writeFileSync(ours, PRE_COMMIT_HOOK);
    chmodSync(ours, 0o755);
    messages.push(
      `pre-commit hook: ${hook} exists and is not Verdandi's; wrote ${ours}: call it from your hook ` +
        '(add the line: "$(dirname "$0")/pre-commit-verdandi-secrets" || exit 1)',
    );
  }
  return { messages };
}
