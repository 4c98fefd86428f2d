/**
 * A signed APT repository for tests that must not reach the internet: built on the controller, served
 * by the test host from a directory (`file://`).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A flat APT repository (Packages, Release, InRelease signed by a new key) holding the package
 * `name` (1.0, with /usr/share/<name>/README), built on the controller; returned as a base64 .tar.gz for the setup shell, and the key.
 */
export function buildRepository(local: string, name: string): { tarball: string; keyFile: string } {
  const run = (command: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) => {
    const r = spawnSync(command, args, { ...opts, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  };
  const pkg = join(local, 'pkg');
  const repo = join(local, 'repo');
  mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
  mkdirSync(join(pkg, `usr/share/${name}`), { recursive: true });
  mkdirSync(repo);
  writeFileSync(
    join(pkg, 'DEBIAN/control'),
    `Package: ${name}\nVersion: 1.0\nArchitecture: all\nMaintainer: twin <twin@example.org>\nDescription: a package of the twins\n`,
  );
  writeFileSync(join(pkg, `usr/share/${name}/README`), 'hello from the twin repository\n');
  run('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', pkg, join(repo, `${name}_1.0_all.deb`)]);
  writeFileSync(
    join(repo, 'Packages'),
    run('dpkg-scanpackages', ['--multiversion', '.', '/dev/null'], { cwd: repo }),
  );
  const packages = readFileSync(join(repo, 'Packages'));
  writeFileSync(
    join(repo, 'Release'),
    `Origin: twin\nLabel: twin\nDate: ${new Date().toUTCString()}\nSHA256:\n ${createHash('sha256').update(packages).digest('hex')} ${packages.length} Packages\n`,
  );
  const gnupg = join(local, 'gnupg');
  mkdirSync(gnupg, { mode: 0o700 });
  const env = { ...process.env, GNUPGHOME: gnupg };
  run(
    'gpg',
    ['--batch', '--passphrase', '', '--quick-gen-key', 'twin <twin@example.org>', 'ed25519', 'sign', 'never'],
    {
      env,
    },
  );
  run('gpg', ['--batch', '--yes', '--clearsign', '-o', join(repo, 'InRelease'), join(repo, 'Release')], {
    env,
  });
  const keyFile = join(local, 'twin.gpg');
  run('gpg', ['--batch', '--yes', '--export', '-o', keyFile], { env });
  run('gpgconf', ['--kill', 'all'], { env });
  const tgz = join(local, 'repo.tar.gz');
  run('tar', ['-czf', tgz, '-C', repo, '.']);
  return { tarball: readFileSync(tgz).toString('base64'), keyFile };
}
