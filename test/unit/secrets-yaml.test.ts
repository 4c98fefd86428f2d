/** The plaintext side: parsing with positions (and no quoted text), and `set` keeping the file as written. */
import test from 'ava';
import {
  formatValue,
  getKey,
  parseSecretsYaml,
  SecretsYamlError,
  setTopLevelKey,
} from '../../src/secrets/yaml.js';

test('empty text is an empty map; a list or a scalar is refused at 1:1', (t) => {
  t.deepEqual(parseSecretsYaml(''), {});
  t.deepEqual(parseSecretsYaml('# only a comment\n'), {});
  for (const text of ['- a\n- b\n', 'just text\n']) {
    const error = t.throws(() => parseSecretsYaml(text), { instanceOf: SecretsYamlError });
    t.is(error.line, 1);
    t.is(error.column, 1);
  }
});

test('invalid YAML names line and column but never quotes the text', (t) => {
  const text = 'ok: 1\nbad: "postgres://user:Very-Secret-9@db\nnext: 2\n';
  const error = t.throws(() => parseSecretsYaml(text), { instanceOf: SecretsYamlError });
  t.true(error.line >= 2);
  t.false(error.message.includes('Very-Secret-9'));
  t.false(error.reason.includes('Very-Secret-9'));
});

test('dates stay strings (core schema)', (t) => {
  t.deepEqual(parseSecretsYaml('expires: 2024-01-01\nport: 5432\n'), { expires: '2024-01-01', port: 5432 });
});

test('getKey: top-level keys first, then dotted paths', (t) => {
  const secrets = { 'a.b': 'flat', a: { b: 'nested', c: { d: 'deep' } } };
  t.deepEqual(getKey(secrets, 'a.b'), { found: true, value: 'flat' });
  t.deepEqual(getKey(secrets, 'a.c.d'), { found: true, value: 'deep' });
  t.deepEqual(getKey(secrets, 'a.x'), { found: false });
  t.is(formatValue('v'), 'v\n');
  t.is(formatValue({ x: 1 }), 'x: 1\n');
});

test('setTopLevelKey replaces only that entry, keeping comments and other entries', (t) => {
  const text = '# header comment\nfirst: one # inline\nkey: |\n  old\n  multi-line\n\nlast: three\n';
  t.is(
    setTopLevelKey(text, 'key', 'new value'),
    '# header comment\nfirst: one # inline\nkey: new value\n\nlast: three\n',
  );
  t.is(setTopLevelKey(text, 'added', 'x'), `${text}added: x\n`);
  t.is(setTopLevelKey('a: 1', 'b', 'two words'), 'a: 1\nb: two words\n');
  t.is(setTopLevelKey('', 'url', 'postgres://u:p@h/db'), 'url: postgres://u:p@h/db\n');
  // Values that need quoting are quoted.
  t.deepEqual(parseSecretsYaml(setTopLevelKey(text, 'key', 'a: b # c')), {
    first: 'one',
    key: 'a: b # c',
    last: 'three',
  });
});

test('setTopLevelKey falls back to a full rewrite when it cannot follow the layout', (t) => {
  const result = setTopLevelKey('{a: 1, key: 2}\n', 'key', 'x');
  t.deepEqual(parseSecretsYaml(result), { a: 1, key: 'x' });
});
