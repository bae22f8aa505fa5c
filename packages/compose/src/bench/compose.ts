// `npm run bench -- compose`: load, validate and convert a 200-service stack file.
// Prints progress, then one JSON line: compose_load_ms (median of warm runs, the goal is < 100),
// compose_load_p90_ms, compose_load_cold_ms (first run in a fresh process, including the one-time
// loading of the precompiled schema validator), compose_schema_compile_ms (getting the validator
// of one more schema version: loading it now; compose_schema_ajv_compile_ms: ajv compiling it, the
// way before), and yaml_parse_ms (the yaml package alone on the
// same text, measured in the same run: the floor under compose_load_ms); the same two as CPU time
// (compose_load_cpu_ms, yaml_parse_cpu_ms: less disturbed by a busy machine) and the load average;
// compose_read_fast_cpu_ms / compose_read_cst_cpu_ms / compose_read_composer_cpu_ms: Shoal's YAML
// reader alone on its own scanner (the default now), forced onto the yaml CST path (the previous
// default) and forced through the yaml Composer (the way before that), side by side.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LineCounter, parseAllDocuments } from 'yaml';
import { compileValidator, validatorFor } from '../schema.js';
import { Diagnostics } from '../errors.js';
import { prepareStack } from '../stack.js';
import { parseComposeYaml, type YamlReader } from '../yaml.js';

/** `--load-only` (`npm run bench -- compose-load`): only the load figures, no side-by-side ones. */
const LOAD_ONLY = process.argv.includes('--load-only');
const SERVICES = Number(process.env['COMPOSE_BENCH_SERVICES'] ?? 200);
const RUNS = Number(process.env['COMPOSE_BENCH_RUNS'] ?? 30);

function stackFile(n: number): string {
  const lines = [
    'version: "3.8"',
    'x-defaults: &defaults',
    '  restart: unless-stopped',
    '  logging: {driver: json-file, options: {max-size: 10m, max-file: "3"}}',
    'services:',
  ];
  for (let i = 0; i < n; i++) {
    lines.push(
      `  svc${i}:`,
      '    <<: *defaults',
      `    image: registry.local:5000/team/app${i % 7}:\${TAG:-1.${i % 10}}`,
      `    command: ["serve", "--port", "${8000 + i}", "--name", "svc${i}"]`,
      '    environment:',
      `      SERVICE: svc${i}`,
      '      LOG_LEVEL: ${LOG_LEVEL:-info}',
      `      PEER: svc${(i + 1) % n}:${8000 + ((i + 1) % n)}`,
      '    env_file: [common.env]',
      `    ports: ["${10000 + i}:${8000 + i}"]`,
      '    networks: [front, back]',
      `    volumes: ["data${i % 20}:/data", "./conf:/etc/app:ro", {type: tmpfs, target: /tmp, tmpfs: {size: 65536}}]`,
      '    secrets: [{source: db_pw, target: db.pw, mode: 0400}]',
      '    configs: [app_cfg]',
      '    healthcheck: {test: ["CMD", "wget", "-qO-", "http://localhost/health"], interval: 30s, timeout: 5s, retries: 3, start_period: 10s}',
      '    deploy:',
      `      replicas: ${1 + (i % 3)}`,
      '      labels: {tier: app}',
      '      resources: {limits: {cpus: "0.5", memory: 256M}, reservations: {cpus: "0.1", memory: 64M}}',
      '      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3}',
      '      update_config: {parallelism: 2, delay: 10s, order: start-first}',
      '      placement: {constraints: [node.role==worker], preferences: [{spread: node.labels.zone}]}',
      '    ulimits: {nofile: {soft: 20000, hard: 40000}}',
      '    extra_hosts: ["gateway:198.18.0.1"]',
    );
  }
  lines.push('networks:', '  front: {driver: overlay, attachable: true}', '  back: {driver: overlay, internal: true}');
  lines.push('volumes:');
  for (let v = 0; v < 20; v++) lines.push(`  data${v}: {driver: local}`);
  lines.push('secrets:', '  db_pw: {file: ./db_pw.txt}', 'configs:', '  app_cfg: {file: ./app.conf}');
  return lines.join('\n') + '\n';
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

const dir = mkdtempSync(join(tmpdir(), 'shoal-compose-bench-'));
try {
  const file = join(dir, 'docker-stack.yml');
  writeFileSync(file, stackFile(SERVICES));
  writeFileSync(join(dir, 'common.env'), 'A=1\nB=2\n');
  writeFileSync(join(dir, 'db_pw.txt'), 'secret\n');
  writeFileSync(join(dir, 'app.conf'), 'key = value\n');
  const env = { PATH: process.env['PATH'] ?? '', HOME: dir };
  const cpuTimes: number[] = [];
  const run = () => {
    const c = process.cpuUsage();
    const t = performance.now();
    const p = prepareStack('bench', { files: [file], env });
    const ms = performance.now() - t;
    const used = process.cpuUsage(c);
    cpuTimes.push((used.user + used.system) / 1000);
    if (p.specs.services.length !== SERVICES)
      throw new Error(`expected ${SERVICES} services, got ${p.specs.services.length}`);
    return ms;
  };
  const cold = run();
  if (LOAD_ONLY) {
    const warm: number[] = [];
    for (let i = 0; i < RUNS; i++) warm.push(run());
    warm.sort((a, b) => a - b);
    const cpu = cpuTimes.slice(1).sort((a, b) => a - b);
    const median = percentile(warm, 50);
    console.log(`${SERVICES} services, ${RUNS} warm runs: median ${median.toFixed(1)} ms, cold ${cold.toFixed(1)} ms`);
    console.log(
      JSON.stringify({
        compose_load_ms: Number(median.toFixed(1)),
        compose_load_p90_ms: Number(percentile(warm, 90).toFixed(1)),
        compose_load_cold_ms: Number(cold.toFixed(1)),
        compose_load_cpu_ms: Number(percentile(cpu, 50).toFixed(1)),
        load_average: Number((os.loadavg()[0] ?? 0).toFixed(1)),
        services: SERVICES,
      }),
    );
  } else {
    const t0 = performance.now();
    validatorFor('3.7');
    const compile = performance.now() - t0;
    // What getting that validator cost before it was precompiled: ajv compiling the schema.
    const t1 = performance.now();
    compileValidator('3.7');
    const ajvCompile = performance.now() - t1;
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) times.push(run());
    times.sort((a, b) => a - b);
    const cpuWarm = cpuTimes.slice(1).sort((a, b) => a - b);
    // The yaml package's own parse of the same text, side by side: the floor under compose_load_ms.
    const text = stackFile(SERVICES);
    const yamlTimes: number[] = [];
    for (let i = 0; i < Math.min(RUNS, 10); i++) {
      const t = performance.now();
      parseAllDocuments(text, { lineCounter: new LineCounter(), version: '1.2', schema: 'failsafe' });
      yamlTimes.push(performance.now() - t);
    }
    const yamlCpu: number[] = [];
    for (let i = 0; i < Math.min(RUNS, 10); i++) {
      const c = process.cpuUsage();
      parseAllDocuments(text, { lineCounter: new LineCounter(), version: '1.2', schema: 'failsafe' });
      const used = process.cpuUsage(c);
      yamlCpu.push((used.user + used.system) / 1000);
    }
    // Shoal's reader alone: its own scanner, the yaml CST path, the yaml Composer.
    const readerCpu = (reader: YamlReader) => {
      const out: number[] = [];
      for (let i = 0; i < Math.min(RUNS, 10); i++) {
        const c = process.cpuUsage();
        if (!parseComposeYaml('f.yml', text, new Diagnostics(), { reader })) throw new Error('parse failed');
        const used = process.cpuUsage(c);
        out.push((used.user + used.system) / 1000);
      }
      return percentile(
        out.sort((a, b) => a - b),
        50,
      );
    };
    const fastCpu = readerCpu('fast');
    const cstCpu = readerCpu('cst');
    const composerCpu = readerCpu('composer');
    yamlTimes.sort((a, b) => a - b);
    yamlCpu.sort((a, b) => a - b);
    const yamlMedian = percentile(yamlTimes, 50);
    const median = percentile(times, 50);
    console.log(
      `${SERVICES} services, ${RUNS} warm runs: median ${median.toFixed(1)} ms, p90 ${percentile(times, 90).toFixed(1)} ms`,
    );
    console.log(`yaml package parse alone: median ${yamlMedian.toFixed(1)} ms (${text.length} bytes)`);
    console.log(
      `cold (first) run ${cold.toFixed(1)} ms; loading one precompiled schema version ${compile.toFixed(1)} ms (ajv compiling it: ${ajvCompile.toFixed(1)} ms)`,
    );
    console.log(
      JSON.stringify({
        compose_load_ms: Number(median.toFixed(1)),
        compose_load_p90_ms: Number(percentile(times, 90).toFixed(1)),
        compose_load_cold_ms: Number(cold.toFixed(1)),
        compose_schema_compile_ms: Number(compile.toFixed(1)),
        compose_schema_ajv_compile_ms: Number(ajvCompile.toFixed(1)),
        yaml_parse_ms: Number(yamlMedian.toFixed(1)),
        compose_load_cpu_ms: Number(percentile(cpuWarm, 50).toFixed(1)),
        yaml_parse_cpu_ms: Number(percentile(yamlCpu, 50).toFixed(1)),
        compose_read_fast_cpu_ms: Number(fastCpu.toFixed(1)),
        compose_read_cst_cpu_ms: Number(cstCpu.toFixed(1)),
        compose_read_composer_cpu_ms: Number(composerCpu.toFixed(1)),
        load_average: Number((os.loadavg()[0] ?? 0).toFixed(1)),
        services: SERVICES,
      }),
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
