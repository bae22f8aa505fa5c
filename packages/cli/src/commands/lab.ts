import type { Command } from 'commander';
import { InvalidArgumentError } from '@shoal/common';
import type { LabView } from '@shoal/testkit';

/** The lab machinery, loaded only when a `lab` command runs (it is most of what the CLI would load). */
const testkit = () => import('@shoal/testkit');

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return (
    rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n') + '\n'
  );
}

/** The host table of one lab, headed by its subnet and registry. */
export function formatLab(v: LabView): string {
  const reg = v.registry ? `${v.registry.addr} (${v.registry.state})` : 'none';
  const head = `lab ${v.name}  subnet ${v.subnet}  gateway ${v.gateway}  bridge ${v.bridge}  registry ${reg}\n`;
  const rows = [['HOST', 'HOSTNAME', 'NAMESPACE', 'ADDRESS', 'STATE']];
  for (const h of v.hosts)
    rows.push([h.name, h.hostname, h.netns, h.address, h.netem ? `${h.state} (${h.netem})` : h.state]);
  return head + table(rows);
}

function number(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new InvalidArgumentError(`invalid ${flag} '${value}': must be a number from ${min} to ${max}`);
  }
  return n;
}

export function registerLab(program: Command): void {
  const lab = program
    .command('lab')
    .description('Local multi-host labs: hosts in network namespaces on an underlay bridge, with a registry')
    .enablePositionalOptions();

  lab
    .command('up')
    .description('Create a lab (or add its missing hosts) and print its hosts')
    .option('--name <lab>', 'lab name', 'lab')
    .option('--hosts <n>', 'number of hosts h1..hN (1-64)', '3')
    .option('--no-registry', 'do not start the lab registry')
    .option(
      '--managers <n>',
      'also start shoald on every host and make a swarm: h1 inits, h2..hN join as managers, the rest as workers',
    )
    .action(async (opts: { name: string; hosts: string; registry: boolean; managers?: string }) => {
      const managers =
        opts.managers === undefined ? undefined : number('--managers', opts.managers, 1, Number(opts.hosts) || 64);
      await (await testkit()).labUp({ name: opts.name, hosts: opts.hosts, registry: opts.registry });
      if (managers !== undefined) await (await testkit()).labCluster({ name: opts.name, managers });
      process.stdout.write(formatLab(await (await testkit()).labStatus(opts.name)));
    });

  lab
    .command('start')
    .description("Start shoald on a host (or every host) of a lab, in the host's namespaces")
    .argument('<lab>', 'lab name')
    .argument('[host]', 'host name (h1, h2, ...); default all')
    .action(async (name: string, host: string | undefined) => {
      await (await testkit()).labStartShoald(name, host === undefined ? undefined : [host]);
    });

  lab
    .command('stop')
    .description("Stop a host's shoald (--signal KILL for a crash)")
    .argument('<lab>', 'lab name')
    .argument('<host>', 'host name (h1, h2, ...)')
    .option('--signal <sig>', 'TERM (a clean stop) or KILL', 'TERM')
    .action(async (name: string, host: string, opts: { signal: string }) => {
      const sig = opts.signal.toUpperCase().replace(/^SIG/, '');
      if (sig !== 'TERM' && sig !== 'KILL' && sig !== 'INT')
        throw new InvalidArgumentError(`invalid --signal ${JSON.stringify(opts.signal)}: expected TERM, INT or KILL`);
      const stopped = await (await testkit()).labStopShoald(name, host, `SIG${sig}`);
      if (!stopped) process.stderr.write(`shoald is not running on ${name}/${host}\n`);
    });

  lab
    .command('ls')
    .description('List labs, or the hosts of one lab')
    .argument('[lab]', 'lab name')
    .option('--json', 'print JSON')
    .action(async (name: string | undefined, opts: { json?: boolean }) => {
      const views = name ? [await (await testkit()).labStatus(name)] : await (await testkit()).labList();
      if (opts.json) {
        process.stdout.write(JSON.stringify(name ? views[0] : views, null, 2) + '\n');
      } else if (name) {
        process.stdout.write(formatLab(views[0] as LabView));
      } else {
        const rows = [['LAB', 'SUBNET', 'HOSTS', 'REGISTRY']];
        for (const v of views)
          rows.push([
            v.name,
            v.subnet,
            String(v.hosts.length),
            v.registry ? `${v.registry.addr} (${v.registry.state})` : 'none',
          ]);
        process.stdout.write(table(rows));
      }
    });

  lab
    .command('exec')
    .description("Run a command in a host's network and UTS namespaces; exits with its code")
    .argument('<lab>', 'lab name')
    .argument('<host>', 'host name (h1, h2, ...)')
    .argument('<cmd...>', 'command and arguments (after --)')
    .passThroughOptions()
    .allowUnknownOption()
    .helpOption(false)
    .action(async (name: string, host: string, cmd: string[]) => {
      // `--` ends our arguments; the command after it is passed as is.
      process.exitCode = await (await testkit()).labExecInherit(name, host, cmd[0] === '--' ? cmd.slice(1) : cmd);
    });

  lab
    .command('down')
    .description('Remove everything a lab made (also after a crash)')
    .argument('<lab>', 'lab name')
    .action(async (name: string) => {
      const r = await (await testkit()).labDown(name);
      process.stdout.write(
        `lab ${name} removed: ${r.namespaces.length} namespaces, ${r.links.length} links, ${r.processes.length} processes, ${r.mounts.length} mounts, ${r.firewallRules} firewall rules\n`,
      );
    });

  lab
    .command('cut')
    .description("Take a host's underlay link down")
    .argument('<lab>')
    .argument('<host>')
    .action(async (name: string, host: string) => (await testkit()).labCut(name, host));

  lab
    .command('heal')
    .description("Bring a host's underlay link back up")
    .argument('<lab>')
    .argument('<host>')
    .action(async (name: string, host: string) => (await testkit()).labHeal(name, host));

  lab
    .command('delay')
    .description('Delay (and drop) packets a host sends on the underlay (netem); --ms 0 removes it')
    .argument('<lab>')
    .argument('<host>')
    .requiredOption('--ms <n>', 'delay in milliseconds')
    .option('--loss <pct>', 'packet loss in percent', '0')
    .action(async (name: string, host: string, opts: { ms: string; loss: string }) =>
      (await testkit()).labDelay(name, host, number('--ms', opts.ms, 0, 60_000), number('--loss', opts.loss, 0, 100)),
    );
}
