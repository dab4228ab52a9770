// cnilab's cilium-like node agent. Runs on a node (inside its network namespace).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CiliumAgent, checkConfig } from '../agent.js';

const { values } = parseArgs({ options: { config: { type: 'string' } } });
if (!values.config) {
  console.error('cilium-agent: --config <file> is required');
  process.exit(2);
}
let agent: CiliumAgent;
try {
  agent = new CiliumAgent(checkConfig(JSON.parse(readFileSync(values.config, 'utf8')), values.config));
} catch (e) {
  console.error(`cilium-agent: ${(e as Error).message}`);
  process.exit(2);
}
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    void agent.stop().finally(() => process.exit(0));
  });
}
agent.start().catch((e) => {
  console.error(`cilium-agent: ${(e as Error).message}`);
  process.exit(1);
});
