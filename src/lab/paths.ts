// Where cnilab's own files are: the built plugins (a CNI_PATH) and agents.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'cnilab') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the cnilab package root');
    dir = up;
  }
}

export const ROOT = findRoot();

/** cnilab's own version, from its package.json: `cnilab --version`, and recorded in every results file. */
export const cnilabVersion = (): string => (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
export const CNI_BIN_DIR = join(ROOT, 'dist', 'cni', 'bin');
export const AGENTS_DIR = join(ROOT, 'dist', 'agents');

export function requireBuilt(): void {
  if (!existsSync(join(CNI_BIN_DIR, 'bridge'))) throw new Error(`cnilab is not built: ${CNI_BIN_DIR} is missing. Run \`npm run build\`.`);
}
