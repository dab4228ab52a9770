// Builds what runtimes and labs run:
//   dist/cni/lib/<plugin>.mjs  each plugin bundled into one file (no node_modules walk at start-up)
//   dist/cni/bin/<plugin>      the executable a runtime calls (CNI_PATH): the C shim of
//                              src/cni/shim.c, which uses the node's daemon when one runs and
//                              otherwise runs lib/<plugin>.mjs with node; without a C compiler,
//                              the bundle itself
//   dist/cni/cnid.mjs          the per-node daemon that keeps every plugin loaded
//   dist/cli.js, dist/agents/  the CLI and the node agents (src/datapaths/*/bin, and kube-proxy from src/services/bin),
//                              with the chunks they import on demand
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

// Each datapath's node daemons: src/datapaths/<name>/bin/<daemon>.ts → dist/agents/<daemon>.js
function agentEntries() {
  return readdirSync('src/datapaths', { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(`src/datapaths/${d.name}/bin`))
    .flatMap((d) => readdirSync(`src/datapaths/${d.name}/bin`).filter((f) => f.endsWith('.ts')).map((f) => `src/datapaths/${d.name}/bin/${f}`));
}
const common = { bundle: true, platform: 'node', target: 'node20', format: 'esm', logLevel: 'warning', legalComments: 'none' };
const banner = { js: "#!/usr/bin/env node\nimport { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" };

// The CNI plugins, by type, from their tables: src/cni/plugins/index.ts (generic) and
// src/datapaths/<name>/cni.ts. Each plugin's entry is generated, so a new plugin is
// one line in its table.
const tables = ['src/cni/plugins/index.ts', ...readdirSync('src/datapaths').map((d) => `src/datapaths/${d}/cni.ts`).filter((f) => existsSync(f))];
const plugins = []; // { type, table }
for (const table of tables) {
  const out = `dist/.tables/${table.replaceAll('/', '_')}.mjs`;
  await build({ ...common, entryPoints: [table], outfile: out, minify: true });
  const { CNI_PLUGINS } = await import(pathToFileURL(resolve(out)).href);
  for (const type of Object.keys(CNI_PLUGINS)) plugins.push({ type, table });
}
rmSync('dist/.tables', { recursive: true, force: true });
const entry = (contents) => ({ contents, resolveDir: process.cwd(), sourcefile: 'entry.ts', loader: 'ts' });
const tableImport = (table, i) => `import { CNI_PLUGINS as t${i} } from './${table}';`;

await Promise.all([
  ...plugins.map(({ type, table }) =>
    build({
      ...common,
      stdin: entry(`${tableImport(table, 0)}\nimport { pluginMain } from './src/cni/skel.ts';\nawait pluginMain(t0[${JSON.stringify(type)}]);\n`),
      outfile: `dist/cni/lib/${type}.mjs`,
      banner,
      minify: true,
      external: ['koffi'],
    }),
  ),
  build({
    ...common,
    stdin: entry(`${tables.map(tableImport).join('\n')}\nimport { runDaemon } from './src/cni/daemon-main.ts';\nawait runDaemon({ ${tables.map((_, i) => `...t${i}`).join(', ')} });\n`),
    outfile: 'dist/cni/cnid.mjs',
    banner,
    minify: true,
    external: ['koffi'],
  }),
  build({ ...common, entryPoints: ['src/cli.ts'], outfile: 'dist/cli.js', banner, packages: 'external' }),
  ...agentEntries().map((f) =>
    // koffi loads a prebuilt native library at run time: it stays in node_modules. What an agent
    // imports only when needed (flannel's udp backend and koffi with it) goes to a chunk of its own
    // beside it, so the others never load it.
    build({ ...common, entryPoints: [f], outdir: 'dist/agents', entryNames: '[name]', chunkNames: '[name]-[hash]', splitting: true, banner, external: ['koffi'] }),
  ),
  ...readdirSync('src/services/bin').map((f) => build({ ...common, entryPoints: [`src/services/bin/${f}`], outfile: `dist/agents/${basename(f, '.ts')}.js`, banner })),
]);

mkdirSync('dist/cni/bin', { recursive: true });
// Static when libc.a is there: no dynamic loader, about a millisecond less per call.
const compile = (extra) =>
  spawnSync(process.env.CC || 'cc', ['-O2', '-Wall', '-Wextra', ...extra, `-DCNILAB_NODE="${process.execPath}"`, '-o', 'dist/cni/shim', 'src/cni/shim.c'], {
    stdio: ['ignore', 'inherit', 'pipe'],
    encoding: 'utf8',
  });
let cc = compile(['-static', '-s']);
if (cc.status !== 0) cc = compile([]);
if (cc.status !== 0) {
  console.warn(`build: no working C compiler (cc): ${cc.stderr ?? cc.error?.message}`);
  console.warn('build: dist/cni/bin holds the plain node plugins, which cannot use the CNI daemon');
}
for (const { type: p } of plugins) {
  // Copy, then rename into place: a runtime may be executing the old file right now.
  const tmp = `dist/cni/bin/.${p}.tmp`;
  copyFileSync(cc.status === 0 ? 'dist/cni/shim' : `dist/cni/lib/${p}.mjs`, tmp);
  chmodSync(tmp, 0o755);
  renameSync(tmp, `dist/cni/bin/${p}`);
  chmodSync(`dist/cni/lib/${p}.mjs`, 0o755);
}
chmodSync('dist/cli.js', 0o755);
