// Writing a comparison to disk: comparison.md (for a CI step summary) and
// index.html (the page with charts), side by side in one directory.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Comparison } from './compare.js';
import type { GateReport } from './gate.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';

export interface WrittenReport {
  markdown: string;
  html: string;
}

export function writeReport(c: Comparison, dir: string, gate?: GateReport): WrittenReport {
  const out = resolve(dir);
  mkdirSync(out, { recursive: true });
  const files = { markdown: join(out, 'comparison.md'), html: join(out, 'index.html') };
  writeFileSync(files.markdown, renderMarkdown(c, gate));
  writeFileSync(files.html, renderHtml(c, gate));
  return files;
}
