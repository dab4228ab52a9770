// Bundles the CNI plugins into dist/cni/bin (one executable file each, usable
// as CNI_PATH by any runtime) and the CLI and node agents into dist/.
import { build } from 'esbuild';
import { chmodSync, readdirSync } from 'node:fs';
import { basename } from 'node:path';

const plugins = readdirSync('src/cni/bin').filter((f) => f.endsWith('.ts'));
const common = { bundle: true, platform: 'node', target: 'node20', format: 'esm', logLevel: 'warning', legalComments: 'none' };
const banner = { js: "#!/usr/bin/env node\nimport { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" };

await Promise.all([
  ...plugins.map((f) =>
    build({ ...common, entryPoints: [`src/cni/bin/${f}`], outfile: `dist/cni/bin/${basename(f, '.ts')}`, banner, minify: true }),
  ),
  build({ ...common, entryPoints: ['src/cli.ts'], outfile: 'dist/cli.js', banner, packages: 'external' }),
  ...readdirSync('src/agents/bin').map((f) =>
    // koffi loads a prebuilt native library at run time: it stays in node_modules.
    build({ ...common, entryPoints: [`src/agents/bin/${f}`], outfile: `dist/agents/${basename(f, '.ts')}.js`, banner, external: ['koffi'] }),
  ),
]);
for (const f of plugins) chmodSync(`dist/cni/bin/${basename(f, '.ts')}`, 0o755);
chmodSync('dist/cli.js', 0o755);
