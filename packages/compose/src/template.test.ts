import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { substituteCompat, substituteDocker } from './template.js';

const env: Record<string, string> = { HOME: '/home/u', EMPTY: '', TAG: '1.2', setvar: 'lower', B: 'bee' };
const lookup = (n: string) => env[n];
const sub = (s: string) => substituteDocker(s, lookup);

describe('Docker interpolation', () => {
  it('substitutes $VAR and ${VAR}', () => {
    assert.equal(sub('$HOME/x').value, '/home/u/x');
    assert.equal(sub('${HOME}x').value, '/home/ux');
    assert.equal(sub('img:${TAG}').value, 'img:1.2');
  });
  it('an unset variable becomes empty, silently', () => {
    assert.deepEqual(sub('a${NOPE}b'), { value: 'ab' });
  });
  it('names are matched case-insensitively but looked up as written', () => {
    assert.equal(sub('${setvar}').value, 'lower');
    assert.equal(sub('${SETVAR}').value, '');
  });
  it('$$ is a literal $ and what follows is not expanded', () => {
    assert.equal(sub('$$HOME').value, '$HOME');
    assert.equal(sub('cost $$5').value, 'cost $5');
  });
  it(':- applies when unset or empty; - only when unset', () => {
    assert.equal(sub('${NOPE:-d}').value, 'd');
    assert.equal(sub('${EMPTY:-d}').value, 'd');
    assert.equal(sub('${NOPE-d}').value, 'd');
    assert.equal(sub('${EMPTY-d}').value, '');
    assert.equal(sub('${TAG:-d}').value, '1.2');
  });
  it(':? fails when unset or empty; ? only when unset', () => {
    assert.equal(sub('${NOPE:?must set}').error?.template, 'required variable NOPE is missing a value: must set');
    assert.equal(sub('${EMPTY:?must set}').error?.template, 'required variable EMPTY is missing a value: must set');
    assert.equal(sub('${EMPTY?must set}').error, undefined);
    assert.equal(sub('${NOPE?}').error?.template, 'required variable NOPE is missing a value: ');
  });
  it('quirk: no nesting; the default ends at the first }', () => {
    assert.equal(sub('${A:-${B}}').value, '${B}');
  });
  it('quirk: unbraced forms take operators and swallow the rest', () => {
    assert.equal(sub('$HOME-dir').value, '/home/u');
    assert.equal(sub('$NOPE-dir').value, 'dir');
  });
  it('quirk: operators are found by substring in the order :-, -, :?, ?', () => {
    // `${X:?must-be-set}` contains `-`: name `X:?must`, default `be-set`.
    assert.deepEqual(sub('${X:?must-be-set}'), { value: 'be-set' });
  });
  it('quirk: a default may contain $ and is not re-scanned', () => {
    assert.equal(sub('${PW:-$2y$05$abc}').value, '$2y$05$abc');
  });
  it('quirk: a later plain substitution clears an earlier required-variable error', () => {
    assert.equal(sub('${NOPE:?x} $HOME').error, undefined);
    assert.ok(sub('$HOME ${NOPE:?x}').error);
  });
  it('a $ not followed by a name, { or $ is invalid, with the whole string quoted', () => {
    for (const bad of ['$', 'a $ b', '$5', '${}', '${X', '${VAR/x/y}', 'echo ${} $']) {
      assert.equal(sub(bad).error?.template, bad, bad);
    }
  });
});

describe('Compose-spec interpolation (compat)', () => {
  const c = (s: string) => substituteCompat(s, lookup);
  it('nests defaults', () => {
    assert.equal(c('${A:-${B}}').value, 'bee');
    assert.equal(c('${A:-x${NOPE:-y}z}').value, 'xyz');
  });
  it('supports :+ and +', () => {
    assert.equal(c('${TAG:+set}').value, 'set');
    assert.equal(c('${EMPTY:+set}').value, '');
    assert.equal(c('${EMPTY+set}').value, 'set');
    assert.equal(c('${NOPE+set}').value, '');
  });
  it('unbraced names take no operators', () => {
    assert.equal(c('$HOME-dir').value, '/home/u-dir');
  });
  it('keeps :? errors with messages containing -', () => {
    assert.equal(c('${X:?must-be-set}').error?.template, 'required variable X is missing a value: must-be-set');
  });
  it('rejects invalid forms', () => {
    assert.ok(c('${}').error);
    assert.ok(c('$').error);
    assert.ok(c('${A').error);
  });
});
