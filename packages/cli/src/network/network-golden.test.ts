/**
 * `network inspect` against real Docker's: for each stack network in the inspect goldens of the
 * parity corpus (test/compose-parity/*\/inspect-golden.json, Docker 20.10.24), the swarm network
 * as Shoal's manager keeps it (the spec the CLI sent; DriverState with the VXLAN id and
 * IPAMOptions with the subnet and gateway the allocator gave, here Docker's own values) printed by
 * `networkResource` must be Docker's JSON: every field, its value and the key order. Left out:
 * `Id` and `Created` (Docker's), and `Containers`/`Peers`, which describe the node the CLI asks
 * (Docker lists the local endpoints there; in these goldens only the node's load-balancer endpoint
 * of the network, keyed `ep-<endpoint ID>`, which Shoal does not have: see network-view.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Network, NetworkSpec } from '@shoal/api';
import { networkResource } from './view.js';

const CORPUS = fileURLToPath(new URL('../../../../test/compose-parity/', import.meta.url));

interface DockerNetwork {
  Name: string;
  Id: string;
  Created: string;
  IPAM: { Config: { Subnet: string; Gateway: string }[] };
  Options: Record<string, string>;
  [k: string]: unknown;
}

const cases = existsSync(CORPUS)
  ? readdirSync(CORPUS).filter((d) => existsSync(join(CORPUS, d, 'inspect-golden.json')))
  : [];

test('network inspect prints what Docker prints for the networks of the inspect goldens', () => {
  let compared = 0;
  for (const name of cases) {
    const g = JSON.parse(readFileSync(join(CORPUS, name, 'inspect-golden.json'), 'utf8')) as {
      sent: { networks: NetworkSpec[] };
      docker: { networks: DockerNetwork[] };
    };
    for (const d of g.docker.networks) {
      const spec = g.sent.networks.find((n) => n.Name === d.Name);
      assert.ok(spec, `${name}: ${d.Name} was sent`);
      const vxlan = d.Options['com.docker.network.driver.overlay.vxlanid_list'] ?? '';
      const net: Network = {
        ID: d.Id,
        CreatedAt: d.Created,
        Spec: spec,
        DriverState: { Name: 'overlay', Options: { 'com.docker.network.driver.overlay.vxlanid_list': vxlan } },
        IPAMOptions: { Driver: { Name: 'default' }, Configs: d.IPAM.Config.map((c) => ({ ...c })) },
      };
      const want: Record<string, unknown> = { ...d };
      const got = networkResource(net);
      for (const o of [want, got]) {
        delete o['Containers'];
        delete o['Peers'];
      }
      assert.deepEqual(got, want, `${name}: network ${d.Name}`);
      assert.deepEqual(Object.keys(got), Object.keys(want), `${name}: network ${d.Name}: Docker's key order`);
      compared++;
    }
  }
  assert.ok(compared >= 5, `networks compared: ${compared}`);
});
