/** /etc/hosts, /etc/hostname and /etc/resolv.conf of a container, as Docker writes them. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hasCode } from '@shoal/common';
import {
  checkDns,
  etcFilePaths,
  parseExtraHost,
  renderHosts,
  renderResolvConf,
  rewriteHosts,
  writeEtcFiles,
  type HostFiles,
} from './etc-files.js';

const work = mkdtempSync(join(tmpdir(), 'shoal-etc-'));
after(() => rmSync(work, { recursive: true, force: true }));

function hostFiles(resolv: string, hosts = '127.0.0.1 localhost\n203.0.113.7 buildhost\n'): HostFiles {
  const d = mkdtempSync(join(work, 'host-'));
  writeFileSync(join(d, 'resolv.conf'), resolv);
  writeFileSync(join(d, 'hosts'), hosts);
  return { resolvConf: join(d, 'resolv.conf'), hosts: join(d, 'hosts'), resolvedUpstream: join(d, 'upstream') };
}

describe('container /etc files', () => {
  it('hosts: loopback entries, --add-host entries, then the container addresses with its name', () => {
    const text = renderHosts({
      hostname: 'web-1',
      hostNetwork: false,
      extraHosts: [{ host: 'db', ip: '198.18.0.5' }],
      addresses: ['198.18.0.9'],
    });
    assert.equal(
      text,
      [
        '127.0.0.1\tlocalhost',
        '::1\tlocalhost ip6-localhost ip6-loopback',
        'fe00::\tip6-localnet',
        'ff00::\tip6-mcastprefix',
        'ff02::1\tip6-allnodes',
        'ff02::2\tip6-allrouters',
        '198.18.0.5\tdb',
        '198.18.0.9\tweb-1',
        '',
      ].join('\n'),
    );
    // no address (network none): no line for the host name, as Docker
    assert.ok(!renderHosts({ hostname: 'web-1', hostNetwork: false }).includes('web-1'));
  });

  it('hosts with the host network: a copy of the host file plus --add-host', () => {
    const text = renderHosts(
      { hostname: 'h', hostNetwork: true, extraHosts: [{ host: 'db', ip: '198.18.0.5' }] },
      '127.0.0.1 localhost\n203.0.113.7 buildhost',
    );
    assert.equal(text, '127.0.0.1 localhost\n203.0.113.7 buildhost\n198.18.0.5\tdb\n');
  });

  it('resolv.conf: loopback (and IPv6) nameservers dropped in an own netns, search and options kept', () => {
    const host =
      '# generated\nnameserver 127.0.0.1\nnameserver 203.0.113.53\nnameserver ::1\nnameserver 2001:db8::53\nsearch corp.example\noptions ndots:2 edns0\nsortlist 198.18.0.0/255.254.0.0\n';
    assert.equal(
      renderResolvConf({ hostname: 'x', hostNetwork: false }, host),
      'nameserver 203.0.113.53\nsearch corp.example\noptions ndots:2 edns0\nsortlist 198.18.0.0/255.254.0.0\n',
    );
    // nothing left: Docker's public defaults
    assert.equal(
      renderResolvConf({ hostname: 'x', hostNetwork: false }, 'nameserver 127.0.0.53\noptions edns0\n'),
      'nameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0\n',
    );
    // host network: the host's file as it is
    assert.equal(renderResolvConf({ hostname: 'x', hostNetwork: true }, host), host);
  });

  it('resolv.conf: --dns replaces the nameservers unfiltered, --dns-search and --dns-option replace theirs', () => {
    const host = 'nameserver 203.0.113.53\nsearch a.example\noptions ndots:2\n';
    assert.equal(
      renderResolvConf(
        {
          hostname: 'x',
          hostNetwork: false,
          dns: ['127.0.0.11', '198.18.0.53'],
          dnsSearch: ['svc.example', 'example'],
          dnsOptions: ['ndots:0', 'timeout:1'],
        },
        host,
      ),
      'nameserver 127.0.0.11\nnameserver 198.18.0.53\nsearch svc.example example\noptions ndots:0 timeout:1\n',
    );
    assert.equal(
      renderResolvConf({ hostname: 'x', hostNetwork: true, dns: ['198.18.0.53'] }, host),
      'nameserver 198.18.0.53\nsearch a.example\noptions ndots:2\n',
    );
  });

  it("uses systemd-resolved's upstream file when the host names only its 127.0.0.53 stub", () => {
    const files = hostFiles('nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n');
    writeFileSync(files.resolvedUpstream ?? '', 'nameserver 203.0.113.1\nnameserver 203.0.113.2\n');
    const dir = mkdtempSync(join(work, 'c-'));
    writeEtcFiles(dir, { hostname: 'c1', hostNetwork: false }, { files });
    assert.equal(
      readFileSync(etcFilePaths(dir).resolvConf, 'utf8'),
      'nameserver 203.0.113.1\nnameserver 203.0.113.2\n',
    );
  });

  it('writes the three files, mounts them unless a user mount covers the target, and rewrites in place', () => {
    const files = hostFiles('nameserver 203.0.113.53\n');
    const dir = mkdtempSync(join(work, 'c-'));
    const mounts = writeEtcFiles(dir, { hostname: 'c1', hostNetwork: false }, { files, skip: new Set(['/etc/hosts']) });
    const p = etcFilePaths(dir);
    assert.deepEqual(mounts, [
      { destination: '/etc/hostname', type: 'bind', source: p.hostname, options: ['rbind', 'rprivate'] },
      { destination: '/etc/resolv.conf', type: 'bind', source: p.resolvConf, options: ['rbind', 'rprivate'] },
    ]);
    assert.equal(readFileSync(p.hostname, 'utf8'), 'c1\n');
    assert.equal(statSync(p.hosts).mode & 0o777, 0o644);
    const inode = statSync(p.hosts).ino;
    rewriteHosts(dir, { hostname: 'c1', hostNetwork: false, addresses: ['198.18.0.20'] }, files);
    assert.equal(statSync(p.hosts).ino, inode, 'same inode: the bind mount sees the new content');
    assert.match(readFileSync(p.hosts, 'utf8'), /^198\.18\.0\.20\tc1$/m);
  });

  it('validates --add-host and --dns values as the docker CLI does', () => {
    assert.deepEqual(parseExtraHost('db:198.18.0.5'), { host: 'db', ip: '198.18.0.5' });
    assert.deepEqual(parseExtraHost('db=2001:db8::5'), { host: 'db', ip: '2001:db8::5' });
    assert.deepEqual(parseExtraHost('db:[2001:db8::5]'), { host: 'db', ip: '2001:db8::5' });
    const bad = (fn: () => unknown, re: RegExp): void =>
      assert.throws(fn, (e: unknown) => hasCode(e, 'ENGINE_INVALID_SPEC') && re.test(String(e)));
    bad(() => parseExtraHost('db'), /add-host: "db" is not host:ip/);
    bad(() => parseExtraHost('db:300.1.1.1'), /add-host: db: "300.1.1.1" is not an IP address/);
    bad(() => parseExtraHost('bad_host!:198.18.0.1'), /not a valid host name/);
    bad(() => parseExtraHost('gw:host-gateway'), /host-gateway/);
    bad(() => checkDns(['8.8.8']), /dns: "8.8.8" is not an IP address/);
    bad(() => checkDns([], ['example.com.']), /dns-search: "example.com." is not a domain name/);
    bad(() => checkDns([], [], ['ndots 2']), /dns-option/);
    checkDns(['198.18.0.53', '2001:db8::53'], ['.', 'svc.example'], ['ndots:0']);
  });
});
