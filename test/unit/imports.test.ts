// The import graph of src/: no cycles, and every arrow points down the layers,
// so a newcomer can read the code from the kernel up without meeting the top.
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve('src');

/** Low to high. A file may import from its own folder or from a lower layer. */
const LAYERS: string[][] = [
  ['util'],
  ['net'],
  ['cni'],
  ['services', 'policy'],
  ['lab'],
  ['topologies'],
  ['datapaths'],
  ['runner'],
  ['workshop', 'bench', 'challenges'],
  ['report'],
  ['web'],
  ['commands'],
  ['cli.ts'],
];
/** Datapaths share only these; one datapath never reaches into another. */
const SHARED_DATAPATH_PARTS = new Set(['etcd', 'index.ts', 'types.ts']);

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports, type-only ones included: a type import still ties the two layers together. */
export function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
  return specs.map((s) => resolve(dirname(file), s).replace(/\.js$/, '.ts'));
}

const top = (file: string) => relative(SRC, file).split('/')[0];
const layerOf = (file: string) => LAYERS.findIndex((l) => l.includes(top(file)));

function cycles(graph: Map<string, string[]>): string[][] {
  // Tarjan's strongly connected components; any component of two or more files is a cycle.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(relative(SRC, w));
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

describe('the import graph of src/', () => {
  const files = walk(SRC);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));

  it('puts every top-level folder in a layer', () => {
    const unknown = [...new Set(files.map(top))].filter((t) => !LAYERS.some((l) => l.includes(t)));
    expect(unknown, 'add these to LAYERS in test/unit/imports.test.ts').to.deep.equal([]);
  });

  it('has no cycles', () => {
    expect(cycles(graph)).to.deep.equal([]);
  });

  it('has no arrow that runs up the layers or sideways into another folder of the same layer', () => {
    const bad: string[] = [];
    for (const [from, tos] of graph) {
      for (const to of tos) {
        if (top(from) === top(to)) continue;
        if (layerOf(to) >= layerOf(from)) bad.push(`${relative(SRC, from)} → ${relative(SRC, to)}`);
      }
    }
    expect(bad).to.deep.equal([]);
  });

  it('keeps each datapath to itself (shared: the etcd client and server, the registry)', () => {
    const bad: string[] = [];
    for (const [from, tos] of graph) {
      const [a, da] = relative(SRC, from).split('/');
      if (a !== 'datapaths' || SHARED_DATAPATH_PARTS.has(da)) continue;
      for (const to of tos) {
        const [b, db] = relative(SRC, to).split('/');
        if (b === 'datapaths' && db !== da && !SHARED_DATAPATH_PARTS.has(db)) bad.push(`${relative(SRC, from)} → ${relative(SRC, to)}`);
      }
    }
    expect(bad).to.deep.equal([]);
  });
});

describe('the kernel tools', () => {
  // A call whose argv starts with one of these, anywhere but src/net: the wrappers there take a Target, so use them.
  const TOOL = String.raw`(ip|tc|bpftool|iptables|iptables-restore|iptables-save|ip6tables|nft|bridge|sysctl)`;
  const spawn = new RegExp(String.raw`([(,]\s*\[\s*'${TOOL}'\s*[,\]])|(execa\(\s*'${TOOL}')|(sh -c '${TOOL} )`);

  it('are spawned by src/net alone', () => {
    const bad = walk(SRC)
      .filter((f) => top(f) !== 'net')
      .flatMap((f) => readFileSync(f, 'utf8').split('\n').map((line, i) => ({ f, i, line })))
      .filter(({ line }) => spawn.test(line))
      .map(({ f, i, line }) => `${relative(SRC, f)}:${i + 1}: ${line.trim()}`);
    expect(bad).to.deep.equal([]);
  });

  it('the check itself catches a spawn', () => {
    expect(spawn.test(`await run(['ip', 'link'])`)).to.equal(true);
    expect(spawn.test(`backend.exec(node, ['tc', 'qdisc'])`)).to.equal(true);
    expect(spawn.test(`const KINDS = ['bridge', 'veth']`)).to.equal(false);
  });
});
