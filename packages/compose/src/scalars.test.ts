import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { goNumberString, resolvePlain } from './scalars.js';

describe('plain scalars as go-yaml v3 reads them', () => {
  const v = (s: string) => resolvePlain(s).value;
  it('YAML 1.2 booleans only: yes/no/on/off/y stay strings', () => {
    for (const s of ['yes', 'no', 'on', 'off', 'y', 'Y', 'NO']) assert.equal(v(s), s);
    assert.equal(v('true'), true);
    assert.equal(v('False'), false);
    assert.equal(v('TRUE'), true);
    assert.equal(v('tRue'), 'tRue');
  });
  it('nulls', () => {
    for (const s of ['', '~', 'null', 'Null', 'NULL']) assert.equal(v(s), null);
    assert.equal(v('nil'), 'nil');
  });
  it('integers through ParseInt base 0: 0755 octal, hex, binary, 0o, underscores', () => {
    assert.equal(v('0755'), 493);
    assert.equal(v('0x10'), 16);
    assert.equal(v('0b101'), 5);
    assert.equal(v('0o17'), 15);
    assert.equal(v('1_000'), 1000);
    assert.equal(v('-42'), -42);
    assert.equal(v('+7'), 7);
  });
  it('08 is not octal: it becomes the float 8', () => {
    assert.deepEqual(resolvePlain('08'), { value: 8, float: true });
  });
  it('floats', () => {
    assert.deepEqual(resolvePlain('1.50'), { value: 1.5, float: true });
    assert.deepEqual(resolvePlain('1e3'), { value: 1000, float: true });
    assert.deepEqual(resolvePlain('.5'), { value: 0.5, float: true });
    assert.equal(v('.inf'), Infinity);
    assert.ok(Number.isNaN(v('.nan')));
  });
  it('timestamps and versions stay strings', () => {
    assert.equal(v('2001-12-14'), '2001-12-14');
    assert.equal(v('3.8.1'), '3.8.1');
    assert.equal(v('1:2'), '1:2');
  });
  it('Go prints floats with %v: shortest digits, exponent from 1e6', () => {
    assert.equal(goNumberString(1.5, true), '1.5');
    assert.equal(goNumberString(1, true), '1');
    assert.equal(goNumberString(1000000, true), '1e+06');
    assert.equal(goNumberString(1234567, true), '1.234567e+06');
    assert.equal(goNumberString(0.00001, true), '1e-05');
    assert.equal(goNumberString(1234567, false), '1234567');
  });
});
