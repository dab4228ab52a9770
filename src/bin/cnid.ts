// The cnilab CNI daemon: serves every plugin to the shims of the network
// namespace it runs in, until SIGTERM or SIGINT. Started and stopped by PID
// (startCnid / stopCnid in src/runner/cnid.ts).
import { runDir, serve } from '../cni/daemon.js';
import { PLUGINS } from '../cni/registry.js';
import { keepIpRunning } from '../net/ip.js';

const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

// One `ip` kept running for this namespace: the node side of an ADD then starts no process.
const stopIp = keepIpRunning();
const serving = await serve(PLUGINS, runDir(), log).catch((e: Error) => {
  log(`cnilab daemon ${process.pid} not started: ${e.message}`);
  process.exit(1);
});
log(`cnilab daemon ${process.pid} serving ${Object.keys(PLUGINS).join(', ')} on ${serving.path}`);

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    await serving.close();
    await stopIp(); // its ip goes before we do
    log(`cnilab daemon ${process.pid} stopped (${signal})`);
    process.exit(0);
  });
}
