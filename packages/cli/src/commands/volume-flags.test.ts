import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMount, parseVolume } from './container.js';

test('-v tells binds, named volumes and anonymous volumes apart, as docker', () => {
  assert.deepEqual(parseVolume('/host:/ctr'), { bind: { source: '/host', target: '/ctr', readOnly: false } });
  assert.deepEqual(parseVolume('/host:/ctr:ro'), { bind: { source: '/host', target: '/ctr', readOnly: true } });
  assert.deepEqual(parseVolume('data:/ctr'), { volume: { source: 'data', target: '/ctr' } });
  assert.deepEqual(parseVolume('data:/ctr:ro,nocopy'), {
    volume: { source: 'data', target: '/ctr', readOnly: true, noCopy: true },
  });
  assert.deepEqual(parseVolume('/anon'), { volume: { target: '/anon' } });
  assert.throws(() => parseVolume('rel'), /anonymous volume needs an absolute container path/);
  assert.throws(() => parseVolume('a:/b:rx'), /mode must be ro, rw or nocopy/);
  assert.throws(() => parseVolume('/h:/c:nocopy'), /nocopy is for volumes/);
  assert.throws(() => parseVolume('a:b:c:d'), /expected/);
});

test('--mount parses docker fields for volume, bind and tmpfs', () => {
  assert.deepEqual(
    parseMount('type=volume,src=v,dst=/m,readonly,volume-label=a=b,volume-opt=type=tmpfs,volume-opt=o=size=1m'),
    {
      volume: {
        source: 'v',
        target: '/m',
        readOnly: true,
        driverOpts: { type: 'tmpfs', o: 'size=1m' },
        labels: { a: 'b' },
      },
    },
  );
  assert.deepEqual(parseMount('target=/anon'), { volume: { target: '/anon' } });
  assert.deepEqual(parseMount('type=bind,source=/h,target=/c,ro=true'), {
    bind: { source: '/h', target: '/c', readOnly: true },
  });
  assert.deepEqual(parseMount('type=tmpfs,target=/t,tmpfs-size=1m'), { tmpfs: { target: '/t', options: ['size=1m'] } });
  for (const [spec, re] of [
    ['type=volume,source=v', /target is required/],
    ['type=nfs,target=/x', /type "nfs" is not volume, bind or tmpfs/],
    ['type=bind,target=/x,volume-nocopy', /volume-\* options need type=volume/],
    ['type=volume,target=/x,volume-driver=nfs', /driver "nfs" is not supported/],
    ['type=volume,target=/x,bogus=1', /unexpected key "bogus"/],
    ['type=volume,target=/x,readonly=maybe', /takes true or false/],
    ['type=volume,target=/x,volume-opt=novalue', /is not key=value/],
  ] as [string, RegExp][]) {
    assert.throws(() => parseMount(spec), re, spec);
  }
});
