/**
 * Ansible as the oracle for the file task types (test/helpers/ansible-twin.ts): the same desired state
 * applied by Verdandi on dif-files-v and by ansible-playbook on dif-files-a, then both hosts' states
 * and both tools' verdicts compared on the first run, a rerun and after the same drift.
 *
 * Cases:
 * - copy-mode: copy onto an existing file of another content and mode;
 * - copy-attrs: copy with owner, group and mode onto a missing file;
 * - copy-same: copy of the content a file already has, only its mode differs;
 * - file-touch: file state touch, times preserved (Verdandi's default; Ansible's with `preserve`);
 * - file-touch-now: file state touch with Ansible's defaults (Verdandi: `modificationTime: 'now'`);
 * - file-mode: symbolic mode on an existing file;
 * - directory-nested: a directory and its missing parents, with a mode and owner;
 * - directory-existing: an existing directory of another mode and owner;
 * - directory-mode: an existing directory whose mode only differs;
 * - link-new / link-switch / link-relative: a new symlink, one pointing elsewhere, a relative target;
 * - absent-tree / absent-file / absent-link: a directory tree, a file, a symlink (its target kept);
 * - template-vars / template-mode: a template rendered onto a missing and onto an existing file;
 * - template-keep: `force: false` leaves an existing file as it is, and writes a missing one;
 * - lineinfile-many: a regexp matching several lines (only the last is replaced);
 * - lineinfile-after-nomatch: insertAfter matching no line (appended at the end);
 * - lineinfile-nonl: a file without a final newline;
 * - lineinfile-absent: every matching line removed;
 * - lineinfile-create: a missing file (and its missing directory) created;
 * - replace-backrefs / replace-multiline / replace-after: replace with groups, `^` on every line, after;
 * - blockinfile-marker / blockinfile-before / blockinfile-default: Ansible's marker, insertBefore, and
 *   each tool's default marker (a documented difference).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { type TwinCase, useAnsibleTwin } from '../helpers/ansible-twin.js';

const D = '/srv/dif';

const twin = useAnsibleTwin(test, 'dif-files', (local): TwinCase[] => {
  const hbs = join(local, 'app.conf.hbs');
  writeFileSync(hbs, '# {{title}}\nport = {{port}}\n{{#each names}}name = {{this}}\n{{/each}}');
  const j2 = join(local, 'app.conf.j2');
  writeFileSync(j2, '# {{ title }}\nport = {{ port }}\n{% for n in names %}name = {{ n }}\n{% endfor %}');
  const vars = { title: 'twin', port: 8080, names: ['a', 'b'] };
  return [
    {
      name: 'copy-mode',
      setup: `mkdir -p ${D}/copy-mode && printf 'old\\n' > ${D}/copy-mode/f && chmod 600 ${D}/copy-mode/f`,
      tasks: [
        {
          name: 'copy-mode: copy',
          verdandi: ['copy', { path: `${D}/copy-mode/f`, content: 'new\n', mode: '0644' }],
          ansible: { copy: { dest: `${D}/copy-mode/f`, content: 'new\n', mode: '0644' } },
        },
      ],
      drift: `printf 'edited\\n' > ${D}/copy-mode/f && chmod 600 ${D}/copy-mode/f`,
      probes: [`path:${D}/copy-mode/f`],
    },
    {
      name: 'copy-attrs',
      setup: `mkdir -p ${D}/copy-attrs`,
      tasks: [
        {
          name: 'copy-attrs: copy',
          verdandi: [
            'copy',
            { path: `${D}/copy-attrs/f`, content: 'a=1\n', owner: 'www-data', group: 'adm', mode: '0640' },
          ],
          ansible: {
            copy: {
              dest: `${D}/copy-attrs/f`,
              content: 'a=1\n',
              owner: 'www-data',
              group: 'adm',
              mode: '0640',
            },
          },
        },
      ],
      drift: `chown root:root ${D}/copy-attrs/f`,
      probes: [`path:${D}/copy-attrs/f`],
    },
    {
      name: 'copy-same',
      setup: `mkdir -p ${D}/copy-same && printf 'same\\n' > ${D}/copy-same/f && chmod 600 ${D}/copy-same/f`,
      tasks: [
        {
          name: 'copy-same: copy',
          verdandi: ['copy', { path: `${D}/copy-same/f`, content: 'same\n', mode: '0644' }],
          ansible: { copy: { dest: `${D}/copy-same/f`, content: 'same\n', mode: '0644' } },
        },
      ],
      drift: `chmod 755 ${D}/copy-same/f`,
      probes: [`path:${D}/copy-same/f`],
    },
    {
      name: 'file-touch',
      setup: `mkdir -p ${D}/file-touch`,
      tasks: [
        {
          name: 'file-touch: touch',
          verdandi: ['file', { path: `${D}/file-touch/f`, state: 'touch', mode: '0640' }],
          ansible: {
            file: {
              path: `${D}/file-touch/f`,
              state: 'touch',
              mode: '0640',
              modification_time: 'preserve',
              access_time: 'preserve',
            },
          },
        },
      ],
      drift: `rm ${D}/file-touch/f`,
      probes: [`path:${D}/file-touch/f`],
    },
    {
      name: 'file-touch-now',
      setup: `mkdir -p ${D}/file-touch-now`,
      tasks: [
        {
          name: 'file-touch-now: touch',
          verdandi: [
            'file',
            { path: `${D}/file-touch-now/f`, state: 'touch', modificationTime: 'now', accessTime: 'now' },
          ],
          ansible: { file: { path: `${D}/file-touch-now/f`, state: 'touch' } },
        },
      ],
      probes: [`path:${D}/file-touch-now/f`],
      differences: {
        verdicts: [
          {
            task: 'file-touch-now: touch',
            phase: 'rerun',
            verdandi: 'changed',
            ansible: 'changed',
            why: 'touch with the times set to now changes the file on every run, in both tools',
          },
          {
            task: 'file-touch-now: touch',
            phase: 'drift',
            verdandi: 'changed',
            ansible: 'changed',
            why: 'touch with the times set to now changes the file on every run, in both tools',
          },
        ],
      },
    },
    {
      name: 'file-mode',
      setup: `mkdir -p ${D}/file-mode && touch ${D}/file-mode/f && chmod 666 ${D}/file-mode/f`,
      tasks: [
        {
          name: 'file-mode: symbolic mode',
          verdandi: ['file', { path: `${D}/file-mode/f`, mode: 'u+x,go-w' }],
          ansible: { file: { path: `${D}/file-mode/f`, mode: 'u+x,go-w' } },
        },
      ],
      drift: `chmod 622 ${D}/file-mode/f`,
      probes: [`path:${D}/file-mode/f`],
    },
    {
      name: 'directory-nested',
      tasks: [
        {
          name: 'directory-nested: directory',
          verdandi: ['directory', { path: `${D}/directory-nested/a/b/c`, mode: '0750', owner: 'www-data' }],
          ansible: {
            file: {
              path: `${D}/directory-nested/a/b/c`,
              state: 'directory',
              mode: '0750',
              owner: 'www-data',
            },
          },
        },
      ],
      drift: `chmod 700 ${D}/directory-nested/a/b/c`,
      probes: [`tree:${D}/directory-nested`],
      // The missing parents get the directory's owner and its mode without group and others' write, as
      // Ansible gives them its owner and mode (0750 has no such write bit): the same state.
    },
    {
      name: 'directory-existing',
      setup: `mkdir -p ${D}/directory-existing/d && chmod 777 ${D}/directory-existing/d && chown nobody ${D}/directory-existing/d`,
      tasks: [
        {
          name: 'directory-existing: directory',
          verdandi: [
            'directory',
            { path: `${D}/directory-existing/d`, mode: '0755', owner: 'root', group: 'adm' },
          ],
          ansible: {
            file: {
              path: `${D}/directory-existing/d`,
              state: 'directory',
              mode: '0755',
              owner: 'root',
              group: 'adm',
            },
          },
        },
      ],
      drift: `chgrp root ${D}/directory-existing/d`,
      probes: [`tree:${D}/directory-existing`],
    },
    {
      name: 'directory-mode',
      setup: `mkdir -p ${D}/directory-mode/d && chmod 700 ${D}/directory-mode/d`,
      tasks: [
        {
          name: 'directory-mode: directory',
          verdandi: ['directory', { path: `${D}/directory-mode/d`, mode: '0755' }],
          ansible: { file: { path: `${D}/directory-mode/d`, state: 'directory', mode: '0755' } },
        },
      ],
      drift: `chmod 750 ${D}/directory-mode/d`,
      probes: [`tree:${D}/directory-mode`],
    },
    {
      name: 'link-new',
      setup: `mkdir -p ${D}/link-new && touch ${D}/link-new/target`,
      tasks: [
        {
          name: 'link-new: link',
          verdandi: ['link', { path: `${D}/link-new/l`, target: `${D}/link-new/target` }],
          ansible: { file: { path: `${D}/link-new/l`, src: `${D}/link-new/target`, state: 'link' } },
        },
      ],
      drift: `rm ${D}/link-new/l`,
      probes: [`tree:${D}/link-new`],
    },
    {
      name: 'link-switch',
      setup: `mkdir -p ${D}/link-switch/v1 ${D}/link-switch/v2 && ln -s ${D}/link-switch/v1 ${D}/link-switch/current`,
      tasks: [
        {
          name: 'link-switch: link',
          verdandi: ['link', { path: `${D}/link-switch/current`, target: `${D}/link-switch/v2` }],
          ansible: {
            file: {
              path: `${D}/link-switch/current`,
              src: `${D}/link-switch/v2`,
              state: 'link',
              force: true,
            },
          },
        },
      ],
      drift: `ln -sfn ${D}/link-switch/v1 ${D}/link-switch/current`,
      probes: [`tree:${D}/link-switch`],
    },
    {
      name: 'link-relative',
      setup: `mkdir -p ${D}/link-relative/releases/r1`,
      tasks: [
        {
          name: 'link-relative: link',
          verdandi: ['link', { path: `${D}/link-relative/current`, target: 'releases/r1' }],
          ansible: { file: { path: `${D}/link-relative/current`, src: 'releases/r1', state: 'link' } },
        },
      ],
      drift: `ln -sfn releases ${D}/link-relative/current`,
      probes: [`tree:${D}/link-relative`],
    },
    {
      name: 'absent-tree',
      setup: `mkdir -p ${D}/absent-tree/x/y && touch ${D}/absent-tree/x/y/z`,
      tasks: [
        {
          name: 'absent-tree: absent',
          verdandi: ['absent', { path: `${D}/absent-tree/x` }],
          ansible: { file: { path: `${D}/absent-tree/x`, state: 'absent' } },
        },
      ],
      drift: `mkdir -p ${D}/absent-tree/x`,
      probes: [`tree:${D}/absent-tree`],
    },
    {
      name: 'absent-file',
      setup: `mkdir -p ${D}/absent-file && echo x > ${D}/absent-file/f && echo y > ${D}/absent-file/keep`,
      tasks: [
        {
          name: 'absent-file: absent',
          verdandi: ['absent', { path: `${D}/absent-file/f` }],
          ansible: { file: { path: `${D}/absent-file/f`, state: 'absent' } },
        },
      ],
      drift: `echo again > ${D}/absent-file/f`,
      probes: [`tree:${D}/absent-file`],
    },
    {
      name: 'absent-link',
      setup: `mkdir -p ${D}/absent-link/target && touch ${D}/absent-link/target/t && ln -s ${D}/absent-link/target ${D}/absent-link/l`,
      tasks: [
        {
          name: 'absent-link: absent',
          verdandi: ['absent', { path: `${D}/absent-link/l` }],
          ansible: { file: { path: `${D}/absent-link/l`, state: 'absent' } },
        },
      ],
      drift: `ln -s ${D}/absent-link/target ${D}/absent-link/l`,
      probes: [`tree:${D}/absent-link`],
    },
    {
      name: 'template-vars',
      setup: `mkdir -p ${D}/template-vars`,
      tasks: [
        {
          name: 'template-vars: template',
          verdandi: ['template', { path: `${D}/template-vars/app.conf`, src: hbs, vars }],
          ansible: { template: { dest: `${D}/template-vars/app.conf`, src: j2 }, vars },
        },
      ],
      drift: `echo extra >> ${D}/template-vars/app.conf`,
      probes: [`path:${D}/template-vars/app.conf`],
    },
    {
      name: 'template-mode',
      setup: `mkdir -p ${D}/template-mode && echo old > ${D}/template-mode/app.conf && chmod 666 ${D}/template-mode/app.conf`,
      tasks: [
        {
          name: 'template-mode: template',
          verdandi: [
            'template',
            { path: `${D}/template-mode/app.conf`, src: hbs, vars, mode: '0600', group: 'adm' },
          ],
          ansible: {
            template: { dest: `${D}/template-mode/app.conf`, src: j2, mode: '0600', group: 'adm' },
            vars,
          },
        },
      ],
      drift: `chmod 644 ${D}/template-mode/app.conf`,
      probes: [`path:${D}/template-mode/app.conf`],
    },
    {
      name: 'template-keep',
      setup: `mkdir -p ${D}/template-keep && echo 'edited by hand' > ${D}/template-keep/app.conf`,
      tasks: [
        {
          name: 'template-keep: template',
          verdandi: ['template', { path: `${D}/template-keep/app.conf`, src: hbs, vars, force: false }],
          ansible: { template: { dest: `${D}/template-keep/app.conf`, src: j2, force: false }, vars },
        },
      ],
      drift: `rm ${D}/template-keep/app.conf`,
      probes: [`path:${D}/template-keep/app.conf`],
    },
    {
      name: 'lineinfile-many',
      setup: `mkdir -p ${D}/lineinfile-many && printf 'port=1\\nx=1\\nport=2\\nport=3\\ny=2\\n' > ${D}/lineinfile-many/f`,
      tasks: [
        {
          name: 'lineinfile-many: lineinfile',
          verdandi: ['lineinfile', { path: `${D}/lineinfile-many/f`, regexp: '^port=', line: 'port=80' }],
          ansible: { lineinfile: { path: `${D}/lineinfile-many/f`, regexp: '^port=', line: 'port=80' } },
        },
      ],
      drift: `sed -i 's/^port=80$/port=9/' ${D}/lineinfile-many/f`,
      probes: [`path:${D}/lineinfile-many/f`, `sh:cat ${D}/lineinfile-many/f`],
    },
    {
      name: 'lineinfile-after-nomatch',
      setup: `mkdir -p ${D}/lineinfile-after-nomatch && printf 'a\\nb\\n' > ${D}/lineinfile-after-nomatch/f`,
      tasks: [
        {
          name: 'lineinfile-after-nomatch: lineinfile',
          verdandi: [
            'lineinfile',
            { path: `${D}/lineinfile-after-nomatch/f`, line: 'new', insertAfter: '^nothing' },
          ],
          ansible: {
            lineinfile: { path: `${D}/lineinfile-after-nomatch/f`, line: 'new', insertafter: '^nothing' },
          },
        },
      ],
      drift: `sed -i '/^new$/d' ${D}/lineinfile-after-nomatch/f`,
      probes: [`sh:cat ${D}/lineinfile-after-nomatch/f`],
    },
    {
      name: 'lineinfile-nonl',
      setup: `mkdir -p ${D}/lineinfile-nonl && printf 'a=1\\nb=2' > ${D}/lineinfile-nonl/f`,
      tasks: [
        {
          name: 'lineinfile-nonl: lineinfile',
          verdandi: ['lineinfile', { path: `${D}/lineinfile-nonl/f`, line: 'c=3' }],
          ansible: { lineinfile: { path: `${D}/lineinfile-nonl/f`, line: 'c=3' } },
        },
      ],
      drift: `printf 'a=1' > ${D}/lineinfile-nonl/f`,
      probes: [`path:${D}/lineinfile-nonl/f`, `sh:od -c ${D}/lineinfile-nonl/f`],
    },
    {
      name: 'lineinfile-absent',
      setup: `mkdir -p ${D}/lineinfile-absent && printf '#x\\nkeep\\n#y\\n' > ${D}/lineinfile-absent/f`,
      tasks: [
        {
          name: 'lineinfile-absent: lineinfile',
          verdandi: ['lineinfile', { path: `${D}/lineinfile-absent/f`, regexp: '^#', state: 'absent' }],
          ansible: { lineinfile: { path: `${D}/lineinfile-absent/f`, regexp: '^#', state: 'absent' } },
        },
      ],
      drift: `echo '#z' >> ${D}/lineinfile-absent/f`,
      probes: [`sh:cat ${D}/lineinfile-absent/f`],
    },
    {
      name: 'lineinfile-create',
      tasks: [
        {
          name: 'lineinfile-create: lineinfile',
          verdandi: [
            'lineinfile',
            { path: `${D}/lineinfile-create/sub/f`, line: 'only', create: true, mode: '0600' },
          ],
          ansible: {
            lineinfile: { path: `${D}/lineinfile-create/sub/f`, line: 'only', create: true, mode: '0600' },
          },
        },
      ],
      drift: `rm ${D}/lineinfile-create/sub/f`,
      probes: [`tree:${D}/lineinfile-create`],
    },
    {
      name: 'replace-backrefs',
      setup: `mkdir -p ${D}/replace-backrefs && printf 'listen 80\\n# listen 1\\nlisten 8080\\n' > ${D}/replace-backrefs/f`,
      tasks: [
        {
          name: 'replace-backrefs: replace',
          verdandi: [
            'replace',
            { path: `${D}/replace-backrefs/f`, regexp: '^listen (\\d+)$', replace: 'listen 127.0.0.1:\\1' },
          ],
          ansible: {
            replace: {
              path: `${D}/replace-backrefs/f`,
              regexp: '^listen (\\d+)$',
              replace: 'listen 127.0.0.1:\\1',
            },
          },
        },
      ],
      drift: `echo 'listen 443' >> ${D}/replace-backrefs/f`,
      probes: [`sh:cat ${D}/replace-backrefs/f`],
    },
    {
      name: 'replace-multiline',
      setup: `mkdir -p ${D}/replace-multiline && printf 'a = 1\\n\\n\\nb = 2\\n' > ${D}/replace-multiline/f && chmod 640 ${D}/replace-multiline/f`,
      tasks: [
        {
          name: 'replace-multiline: replace',
          verdandi: [
            'replace',
            { path: `${D}/replace-multiline/f`, regexp: '^(\\w+) = (\\d+)\\n\\n+', replace: '\\g<1>=\\2\\n' },
          ],
          ansible: {
            replace: {
              path: `${D}/replace-multiline/f`,
              regexp: '^(\\w+) = (\\d+)\\n\\n+',
              replace: '\\g<1>=\\2\\n',
            },
          },
        },
      ],
      drift: `printf 'c = 3\\n\\n' >> ${D}/replace-multiline/f`,
      probes: [`path:${D}/replace-multiline/f`, `sh:cat ${D}/replace-multiline/f`],
    },
    {
      name: 'replace-after',
      setup: `mkdir -p ${D}/replace-after && printf 'x=old\\n[s]\\nx=old\\n' > ${D}/replace-after/f`,
      tasks: [
        {
          name: 'replace-after: replace',
          verdandi: [
            'replace',
            { path: `${D}/replace-after/f`, regexp: 'old', replace: 'new', after: '\\[s\\]' },
          ],
          ansible: {
            replace: { path: `${D}/replace-after/f`, regexp: 'old', replace: 'new', after: '\\[s\\]' },
          },
        },
      ],
      drift: `echo 'y=old' >> ${D}/replace-after/f`,
      probes: [`sh:cat ${D}/replace-after/f`],
    },
    {
      name: 'blockinfile-marker',
      setup: `mkdir -p ${D}/blockinfile-marker && printf 'a\\nb\\n' > ${D}/blockinfile-marker/f`,
      tasks: [
        {
          name: 'blockinfile-marker: blockinfile',
          verdandi: [
            'blockinfile',
            {
              path: `${D}/blockinfile-marker/f`,
              block: 'x=1\ny=2',
              marker: '# {mark} ANSIBLE MANAGED BLOCK',
              insertAfter: '^a$',
            },
          ],
          ansible: {
            blockinfile: { path: `${D}/blockinfile-marker/f`, block: 'x=1\ny=2', insertafter: '^a$' },
          },
        },
      ],
      drift: `sed -i 's/^y=2$/y=3/' ${D}/blockinfile-marker/f`,
      probes: [`sh:cat ${D}/blockinfile-marker/f`],
    },
    {
      name: 'blockinfile-before',
      setup: `mkdir -p ${D}/blockinfile-before && printf 'Port 22\\nMatch User a\\nMatch User b\\n' > ${D}/blockinfile-before/f`,
      tasks: [
        {
          name: 'blockinfile-before: blockinfile',
          verdandi: [
            'blockinfile',
            {
              path: `${D}/blockinfile-before/f`,
              block: 'PasswordAuthentication no\n',
              marker: '# {mark} sshd',
              insertBefore: '^Match',
            },
          ],
          ansible: {
            blockinfile: {
              path: `${D}/blockinfile-before/f`,
              block: 'PasswordAuthentication no\n',
              marker: '# {mark} sshd',
              insertbefore: '^Match',
            },
          },
        },
      ],
      drift: `sed -i '/# BEGIN sshd/,/# END sshd/d' ${D}/blockinfile-before/f`,
      probes: [`sh:cat ${D}/blockinfile-before/f`],
    },
    {
      name: 'blockinfile-default',
      setup: `mkdir -p ${D}/blockinfile-default && printf 'a\\n' > ${D}/blockinfile-default/f`,
      tasks: [
        {
          name: 'blockinfile-default: blockinfile',
          verdandi: ['blockinfile', { path: `${D}/blockinfile-default/f`, block: 'x=1' }],
          ansible: { blockinfile: { path: `${D}/blockinfile-default/f`, block: 'x=1' } },
        },
      ],
      drift: `sed -i 's/^x=1$/x=2/' ${D}/blockinfile-default/f`,
      probes: [`sh:cat ${D}/blockinfile-default/f`],
      differences: {
        state: [
          {
            probe: `sh:cat ${D}/blockinfile-default/f`,
            verdandi: 'a\n# BEGIN VERDANDI MANAGED BLOCK\nx=1\n# END VERDANDI MANAGED BLOCK',
            ansible: 'a\n# BEGIN ANSIBLE MANAGED BLOCK\nx=1\n# END ANSIBLE MANAGED BLOCK',
            why: 'the default marker names the tool; set marker to keep the blocks Ansible wrote',
          },
        ],
      },
    },
  ];
});

test('both tools exit 0 in every phase', (t) => twin.assertRuns(t));

for (const c of twin.cases) {
  test(c.name, (t) => twin.assertCase(t, c));
}
